package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/racklet/racklet-boot/boot/server"
	"github.com/racklet/racklet-boot/internal/cli"
	"github.com/racklet/racklet-boot/rack"
)

// client is how a command reaches racklet-boot's state: a running
// server's operator API (its unix socket in --data-dir, or --server with
// --token-file) or, with the server stopped, its data directory. Every
// command that reads a server's state registers these flags, so a new way
// to reach the server is added once.
type client struct{ adminFlags }

// nodes lists the server's nodes with up to events boot events each: from
// the running server when its socket answers or --server names one, else
// from the data directory.
func (c *client) nodes(ctx context.Context, events int) ([]server.NodeStatus, error) {
	if c.Local() && !socketAnswers(c.SocketPath()) {
		return server.ReadNodes(ctx, c.DataDir, events)
	}
	ac, err := c.client()
	if err != nil {
		return nil, err
	}
	return ac.Nodes(ctx, events)
}

// pick keeps the nodes named (by name or key), in the order given; a
// name no node has is a not-found error.
func pick(nodes []server.NodeStatus, names []string) ([]server.NodeStatus, error) {
	if len(names) == 0 {
		return nodes, nil
	}
	var out []server.NodeStatus
	var missing []string
	for _, n := range names {
		found := false
		for _, v := range nodes {
			if v.Name == n || v.Key == n {
				out, found = append(out, v), true
				break
			}
		}
		if !found {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return nil, cli.NotFound(fmt.Errorf("no node %s: racklet-boot nodes lists them", strings.Join(missing, ", ")))
	}
	return out, nil
}

// completeNodes completes node names from the server or data directory the
// command's flags name (or its config file), leaving out names already given.
func (c *client) completeNodes(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var names []string
	if nodes, err := c.nodes(ctx, 0); err == nil {
		for _, n := range nodes {
			if n.Name != "" {
				names = append(names, n.Name)
			}
		}
	} else if f := cmd.Flags().Lookup("config"); f != nil {
		if cfg, err := rack.Load(f.Value.String()); err == nil {
			for _, n := range cfg.Nodes {
				names = append(names, n.Name)
			}
		}
	}
	var out []cobra.Completion
	for _, n := range names {
		if strings.HasPrefix(n, toComplete) && !contains(args, n) {
			out = append(out, n)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
