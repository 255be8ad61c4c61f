package testenv

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Radicale's users live in a plain htpasswd file ("email:password" lines,
// Env.RadicaleUsers). Radicale 3.1 opens and reads that file on every login
// (radicale/auth/htpasswd.py: "The content of the file is not cached"), so a
// change needs no restart and no wait; the file is only ever replaced
// whole, by rename, so that a login running meanwhile never reads half of
// it. Collections live in <dir of the users file>/collections/
// collection-root/<email>/ (scripts/testenv/up.sh).

// addRadicaleUser appends u to Radicale's users.
func (e *Env) addRadicaleUser(u User) error {
	if strings.Contains(u.Email, ":") || strings.ContainsAny(u.Email+u.Password, "\n") {
		return fmt.Errorf("user %q: no ':' in the email and no newline anywhere", u.Email)
	}
	return e.editRadicaleUsers(func(lines [][]byte) [][]byte {
		if n := len(lines); n > 0 && len(lines[n-1]) == 0 {
			lines = lines[:n-1]
		}
		if n := len(lines); n > 0 && !bytes.HasSuffix(lines[n-1], []byte("\n")) {
			lines[n-1] = append(lines[n-1], '\n')
		}
		return append(lines, []byte(u.Email+":"+u.Password+"\n"))
	})
}

// removeRadicaleUser removes email from Radicale's users and deletes its
// collections.
func (e *Env) removeRadicaleUser(email string) error {
	err := e.editRadicaleUsers(func(lines [][]byte) [][]byte {
		out := lines[:0]
		for _, l := range lines {
			if !bytes.HasPrefix(l, []byte(email+":")) {
				out = append(out, l)
			}
		}
		return out
	})
	if err != nil {
		return err
	}
	return os.RemoveAll(e.RadicaleCollections(email))
}

// RadicaleCollections is the directory in which Radicale keeps email's
// calendars (its principal collection).
func (e *Env) RadicaleCollections(email string) string {
	return filepath.Join(filepath.Dir(e.RadicaleUsers), "collections", "collection-root", email)
}

// editRadicaleUsers rewrites Radicale's users file through edit (see
// editUsersFile). Radicale reads it on every login: no wait is needed.
func (e *Env) editRadicaleUsers(edit func(lines [][]byte) [][]byte) error {
	return editUsersFile(e.RadicaleUsers, edit, false)
}
