// Package mailbox performs the IMAP operations that the API serves live
// rather than from the store: streaming a message or one body part, and
// running a native IMAP search.
package mailbox

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/orchard-mail/orchard/internal/imapx"
	"github.com/orchard-mail/orchard/internal/provider"
)

// Mailbox opens one IMAP connection per operation. (A per-grant pool is
// the obvious next step once the syncer's connection can be shared.)
type Mailbox struct {
	Dialer *imapx.Dialer
}

// stale is the error for a folder or message the server no longer holds
// as the store knows it: transient, since the next sync catches up.
func stale(c provider.Credentials, format string, args ...any) error {
	return &provider.Error{Kind: provider.KindUnavailable, Service: "imap", Addr: c.IMAPAddr,
		Text: fmt.Sprintf(format, args...) + "; the next sync catches up"}
}

// session dials, logs in and selects folder ("" selects none), checking that its
// UIDVALIDITY is still the one the UIDs came from.
func (m *Mailbox) session(ctx context.Context, c provider.Credentials, folder string, uidValidity uint32, fn func(*imapclient.Client) error) error {
	cl, err := m.Dialer.Dial(ctx, c.IMAPAddr)
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := cl.Login(ctx, c.IMAPUsername, c.IMAPPassword); err != nil {
		return err
	}
	return cl.Run(ctx, func(raw *imapclient.Client) error {
		if folder == "" {
			return fn(raw) // an operation on the folder list
		}
		// Read-write: SetFlags changes the folder; reads use BODY.PEEK and
		// so change nothing either way.
		sel, err := raw.Select(folder, nil).Wait()
		if err != nil {
			return err
		}
		if uidValidity != 0 && sel.UIDValidity != uidValidity {
			// The folder was recreated since it was synced: the stored UID
			// may now name another message, so nothing is touched.
			return stale(c, "folder %q changed on the server (UIDVALIDITY)", folder)
		}
		return fn(raw)
	})
}

// FetchSection streams BODY.PEEK[section] of one message into fn; ""
// streams the whole message.
func (m *Mailbox) FetchSection(ctx context.Context, c provider.Credentials, folder string, uidValidity, uid uint32, section string, fn func(io.Reader) error) error {
	item := &imap.FetchItemBodySection{Peek: true}
	if section != "" {
		path, err := parsePart(section)
		if err != nil {
			return err
		}
		item.Part = path
	}
	return m.session(ctx, c, folder, uidValidity, func(raw *imapclient.Client) error {
		cmd := raw.Fetch(imap.UIDSetNum(imap.UID(uid)), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{item}})
		found := false
		for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
			for it := msg.Next(); it != nil; it = msg.Next() {
				body, ok := it.(imapclient.FetchItemDataBodySection)
				if !ok || body.Literal == nil || found {
					continue
				}
				found = true
				if err := fn(body.Literal); err != nil {
					_ = cmd.Close()
					return err
				}
			}
		}
		if err := cmd.Close(); err != nil {
			return err
		}
		if !found {
			return stale(c, "message UID %d is no longer in %q", uid, folder)
		}
		return nil
	})
}

// Search runs a native IMAP search in one folder and returns the UIDs.
func (m *Mailbox) Search(ctx context.Context, c provider.Credentials, folder string, uidValidity uint32, query string) ([]uint32, error) {
	criteria, err := ParseSearch(query)
	if err != nil {
		return nil, &SearchError{Err: err}
	}
	var out []uint32
	err = m.session(ctx, c, folder, uidValidity, func(raw *imapclient.Client) error {
		data, err := raw.UIDSearch(criteria, nil).Wait()
		if err != nil {
			return err
		}
		for _, u := range data.AllUIDs() {
			out = append(out, uint32(u))
		}
		return nil
	})
	return out, err
}

// SearchError is a search_query_native that does not parse.
type SearchError struct{ Err error }

func (e *SearchError) Error() string { return "search_query_native: " + e.Err.Error() }
func (e *SearchError) Unwrap() error { return e.Err }

func parsePart(section string) ([]int, error) {
	var path []int
	n := 0
	digits := 0
	for i := 0; i <= len(section); i++ {
		if i == len(section) || section[i] == '.' {
			if digits == 0 {
				return nil, fmt.Errorf("mailbox: bad part %q", section)
			}
			path = append(path, n)
			n, digits = 0, 0
			continue
		}
		c := section[i]
		if c < '0' || c > '9' || digits > 6 {
			return nil, fmt.Errorf("mailbox: bad part %q", section)
		}
		n = n*10 + int(c-'0')
		digits++
	}
	return path, nil
}

