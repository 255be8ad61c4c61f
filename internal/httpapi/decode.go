package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"

	"github.com/orchard-mail/orchard/api"
)

// decodeJSON reads a JSON object body into dst. Unknown fields are
// ignored (SDKs send fields Orchard may not use); fields of the wrong type,
// malformed JSON, non-object bodies and oversized bodies are clear 4xx
// errors.
func decodeJSON(r *http.Request, dst any) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return tooLarge(mbe.Limit)
		}
		return badRequest("could not read the request body")
	}
	return decodeJSONBytes(body, dst)
}

// decodeJSONBytes is decodeJSON of a body already read.
func decodeJSONBytes(body []byte, dst any) error {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return errorf(http.StatusBadRequest, api.ErrInvalidPayload, "request body is empty: send a JSON object")
	}
	if body[0] != '{' {
		if json.Valid(body) {
			return errorf(http.StatusBadRequest, api.ErrInvalidPayload, "request body must be a JSON object, not %s", jsonKind(body[0]))
		}
		return errorf(http.StatusBadRequest, api.ErrInvalidPayload, "request body is not valid JSON")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(dst); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syn):
			return errorf(http.StatusBadRequest, api.ErrInvalidPayload, "invalid JSON at byte %d: %s", syn.Offset, syn.Error())
		case errors.As(err, &typ):
			field := typ.Field
			if field == "" {
				field = "value"
			}
			return errorf(http.StatusBadRequest, api.ErrInvalidPayload, "field %s must be %s, not a JSON %s", field, jsonTypeName(typ.Type), typ.Value)
		case errors.Is(err, io.ErrUnexpectedEOF):
			return errorf(http.StatusBadRequest, api.ErrInvalidPayload, "invalid JSON: unexpected end of input")
		}
		return errorf(http.StatusBadRequest, api.ErrInvalidPayload, "invalid JSON: %v", err)
	}
	if dec.More() {
		return errorf(http.StatusBadRequest, api.ErrInvalidPayload, "request body holds more than one JSON value")
	}
	return nil
}

func jsonKind(first byte) string {
	switch first {
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 'n':
		return "null"
	case 't', 'f':
		return "a boolean"
	}
	return "a number"
}

// jsonTypeName says what JSON a Go type expects, for error messages.
func jsonTypeName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "a number"
}
