package httpapi

import (
	"encoding/base64"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/http"
	"strings"

	"github.com/orchard-mail/orchard/internal/service"
)

func (s *server) getAttachment(w http.ResponseWriter, r *http.Request) error {
	g, a, err := s.svc.Attachment(r.Context(), appID(r), r.PathValue("grant"), r.URL.Query().Get("message_id"), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeData(w, r, http.StatusOK, selectFields(r, service.AttachmentWire(g.ID, a))[0])
}

// downloadAttachment streams the attachment from the IMAP server, decoding
// its transfer encoding on the way: neither the message nor the
// attachment is ever held in memory whole.
func (s *server) downloadAttachment(w http.ResponseWriter, r *http.Request) error {
	msgID := r.URL.Query().Get("message_id")
	g, a, err := s.svc.Attachment(r.Context(), appID(r), r.PathValue("grant"), msgID, r.PathValue("id"))
	if err != nil {
		return err
	}
	started := false
	err = s.svc.DownloadAttachment(r.Context(), g, msgID, a, func(part io.Reader) error {
		var body io.Reader = part
		switch strings.ToLower(a.Encoding) {
		case "base64":
			body = base64.NewDecoder(base64.StdEncoding, newlineStripper{part})
		case "quoted-printable":
			body = quotedprintable.NewReader(part)
		}
		ct := a.ContentType
		if ct == "" {
			ct = "application/octet-stream"
		}
		disp := "attachment"
		if a.IsInline {
			disp = "inline"
		}
		w.Header().Set("Content-Type", ct)
		w.Header().Set("Content-Disposition", mime.FormatMediaType(disp, map[string]string{"filename": a.Filename}))
		// No Content-Length: the size recorded at sync time is Orchard's
		// count of the decoded part, and servers may count a part's bytes
		// differently (Dovecot does for message/rfc822); a wrong length
		// would cut the download short.
		started = true
		w.WriteHeader(http.StatusOK)
		_, err := io.Copy(w, body)
		return err
	})
	if err != nil && started {
		// Headers are gone: the client sees a truncated body; the log says why.
		s.log.WarnContext(r.Context(), "attachment download cut short", "request_id", requestID(r.Context()), "error", err)
		return nil
	}
	return err
}

// newlineStripper drops CR and LF so that base64 decoding of a MIME body
// (wrapped at 76 columns) works on the stream.
type newlineStripper struct{ r io.Reader }

func (n newlineStripper) Read(p []byte) (int, error) {
	for {
		k, err := n.r.Read(p)
		j := 0
		for _, c := range p[:k] {
			if c != '\r' && c != '\n' && c != ' ' && c != '\t' {
				p[j] = c
				j++
			}
		}
		if j > 0 || err != nil {
			return j, err
		}
	}
}
