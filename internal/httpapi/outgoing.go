package httpapi

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/orchard-mail/orchard/api"
	"github.com/orchard-mail/orchard/internal/compose"
	"github.com/orchard-mail/orchard/internal/service"
)

// outgoing is a decoded send or draft request and its fingerprint for
// Idempotency-Key (which must not depend on the random multipart boundary
// a retried request gets).
type outgoing struct {
	service.Outgoing
	hash []byte
}

// fileField is the SDK's name for the file parts it does not give a
// content id: file0, file1, ...
var fileField = regexp.MustCompile(`^file\d+$`)

// decodeOutgoing reads a send or draft body: JSON with base64 attachment
// contents, or the SDKs' multipart form (the JSON in a part named
// "message" or "draft", one part per file, named file<i> or by its content
// id for inline parts).
func decodeOutgoing(r *http.Request, now time.Time) (*outgoing, error) {
	var req api.OutgoingMessage
	var files []compose.Attachment
	ct, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "multipart/form-data" {
		var err error
		if req, files, err = readMultipart(r, params["boundary"]); err != nil {
			return nil, err
		}
	} else if err := decodeJSON(r, &req); err != nil {
		return nil, err
	}
	if req.SendAt != nil && *req.SendAt > now.Add(time.Minute).Unix() {
		return nil, badRequest("send_at: scheduled sending is not supported by Orchard; send without send_at")
	}
	out := service.Outgoing{
		To: req.To, Cc: req.Cc, Bcc: req.Bcc, ReplyTo: req.ReplyTo, From: req.From,
		Subject: req.Subject, Body: req.Body, IsPlaintext: req.IsPlaintext, ReplyToMessageID: req.ReplyToMessageID,
		CustomHeaders: req.CustomHeaders, Starred: req.Starred, Unread: req.Unread,
	}
	if req.Attachments != nil || files != nil {
		atts := []compose.Attachment{}
		if req.Attachments != nil {
			for i, a := range *req.Attachments {
				if a.Content == nil {
					return nil, badRequest("attachments[%d].content is required (base64 of the file); larger files go in a multipart/form-data request", i)
				}
				data, err := decodeBase64(*a.Content)
				if err != nil {
					return nil, badRequest("attachments[%d].content is not valid base64: %v", i, err)
				}
				atts = append(atts, compose.Attachment{Filename: a.Filename, ContentType: a.ContentType, Content: data,
					ContentID: strings.Trim(a.ContentID, "<>"), Inline: a.IsInline || strings.EqualFold(a.ContentDisposition, "inline")})
			}
		}
		atts = append(atts, files...)
		out.Attachments = &atts
	}
	return &outgoing{Outgoing: out, hash: fingerprint(r, &out)}, nil
}

// decodeBase64 accepts standard base64 with or without padding and with
// line breaks (as some encoders wrap it).
func decodeBase64(s string) ([]byte, error) {
	s = strings.NewReplacer("\r", "", "\n", "", " ", "").Replace(s)
	if strings.ContainsAny(s, "-_") {
		return base64.URLEncoding.WithPadding(base64.NoPadding).DecodeString(strings.TrimRight(s, "="))
	}
	return base64.StdEncoding.WithPadding(base64.NoPadding).DecodeString(strings.TrimRight(s, "="))
}

// readMultipart reads the SDK's multipart form.
func readMultipart(r *http.Request, boundary string) (api.OutgoingMessage, []compose.Attachment, error) {
	var req api.OutgoingMessage
	if boundary == "" {
		return req, nil, badRequest("multipart/form-data request without a boundary")
	}
	mr, err := r.MultipartReader()
	if err != nil {
		return req, nil, badRequest("multipart/form-data: %v", err)
	}
	var files []compose.Attachment
	sawJSON := false
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return req, nil, multipartErr(err)
		}
		name := p.FormName()
		data, err := io.ReadAll(p)
		if err != nil {
			return req, nil, multipartErr(err)
		}
		switch {
		case (name == "message" || name == "draft") && p.FileName() == "":
			if sawJSON {
				return req, nil, badRequest("multipart/form-data: more than one message part")
			}
			sawJSON = true
			if err := decodeJSONBytes(data, &req); err != nil {
				return req, nil, err
			}
		case name == "":
			return req, nil, badRequest("multipart/form-data: a part without a name")
		default:
			a := compose.Attachment{Filename: p.FileName(), ContentType: p.Header.Get("Content-Type"), Content: data}
			if !fileField.MatchString(name) {
				// The SDK names a file part by its content id: an inline
				// part, referenced from the HTML as cid:<name>.
				a.ContentID, a.Inline = strings.Trim(name, "<>"), true
			}
			files = append(files, a)
		}
	}
	if !sawJSON {
		return req, nil, badRequest(`multipart/form-data: the JSON of the message goes in a part named "message" (or "draft")`)
	}
	if req.Attachments != nil && len(*req.Attachments) > 0 {
		// The SDK sends attachments as parts only; JSON ones would be
		// silently merged or lost, so say so.
		for _, a := range *req.Attachments {
			if a.Content != nil {
				return req, nil, badRequest("multipart/form-data: send attachments as file parts, not in the message JSON")
			}
		}
		req.Attachments = nil
	}
	return req, files, nil
}

func multipartErr(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return tooLarge(mbe.Limit)
	}
	return badRequest("multipart/form-data: %v", err)
}

// fingerprint identifies a request for Idempotency-Key: the method, the
// path and the decoded content.
func fingerprint(r *http.Request, out *service.Outgoing) []byte {
	h := sha256.New()
	fmt.Fprintf(h, "%s %s\n", r.Method, r.URL.Path)
	_ = json.NewEncoder(h).Encode(out) // attachments' bytes encode as base64: all of them count
	return h.Sum(nil)
}
