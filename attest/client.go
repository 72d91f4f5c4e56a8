package attest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Client is the node's side of the attestation API: what the agent in a
// node's initramfs calls.
type Client struct {
	// Server is racklet-boot's base URL, e.g. http://10.0.0.2:80.
	Server string
	// HTTP sends the requests; nil means http.DefaultClient.
	HTTP *http.Client
}

// Refused is racklet-boot's refusal of a quote: nothing was released.
type Refused struct {
	Status int    // HTTP status (403)
	Code   string // machine-readable: "measurement", "nonce", "pending", ...
	Reason string // for the operator
}

// Error implements error.
func (r *Refused) Error() string {
	return fmt.Sprintf("attestation refused by racklet-boot: %s", r.Reason)
}

// Challenge asks for a single-use nonce for node.
func (c *Client) Challenge(ctx context.Context, node string) (Challenge, error) {
	var ch Challenge
	err := c.post(ctx, "challenge", ChallengeRequest{Node: node}, &ch)
	if err == nil && len(ch.Nonce) != 32 {
		err = fmt.Errorf("racklet-boot sent a %d-byte nonce, want 32", len(ch.Nonce))
	}
	return ch, err
}

// Quote submits a signed quote and returns the release; a refusal is a
// *Refused.
func (c *Client) Quote(ctx context.Context, q QuoteSubmission) (Release, error) {
	var rel Release
	err := c.post(ctx, "quote", q, &rel)
	return rel, err
}

// maxAnswer bounds an answer of the API.
const maxAnswer = 1 << 20

func (c *Client) post(ctx context.Context, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	url := strings.TrimSuffix(c.Server, "/") + PathPrefix + path
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("racklet-boot URL: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("reach racklet-boot: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return fmt.Errorf("read racklet-boot answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var eb ErrorBody
		if json.Unmarshal(data, &eb) != nil || eb.Error == "" {
			eb.Error = fmt.Sprintf("HTTP %s: %s", resp.Status, strings.TrimSpace(string(data)))
		}
		if resp.StatusCode == http.StatusForbidden {
			return &Refused{Status: resp.StatusCode, Code: eb.Code, Reason: eb.Error}
		}
		return fmt.Errorf("racklet-boot %s: %s", path, eb.Error)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("racklet-boot %s answer: %w", path, err)
	}
	return nil
}
