package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
)

// apiCall makes one request to an in-process Orchard with the API key and
// wants one of the statuses; it returns the body.
func apiCall(ctx context.Context, client *http.Client, base, key, method, path string, body []byte, want ...int) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, base+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	out, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	if !slices.Contains(want, resp.StatusCode) {
		return nil, fmt.Errorf("%s %s: %s: %.500s", method, path, resp.Status, out)
	}
	return out, nil
}
