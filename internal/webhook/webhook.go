// Package webhook turns change rows into Nylas-compatible webhook
// notifications (nylas-v3-api.md §6): it checks destination URLs with the
// challenge, signs bodies (X-Nylas-Signature), and runs the Dispatcher,
// which enqueues one delivery per subscribed webhook from the change rows
// and POSTs them with retries, keeping each webhook's health (active,
// failing, failed).
//
// Delivery is at least once. Every attempt is counted in the store before
// its POST (the store's ClaimDeliveries, after mox's queue), so a crash or
// a restart never loses a notification: a claim left by a dead node lapses
// and the delivery is sent again under the same notification id, which
// receivers dedupe by.
package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// userAgent is sent with every request Orchard makes to a webhook URL.
const userAgent = "Orchard"

// SignatureHeader carries Sign's result on every notification.
const SignatureHeader = "X-Nylas-Signature"

// Sign returns the X-Nylas-Signature of body: the lowercase hex
// HMAC-SHA256 of the exact bytes sent (the compressed ones when the
// webhook has compressed delivery), keyed with the webhook secret.
func Sign(secret []byte, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// ErrVerification is wrapped by VerifyURL's errors that are the URL's
// fault (unusable URL, no answer, wrong status or body): the API answers
// them with a 400 carrying the error's message.
var ErrVerification = errors.New("webhook URL verification failed")

// VerifyTimeout is how long VerifyURL waits for the challenge's answer.
const VerifyTimeout = 10 * time.Second

// VerifyURL checks that u accepts notifications, as Nylas does when a
// webhook is created: GET u?challenge=<random> must answer 200 with
// exactly the challenge as its body, within VerifyTimeout. An error
// wrapping ErrVerification says what went wrong in words fit for the API
// caller; any other error (ctx ended) is the caller's. client nil means
// http.DefaultClient.
func VerifyURL(ctx context.Context, client *http.Client, u string) error {
	return verifyURL(ctx, client, u, VerifyTimeout)
}

func verifyURL(ctx context.Context, client *http.Client, raw string, timeout time.Duration) error {
	if client == nil {
		client = http.DefaultClient
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrVerification, fmt.Sprintf(format, args...))
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fail("webhook_url %q is not an http or https URL", raw)
	}
	challenge := newChallenge()
	q := u.Query()
	q.Set("challenge", challenge)
	u.RawQuery = q.Encode()
	u.Fragment = ""

	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(tctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fail("webhook_url %q: %v", raw, err)
	}
	req.Header.Set("User-Agent", userAgent)
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if tctx.Err() != nil {
			return fail("GET %s?challenge=… did not answer within %v", raw, timeout)
		}
		return fail("GET %s?challenge=…: %v", raw, unwrapURLError(err))
	}
	defer resp.Body.Close()
	// Read one byte more than the challenge, to tell an exact echo from a
	// body that only starts with it.
	body, err := io.ReadAll(io.LimitReader(resp.Body, int64(len(challenge))+1))
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if tctx.Err() != nil {
			return fail("GET %s?challenge=… did not answer within %v", raw, timeout)
		}
		return fail("GET %s?challenge=…: reading the answer: %v", raw, unwrapURLError(err))
	}
	if resp.StatusCode != http.StatusOK {
		return fail("GET %s?challenge=… answered %s, want 200 with the challenge as the body", raw, resp.Status)
	}
	if string(body) != challenge {
		return fail("GET %s?challenge=… answered 200 but its body is not the challenge: it must be exactly the value of the challenge query parameter, with nothing around it", raw)
	}
	return nil
}

// unwrapURLError drops the "Get \"url\":" prefix of a *url.Error, whose
// URL would repeat the challenge.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// newChallenge returns 32 random hex digits.
func newChallenge() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

// newID returns a random UUID (version 4), the form of the store's ids:
// notification ids are generated here because they are part of the stored
// payload.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
