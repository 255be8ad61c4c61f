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
//
// Every method but ListChanges (which serves every grant) is scoped by the
// grant id it is given: another grant's rows are never seen nor written,
// even under the same ids. Deleting a grant deletes all its mail,
// threads and change rows. Slices are returned non-nil; times in UTC with
// microsecond precision.
type MailStore interface {
	ApplyMailBatch(ctx context.Context, b *MailBatch) error

	// ListFolders returns the grant's folders by name. Their counts are
	// maintained by ApplyMailBatch, so listing costs no counting.
	ListFolders(ctx context.Context, grantID string) ([]Folder, error)
	GetFolder(ctx context.Context, grantID, id string) (*Folder, error)
	// FolderUIDs returns the UIDs stored for a folder, ascending.
	FolderUIDs(ctx context.Context, grantID, folderID string) ([]uint32, error)

	GetMessage(ctx context.Context, grantID, id string) (*Message, error)
	// GetMessagesByIdentity returns the stored messages with these identity
	// keys (the syncer uses it to link a new copy to an existing message),
	// newest first; unknown keys are left out.
	GetMessagesByIdentity(ctx context.Context, grantID string, keys []string) ([]Message, error)
	ListMessages(ctx context.Context, q MessageQuery) ([]Message, error)
	// MessageLocations returns where the copies of a message are, by
	// folder id then UID (empty for an unknown message).
	MessageLocations(ctx context.Context, grantID, messageID string) ([]Location, error)
	// MessageIDsAt maps UIDs of one folder to message ids (for IMAP SEARCH
	// results), in the order of uids, each id once; unknown UIDs are left
	// out.
	MessageIDsAt(ctx context.Context, grantID, folderID string, uids []uint32) ([]string, error)

	// ThreadIDByMessageIDs returns the thread of the first stored message
	// whose Message-ID header or references contain one of msgIDs ("" if
	// none). msgIDs are tried in order; for one of them, the message whose
	// own Message-ID it is wins over messages that only refer to it, then
	// the oldest. Messages without a ThreadID are ignored.
	ThreadIDByMessageIDs(ctx context.Context, grantID string, msgIDs []string) (string, error)
	// ThreadIDBySubject returns the most recent thread with this normalized
	// subject (Thread.SubjectKey) whose latest message is after since (""
	// if none, and always for an empty key).
	ThreadIDBySubject(ctx context.Context, grantID, subjectKey string, since time.Time) (string, error)
	ListThreads(ctx context.Context, q ThreadQuery) ([]Thread, error)
	GetThread(ctx context.Context, grantID, id string) (*Thread, error)

	// ListChanges returns change rows with ID > afterID, oldest first, of
	// every grant; limit <= 0 means no limit. Ids follow commit order, so
	// a reader that remembers the last id it saw never misses a row.
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
	ID         string // opaque and stable for the folder's life
	GrantID    string
	Name       string // full IMAP name, e.g. "Archive/2024"
	Delimiter  string
	Attributes []string // as the server listed them, e.g. `\HasNoChildren`
	Role       string   // one of the Role constants or ""
	// TotalCount and UnreadCount count the messages with a copy in the
	// folder (once however many copies) and those of them that are
	// Unread. The store maintains them; ApplyMailBatch ignores the values
	// of Folders it upserts.
	TotalCount  int
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
	// CreatedAt is kept when an upsert finds the message stored; both
	// default to the time of the upsert when zero. Neither changes when
	// only the derived Unread/Starred do.
	CreatedAt time.Time
	UpdatedAt time.Time
	// Folders lists the ids of the folders holding a copy, ascending;
	// filled on read, ignored on write.
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
// ApplyMailBatch from the messages with its ID as ThreadID (a thread left
// without messages is deleted; messages with an empty ThreadID have none).
// Subject and SubjectKey are the oldest message's; MessageIDs are oldest
// first (Date, then ID); Folders ascending; Participants are the From, To,
// Cc and Bcc of its messages, oldest first, once per address (compared
// case-insensitively, with the first non-empty name); Unread, Starred and
// HasAttachments hold if they do for any message; Snippet and
// LatestMessageID are the newest message's.
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
	HasAttachments    bool   // some message has a non-inline attachment
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
// applies its parts in field order inside one transaction, then derives
// the messages' Unread/Starred/Folders, the folder counts and the threads
// the batch touched, and records the change rows; any error leaves nothing
// behind. It does not modify b.
//
// Rows with an empty GrantID take b.GrantID; another grant's is an error.
// Within one part, the last entry for an id or key wins. A location whose
// message or folder is not the grant's (or not stored) fails the batch
// with ErrNotFound, as does an unknown grant; a second message with a
// stored IdentityKey, or a second folder with a stored Name, fails it with
// ErrConflict. Ids or keys that are not stored are ignored in
// DeletedFolders, ClearFolders, RemovedLocations and FlagUpdates.
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
	// Changes are recorded as given, after those of DeleteOrphans; a zero
	// CreatedAt is the time of the batch.
	Changes []Change
}

// MessageQuery selects messages, newest first (Date, then ID, both
// descending). Empty fields do not filter; filters combine with AND, the
// values of one list with OR. A list longer than 1000 values is an error.
type MessageQuery struct {
	GrantID string
	Limit   int // 0: no limit
	// After continues a listing after the message with this Date and ID.
	AfterDate      time.Time
	AfterID        string
	Subject        string   // case-insensitive substring
	AnyEmail       []string // any of From, To, Cc, Bcc; case-insensitive, OR-ed
	From, To       []string
	Cc, Bcc        []string
	FolderIDs      []string // in any of these folders
	ThreadID       string
	IDs            []string // only these messages
	Unread         *bool
	Starred        *bool
	HasAttachment  *bool     // some non-inline attachment
	ReceivedBefore time.Time // Date < ReceivedBefore
	ReceivedAfter  time.Time // Date > ReceivedAfter
}

// ThreadQuery selects threads, latest activity first (LatestMessageAt,
// then ID, both descending), with the same conventions as MessageQuery
// (Subject matches the thread's Subject, AnyEmail its Participants).
type ThreadQuery struct {
	GrantID   string
	Limit     int
	AfterDate time.Time
	AfterID   string
	Subject   string
	AnyEmail  []string
	// From, To, Cc, Bcc: a message of the thread has one of these
	// addresses in that field.
	From, To  []string
	Cc, Bcc   []string
	FolderIDs []string
	Unread    *bool
	Starred   *bool
	// HasAttachment: the thread has a non-inline attachment.
	HasAttachment *bool
	LatestBefore  time.Time
	LatestAfter   time.Time
}
