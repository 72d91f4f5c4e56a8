package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/racklet/racklet-boot/bmc"
	"github.com/racklet/racklet-boot/enrol"
)

// AdminClient calls a running racklet-boot's admin API (the power,
// console and enrolment commands of racklet-boot use it). Every request
// goes through Do, the one place a credential is added.
type AdminClient struct {
	// Base is the server's URL, e.g. http://10.0.0.2.
	Base string
	// Token, when set, is sent as a bearer token.
	Token string
	// HTTP is the client; nil is http.DefaultClient.
	HTTP *http.Client
}

// Do sends an admin request for path (under AdminPrefix) and returns the
// response when its status is 2xx; otherwise the server's error message.
func (c *AdminClient) Do(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	u := strings.TrimRight(c.Base, "/") + AdminPrefix + path
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ask racklet-boot: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		var e apiError
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return nil, &AdminError{Status: resp.StatusCode, Msg: e.Error}
		}
		return nil, &AdminError{Status: resp.StatusCode, Msg: strings.TrimSpace(string(b))}
	}
	return resp, nil
}

// AdminError is a refusal from the admin API.
type AdminError struct {
	Status int
	Msg    string
}

// Error implements error.
func (e *AdminError) Error() string {
	return fmt.Sprintf("racklet-boot: %s (%d %s)", e.Msg, e.Status, http.StatusText(e.Status))
}

func (c *AdminClient) getJSON(ctx context.Context, method, path string, body, out any) error {
	resp, err := c.Do(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(out)
}

// Power asks for a power action (on, off, cycle) on node.
func (c *AdminClient) Power(ctx context.Context, node, action, by string) (bmc.Status, error) {
	var st bmc.Status
	err := c.getJSON(ctx, http.MethodPost, "nodes/"+url.PathEscape(node)+"/power", PowerRequest{Action: action, By: by}, &st)
	return st, err
}

// Console copies node's console of boot (0: the newest) to w; with follow
// it keeps copying new output until ctx ends.
func (c *AdminClient) Console(ctx context.Context, w io.Writer, node string, boot uint64, follow bool) error {
	q := url.Values{}
	if boot != 0 {
		q.Set("boot", strconv.FormatUint(boot, 10))
	}
	if follow {
		q.Set("follow", "1")
	}
	resp, err := c.Do(ctx, http.MethodGet, "nodes/"+url.PathEscape(node)+"/console?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(w, resp.Body)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// Pending lists the machines waiting for approval.
func (c *AdminClient) Pending(ctx context.Context) ([]enrol.Pending, error) {
	var list []enrol.Pending
	return list, c.getJSON(ctx, http.MethodGet, "enrolments", nil, &list)
}

// Approve admits a pending machine as a node.
func (c *AdminClient) Approve(ctx context.Context, a ApproveRequest) (ApproveResult, error) {
	var r ApproveResult
	return r, c.getJSON(ctx, http.MethodPost, "enrolments/approve", a, &r)
}
