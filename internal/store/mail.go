package store

import (
	"context"
	"time"
)

// MailStore keeps each grant's synced mail: folders with their sync state,
// messages (one row per message, however many folders hold a copy), the
// copies' locations (folder, UID, flags), threads, and the change rows the
// webhook dispatcher turns into notifications.
//
// The syncer is the only writer of a grant's mail (one worker per grant),
// and writes through ApplyMailBatch so that a batch of changes and its
// change rows commit together or not at all.
type MailStore interface {
	ApplyMailBatch(ctx context.Context, b *MailBatch) error

	ListFolders(ctx context.Context, grantID string) ([]Folder, error)
	GetFolder(ctx context.Context, grantID, id string) (*Folder, error)
	// FolderUIDs returns the UIDs stored for a folder, ascending.
	FolderUIDs(ctx context.Context, grantID, folderID string) ([]uint32, error)

	GetMessage(ctx context.Context, grantID, id string) (*Message, error)
	// GetMessagesByIdentity returns the stored messages with these identity
	// keys (the syncer uses it to link a new copy to an existing message).
	GetMessagesByIdentity(ctx context.Context, grantID string, keys []string) ([]Message, error)
	ListMessages(ctx context.Context, q MessageQuery) ([]Message, error)
	// MessageLocations returns where the copies of a message are.
	MessageLocations(ctx context.Context, grantID, messageID string) ([]Location, error)
	// MessageIDsAt maps UIDs of one folder to message ids (for IMAP SEARCH
	// results); unknown UIDs are left out.
	MessageIDsAt(ctx context.Context, grantID, folderID string, uids []uint32) ([]string, error)

	// ThreadIDByMessageIDs returns the thread of the first stored message
	// whose Message-ID header or references contain one of msgIDs ("" if none).
	ThreadIDByMessageIDs(ctx context.Context, grantID string, msgIDs []string) (string, error)
	// ThreadIDBySubject returns the most recent thread with this normalized
	// subject whose latest message is after since ("" if none).
	ThreadIDBySubject(ctx context.Context, grantID, subjectKey string, since time.Time) (string, error)
	ListThreads(ctx context.Context, q ThreadQuery) ([]Thread, error)
	GetThread(ctx context.Context, grantID, id string) (*Thread, error)

	// ListChanges returns change rows with ID > afterID, oldest first.
	ListChanges(ctx context.Context, afterID int64, limit int) ([]Change, error)
}

// Folder roles.
const (
	RoleInbox   = "inbox"
	RoleSent    = "sent"
	RoleDrafts  = "drafts"
	RoleTrash   = "trash"
	RoleJunk    = "junk"
	RoleArchive = "archive"
)

