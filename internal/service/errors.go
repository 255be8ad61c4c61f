package service

import (
	"errors"
	"fmt"

	"github.com/orchard-mail/orchard/internal/store"
)

// Code classifies a use-case failure; the HTTP layer maps each to a status.
type Code int

const (
	CodeInvalid      Code = iota + 1 // the request is wrong: 400
	CodeUnauthorized                 // missing or wrong credentials of the caller: 401
	CodeNotFound                     // no such object for this caller: 404
	CodeConflict                     // the object exists already: 409
)

// Error is a use-case failure with a message fit for the API caller.
type Error struct {
	Code    Code
	Message string
	// wrapped lets callers match a failure with errors.Is (the hosted
	// login pages tell an unknown client from a bad parameter).
	wrapped error
}

func (e *Error) Error() string { return e.Message }

func (e *Error) Unwrap() error { return e.wrapped }

func invalid(format string, args ...any) error {
	return &Error{Code: CodeInvalid, Message: fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) error {
	return &Error{Code: CodeNotFound, Message: fmt.Sprintf(format, args...)}
}

func conflict(format string, args ...any) error {
	return &Error{Code: CodeConflict, Message: fmt.Sprintf(format, args...)}
}

// storeErr turns store sentinels into use-case errors about what; other
// errors pass through as internal failures.
func storeErr(err error, what string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound):
		return notFound("%s not found", what)
	case errors.Is(err, store.ErrConflict):
		return conflict("%s already exists", what)
	}
	return err
}
