package cli

import (
	"fmt"
	"slices"

	"github.com/spf13/cobra"
)

// Lint checks a command tree against the conventions every racklet
// command follows and returns one line per breach: every runnable command
// has an Example, and every one but those named in quiet (commands that
// print no data, like a server) takes -o/--output as the output format.
func Lint(root *cobra.Command, quiet ...string) []string {
	var problems []string
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Runnable() && !c.Hidden && !isBuiltin(c) {
			path := c.CommandPath()
			if c.Example == "" {
				problems = append(problems, path+": no Example")
			}
			f := c.Flags().Lookup("output")
			switch {
			case slices.Contains(quiet, path):
				if f != nil {
					problems = append(problems, path+": prints no data but has --output")
				}
			case f == nil:
				problems = append(problems, path+": no -o/--output")
			case f.Shorthand != "o" || f.DefValue != "table":
				problems = append(problems, fmt.Sprintf("%s: --output is -%s with default %q, want -o table|json|yaml", path, f.Shorthand, f.DefValue))
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	return problems
}

// isBuiltin reports cobra's own help and completion commands.
func isBuiltin(c *cobra.Command) bool {
	for p := c; p != nil; p = p.Parent() {
		if p.Name() == "help" || p.Name() == "completion" || p.Name() == cobra.ShellCompRequestCmd || p.Name() == cobra.ShellCompNoDescRequestCmd {
			return true
		}
	}
	return false
}