// Folder is one IMAP mailbox of a grant with its sync state.
type Folder struct {
	ID          string // opaque and stable for the folder's life
	GrantID     string
	Name        string // full IMAP name, e.g. "Archive/2024"
	Delimiter   string
	Attributes  []string // as the server listed them, e.g. `\HasNoChildren`
	Role        string   // one of the Role constants or ""
	TotalCount  int      // messages stored for this folder
	UnreadCount int

	// Sync state, written only by the syncer.
	UIDValidity   uint32
	UIDNext       uint32 // every UID below it has been seen
	HighestModSeq uint64 // CONDSTORE; 0 when the server has none
	// InitialLowUID: the initial sync goes newest first and has stored
	// every in-window message with UID >= InitialLowUID. 0: not started.
	InitialLowUID uint32
	InitialDone   bool
	LastSyncAt    time.Time
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// Participant is a name and address of From, To, Cc, Bcc or Reply-To.
type Participant struct {
	Name  string `json:"name,omitempty"`
	Email string `json:"email"`
}

// Attachment is a non-body part of a message. Part is its IMAP section
// number ("2", "1.3"), which is how the download fetches it.
type Attachment struct {
	ID          string `json:"id"`
	Filename    string `json:"filename"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"` // decoded bytes
	ContentID   string `json:"content_id,omitempty"`
	IsInline    bool   `json:"is_inline"`
	Part        string `json:"part"`
	Encoding    string `json:"encoding,omitempty"` // Content-Transfer-Encoding
}

// Message is one message of a grant, stored once however many folders
// hold a copy of it.
type Message struct {
	ID       string
	GrantID  string
	ThreadID string
	// IdentityKey makes two copies one message: "mid:" + the Message-ID
	// header, or "hdr:" + a hash of the header block when there is none.
	IdentityKey     string
	MessageIDHeader string
	InReplyTo       string
	References      []string
	Subject         string
	// SubjectKey is the normalized subject (mimeconv.SubjectKey), set by
	// the syncer; a thread's SubjectKey is that of its earliest message.
	SubjectKey  string
	From        []Participant
	To          []Participant
	Cc          []Participant
	Bcc         []Participant
	ReplyTo     []Participant
	Date        time.Time // when the server received it (INTERNALDATE)
	SentAt      time.Time // the Date header; zero when missing or unreadable
	Unread      bool      // derived by the store: no copy has \Seen
	Starred     bool      // derived by the store: some copy has \Flagged
	Snippet     string
	Body        string // HTML
	Attachments []Attachment
	Headers     []byte // the raw header block
	Size        int64
	CreatedAt   time.Time
	UpdatedAt   time.Time
	// Folders lists the ids of the folders holding a copy; filled on read.
	Folders []string
}

// Location is one copy of a message: a UID in a folder, with its flags.
type Location struct {
	MessageID string
	FolderID  string
	UID       uint32
	Flags     []string
	ModSeq    uint64
}

// LocationKey names one copy.
type LocationKey struct {
	FolderID string
	UID      uint32
}

// FlagUpdate sets the flags of one copy.
type FlagUpdate struct {
	FolderID string
	UID      uint32
	Flags    []string
	ModSeq   uint64
}

// Thread is a conversation, its aggregates kept up to date by
// ApplyMailBatch.
type Thread struct {
	ID                string
	GrantID           string
	Subject           string
	SubjectKey        string // normalized subject, for the subject fallback
	MessageIDs        []string
	Folders           []string
	Participants      []Participant
	Unread            bool
	Starred           bool
	HasAttachments    bool
	Snippet           string // of the latest message
	LatestMessageID   string
	EarliestMessageAt time.Time
	LatestMessageAt   time.Time
}

// Change is one change row: what the webhook dispatcher notifies.
type Change struct {
	ID         int64 // assigned by the store, increasing
	GrantID    string
	ObjectType string // "message", "folder", "thread"
	ObjectID   string
	Action     string // "created", "updated", "deleted"
	CreatedAt  time.Time
}

// MailBatch is one atomic unit of sync work for one grant. ApplyMailBatch
// applies its parts in field order inside one transaction.
type MailBatch struct {
	GrantID string
	// Folders are upserted by ID (all fields, including sync state).
	Folders []Folder
	// DeletedFolders are removed with their locations.
	DeletedFolders []string
	// ClearFolders lose all their locations (UIDVALIDITY changed); their
	// messages stay until DeleteOrphans, so a refetch keeps their ids.
	ClearFolders []string
	// Messages are upserted by ID (content fields; Unread/Starred are
	// derived, CreatedAt kept on update).
	Messages []Message
	// Locations are upserted by (FolderID, UID).
	Locations        []Location
	RemovedLocations []LocationKey
	FlagUpdates      []FlagUpdate
	// DeleteOrphans removes messages of the grant left without any
	// location and records a "deleted" change for each.
	DeleteOrphans bool
	// Changes are recorded as given.
	Changes []Change
}

// MessageQuery selects messages, newest first (Date, then ID, both
// descending). Empty fields do not filter.
type MessageQuery struct {
	GrantID string
	Limit   int // 0: no limit
	// After continues a listing after the message with this Date and ID.
	AfterDate      time.Time
	AfterID        string
	Subject        string   // case-insensitive substring
	AnyEmail       []string // any participant, case-insensitive, OR-ed
	From, To       []string
	Cc, Bcc        []string
	FolderIDs      []string // in any of these folders
	ThreadID       string
	IDs            []string // only these messages
	Unread         *bool
	Starred        *bool
	HasAttachment  *bool
	ReceivedBefore time.Time // Date < ReceivedBefore
	ReceivedAfter  time.Time // Date > ReceivedAfter
}

// ThreadQuery selects threads, latest activity first (LatestMessageAt,
// then ID, both descending).
type ThreadQuery struct {
	GrantID      string
	Limit        int
	AfterDate    time.Time
	AfterID      string
	Subject      string
	AnyEmail     []string
	FolderIDs    []string
	Unread       *bool
	Starred      *bool
	LatestBefore time.Time
	LatestAfter  time.Time
}
