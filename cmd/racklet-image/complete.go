package main

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"github.com/racklet/racklet-boot/internal/ociref"
)

// argKind says how one positional argument completes.
type argKind int

const (
	fileArg argKind = iota // a path: the shell's own completion
	refArg                 // an image reference
)

// completeTimeout bounds a completion that asks a registry for tags.
const completeTimeout = 3 * time.Second

// completeArgs completes each positional argument as kinds says.
func completeArgs(g *globals, kinds ...argKind) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) >= len(kinds) {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		if kinds[len(args)] == fileArg {
			return nil, cobra.ShellCompDirectiveDefault
		}
		return completeRef(g)(cmd, args, toComplete)
	}
}

// completeRef completes an image reference: transports, layout directories
// and tags, and a registry repository's tags.
func completeRef(g *globals) cobra.CompletionFunc {
	return func(cmd *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		ctx, cancel := context.WithTimeout(context.Background(), completeTimeout)
		defer cancel()
		refs, done := ociref.Complete(ctx, toComplete, g.registry())
		dir := cobra.ShellCompDirectiveNoFileComp
		if !done {
			dir |= cobra.ShellCompDirectiveNoSpace
		}
		return refs, dir
	}
}
