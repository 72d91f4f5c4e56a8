package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/racklet/racklet-boot/bmc"
	"github.com/racklet/racklet-boot/enrol"
	"github.com/racklet/racklet-boot/internal/adminclient"
)

// AdminClient is the typed operator API: the calls of racklet-boot's
// power, console, nodes and enrolment commands, over one
// adminclient.Client (the one place the credential is presented: the unix
// socket, or a bearer token). Make it with NewAdminClient.
type AdminClient struct {
	*adminclient.Client
}

// NewAdminClient wraps c.
func NewAdminClient(c *adminclient.Client) *AdminClient { return &AdminClient{Client: c} }

// Power asks for a power action (on, off, cycle) on node.
func (c *AdminClient) Power(ctx context.Context, node, action, by string) (bmc.Status, error) {
	var st bmc.Status
	err := c.JSON(ctx, http.MethodPost, AdminPrefix+"nodes/"+url.PathEscape(node)+"/power", PowerRequest{Action: action, By: by}, &st)
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
	resp, err := c.Do(ctx, http.MethodGet, AdminPrefix+"nodes/"+url.PathEscape(node)+"/console?"+q.Encode(), nil)
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

// Pending lists the machines and keys waiting for approval.
func (c *AdminClient) Pending(ctx context.Context) ([]enrol.Pending, error) {
	var list []enrol.Pending
	return list, c.JSON(ctx, http.MethodGet, AdminPrefix+"enrolments", nil, &list)
}

// Approve admits a pending machine as a node, or a pending key as a config
// node's.
func (c *AdminClient) Approve(ctx context.Context, a ApproveRequest) (ApproveResult, error) {
	var r ApproveResult
	return r, c.JSON(ctx, http.MethodPost, AdminPrefix+"enrolments/approve", a, &r)
}

// Nodes lists the nodes the server knows, each with its lease and its
// last events (at most events of them).
func (c *AdminClient) Nodes(ctx context.Context, events int) ([]NodeStatus, error) {
	var list nodeList
	if err := c.JSON(ctx, http.MethodGet, "/api/v1/nodes", nil, &list); err != nil {
		return nil, err
	}
	out := make([]NodeStatus, 0, len(list.Nodes))
	for _, n := range list.Nodes {
		v := NodeStatus{Node: n.Node, Lease: n.Lease}
		if events > 0 {
			var ev eventList
			if err := c.JSON(ctx, http.MethodGet, fmt.Sprintf("/api/v1/nodes/%s/events?limit=%d", url.PathEscape(n.Key), events), nil, &ev); err != nil {
				return nil, err
			}
			v.Events = ev.Events
		}
		out = append(out, v)
	}
	sortNodes(out)
	return out, nil
}