// SetFlags adds and removes flags on one message (UID STORE, silent).
func (m *Mailbox) SetFlags(ctx context.Context, c provider.Credentials, folder string, uidValidity, uid uint32, add, remove []imap.Flag) error {
	return m.session(ctx, c, folder, uidValidity, func(raw *imapclient.Client) error {
		set := imap.UIDSetNum(imap.UID(uid))
		for _, change := range []struct {
			op    imap.StoreFlagsOp
			flags []imap.Flag
		}{{imap.StoreFlagsAdd, add}, {imap.StoreFlagsDel, remove}} {
			if len(change.flags) == 0 {
				continue
			}
			if err := raw.Store(set, &imap.StoreFlags{Op: change.op, Silent: true, Flags: change.flags}, nil).Close(); err != nil {
				return err
			}
		}
		return nil
	})
}

// errNoSafeExpunge refuses to remove mail on a server without UIDPLUS: a
// plain EXPUNGE would also purge messages other clients marked \Deleted.
func errNoSafeExpunge(c provider.Credentials, op string) error {
	return &provider.Error{Kind: provider.KindProtocol, Service: "imap", Addr: c.IMAPAddr,
		Text: "the server supports neither MOVE nor UID EXPUNGE (UIDPLUS); Orchard does not " + op + " with a plain EXPUNGE, which would also remove mail other clients deleted"}
}

// Move moves one message to dest and returns its UID there (0 when the
// server does not say) and dest's UIDVALIDITY. It uses UID MOVE where the
// server advertises it, else COPY + \Deleted + UID EXPUNGE of that UID
// only; never a plain EXPUNGE.
func (m *Mailbox) Move(ctx context.Context, c provider.Credentials, folder string, uidValidity, uid uint32, dest string) (destUID, destValidity uint32, err error) {
	err = m.session(ctx, c, folder, uidValidity, func(raw *imapclient.Client) error {
		caps := raw.Caps()
		if !caps.Has(imap.CapMove) && !caps.Has(imap.CapIMAP4rev2) && !caps.Has(imap.CapUIDPlus) {
			return errNoSafeExpunge(c, "move mail")
		}
		data, err := raw.Move(imap.UIDSetNum(imap.UID(uid)), dest).Wait()
		if err != nil {
			return err
		}
		destValidity = data.UIDValidity
		if set, ok := data.DestUIDs.(imap.UIDSet); ok && len(set) == 1 && set[0].Start == set[0].Stop {
			destUID = uint32(set[0].Start)
		}
		return nil
	})
	return destUID, destValidity, err
}

// Expunge removes one message for good: \Deleted, then UID EXPUNGE of
// that UID only.
func (m *Mailbox) Expunge(ctx context.Context, c provider.Credentials, folder string, uidValidity, uid uint32) error {
	return m.session(ctx, c, folder, uidValidity, func(raw *imapclient.Client) error {
		if !raw.Caps().Has(imap.CapUIDPlus) && !raw.Caps().Has(imap.CapIMAP4rev2) {
			return errNoSafeExpunge(c, "delete mail")
		}
		set := imap.UIDSetNum(imap.UID(uid))
		if err := raw.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
			return err
		}
		return raw.UIDExpunge(set).Close()
	})
}

// CreateFolder creates a mailbox.
func (m *Mailbox) CreateFolder(ctx context.Context, c provider.Credentials, name string) error {
	return m.session(ctx, c, "", 0, func(raw *imapclient.Client) error { return raw.Create(name, nil).Wait() })
}

// RenameFolder renames a mailbox (and, as IMAP does, its children).
func (m *Mailbox) RenameFolder(ctx context.Context, c provider.Credentials, from, to string) error {
	return m.session(ctx, c, "", 0, func(raw *imapclient.Client) error { return raw.Rename(from, to, nil).Wait() })
}

// DeleteFolder deletes a mailbox and the messages in it.
func (m *Mailbox) DeleteFolder(ctx context.Context, c provider.Credentials, name string) error {
	return m.session(ctx, c, "", 0, func(raw *imapclient.Client) error { return raw.Delete(name).Wait() })
}

// Append stores msg in folder with flags and the given INTERNALDATE (zero:
// the server's clock) and returns its UID (0 when the server lacks
// UIDPLUS and does not say) and the folder's UIDVALIDITY.
func (m *Mailbox) Append(ctx context.Context, c provider.Credentials, folder string, flags []imap.Flag, date time.Time, msg []byte) (uid, validity uint32, err error) {
	err = m.session(ctx, c, "", 0, func(raw *imapclient.Client) error {
		uid, validity, err = appendMessage(raw, folder, flags, date, msg)
		return err
	})
	return uid, validity, err
}

// Replace appends msg to folder, then removes the copy at oldUID: how a
// draft gets its new version. The old copy goes only once the new one is
// stored, and only by UID EXPUNGE, so on a server without UIDPLUS nothing
// is appended at all.
func (m *Mailbox) Replace(ctx context.Context, c provider.Credentials, folder string, uidValidity, oldUID uint32, flags []imap.Flag, date time.Time, msg []byte) (uid, validity uint32, err error) {
	err = m.session(ctx, c, folder, uidValidity, func(raw *imapclient.Client) error {
		if !raw.Caps().Has(imap.CapUIDPlus) && !raw.Caps().Has(imap.CapIMAP4rev2) {
			return errNoSafeExpunge(c, "replace drafts")
		}
		if uid, validity, err = appendMessage(raw, folder, flags, date, msg); err != nil {
			return err
		}
		set := imap.UIDSetNum(imap.UID(oldUID))
		if err := raw.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
			return err
		}
		return raw.UIDExpunge(set).Close()
	})
	return uid, validity, err
}

func appendMessage(raw *imapclient.Client, folder string, flags []imap.Flag, date time.Time, msg []byte) (uid, validity uint32, err error) {
	cmd := raw.Append(folder, int64(len(msg)), &imap.AppendOptions{Flags: flags, Time: date})
	if _, err := cmd.Write(msg); err != nil {
		_ = cmd.Close()
		return 0, 0, err
	}
	if err := cmd.Close(); err != nil {
		return 0, 0, err
	}
	data, err := cmd.Wait()
	if err != nil {
		return 0, 0, err
	}
	return uint32(data.UID), data.UIDValidity, nil
}

// AppendUnlessPresent makes sure folder holds a message with this
// Message-ID (without angle brackets): it returns the UID of the copy
// already there, else APPENDs msg and returns the new copy's UID (0 when
// the server does not say), with the folder's UIDVALIDITY. One session
// does both: filing a sent message costs one login, not two.
func (m *Mailbox) AppendUnlessPresent(ctx context.Context, c provider.Credentials, folder, messageID string, flags []imap.Flag, msg []byte) (uid, validity uint32, err error) {
	err = m.session(ctx, c, "", 0, func(raw *imapclient.Client) error {
		uids, v, err := searchMessageID(raw, folder, messageID)
		if err != nil {
			return err
		}
		if len(uids) > 0 {
			uid, validity = uids[0], v
			return nil
		}
		uid, validity, err = appendMessage(raw, folder, flags, time.Time{}, msg)
		return err
	})
	return uid, validity, err
}

// FindByMessageID returns the UIDs of the messages in folder whose
// Message-ID header is messageID (without angle brackets), and the
// folder's UIDVALIDITY.
func (m *Mailbox) FindByMessageID(ctx context.Context, c provider.Credentials, folder, messageID string) (uids []uint32, validity uint32, err error) {
	err = m.session(ctx, c, "", 0, func(raw *imapclient.Client) error {
		uids, validity, err = searchMessageID(raw, folder, messageID)
		return err
	})
	return uids, validity, err
}

// searchMessageID examines folder and searches it for a Message-ID.
func searchMessageID(raw *imapclient.Client, folder, messageID string) ([]uint32, uint32, error) {
	sel, err := raw.Select(folder, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		return nil, 0, err
	}
	data, err := raw.UIDSearch(&imap.SearchCriteria{
		Header: []imap.SearchCriteriaHeaderField{{Key: "Message-ID", Value: "<" + messageID + ">"}},
	}, nil).Wait()
	if err != nil {
		return nil, 0, err
	}
	var uids []uint32
	for _, u := range data.AllUIDs() {
		uids = append(uids, uint32(u))
	}
	return uids, sel.UIDValidity, nil
}
