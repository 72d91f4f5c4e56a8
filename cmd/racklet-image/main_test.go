package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/racklet/racklet-boot/image/imagetest"
	"github.com/racklet/racklet-boot/internal/cli"
)

func run(args ...string) (string, error) {
	out, _, err := runCode(args...)
	return out, err
}

// runCode runs the command as main does and returns its exit code too.
func runCode(args ...string) (string, int, error) {
	root := newRoot()
	cli.Prepare(root)
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	code, err := cli.Execute(context.Background(), root)
	return out.String(), code, err
}

func TestCommandErrors(t *testing.T) {
	t.Setenv(passwordEnv, "not used")
	agent, err := imagetest.FakeAgent(t.TempDir(), "arm64")
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		args []string
		want string
	}{
		"build needs a destination":    {args: []string{"build", "--base", "oci-layout:/x"}, want: "exactly one of --dir DIR and --push REF"},
		"build takes one destination":  {args: []string{"build", "--base", "b", "--dir", "o", "--push", "r"}, want: "exactly one"},
		"build old --output and --dir": {args: []string{"build", "--base", "b", "--dir", "o", "--output", "o2"}, want: "give --dir DIR once"},
		"build needs a base":           {args: []string{"build", "--output", "o"}, want: `"base" not set`},
		"bad compression":              {args: []string{"build", "--base", "oci-layout:/nonexistent", "--output", t.TempDir() + "/o", "--compression", "lz4"}, want: "compression \"lz4\""},
		"missing base":                 {args: []string{"build", "--base", "oci-layout:/nonexistent", "--dir", t.TempDir() + "/o", "--agent", agent}, want: "base image not found"},
		"no agent":                     {args: []string{"build", "--base", "oci-layout:/nonexistent", "--dir", t.TempDir() + "/o"}, want: "CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build"},
		"bad node setting":             {args: []string{"build", "--base", "b", "--dir", "o", "--on-failure", "explode"}, want: `node.onFailure "explode"`},
		"boot-key missing":             {args: []string{"build", "--base", "b", "--dir", "o", "--boot-key", "/nonexistent-boot.key"}, want: "nonexistent-boot.key"},
		"sign-key needs push":          {args: []string{"build", "--base", "b", "--dir", "o", "--sign-key", "k.key"}, want: "--sign-key signs what --push pushes"},
		"sign-key missing":             {args: []string{"build", "--base", "b", "--push", "r", "--sign-key", "/nonexistent.key"}, want: "nonexistent.key"},
		"push wants two args":          {args: []string{"push", "dir"}, want: "accepts 2 arg(s)"},
		"inspect dir without manifest": {args: []string{"inspect", "-o", "json", t.TempDir()}, want: "read image manifest"},
		"inspect missing dir":          {args: []string{"inspect", "/nonexistent/out"}, want: "read image manifest"},
		"flash missing image":          {args: []string{"flash", "/nonexistent.img", t.TempDir() + "/dev"}, want: "open image"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := run(tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	out, err := run("version")
	if err != nil || !strings.HasPrefix(out, "racklet-image ") {
		t.Errorf("version printed %q, %v", out, err)
	}
}

// TestExitCodes: usage mistakes, missing things and refusals each exit
// with their own code.
func TestExitCodes(t *testing.T) {
	t.Setenv(passwordEnv, "not used")
	dir := t.TempDir()
	for name, tc := range map[string]struct {
		args []string
		code int
	}{
		"unknown command":   {[]string{"frobnicate"}, cli.ExitUsage},
		"unknown flag":      {[]string{"inspect", "--bogus", "x"}, cli.ExitUsage},
		"missing argument":  {[]string{"push", "dir"}, cli.ExitUsage},
		"missing flag":      {[]string{"verify", "oci-layout:" + dir}, cli.ExitUsage},
		"bad output format": {[]string{"inspect", "-o", "xml", dir}, cli.ExitUsage},
		"flag combination":  {[]string{"build", "--base", "b", "--dir", "o", "--push", "r"}, cli.ExitUsage},
		"missing directory": {[]string{"inspect", dir + "/none"}, cli.ExitNotFound},
		"missing key file":  {[]string{"verify", "oci-layout:" + dir, "--key", dir + "/none.pub"}, cli.ExitNotFound},
		"not an image":      {[]string{"inspect", dir}, cli.ExitNotFound},
		"help":              {[]string{"inspect", "--help"}, cli.ExitOK},
	} {
		t.Run(name, func(t *testing.T) {
			out, code, err := runCode(tc.args...)
			if code != tc.code {
				t.Errorf("exit %d (%v), want %d", code, err, tc.code)
			}
			if name == "help" && (!strings.Contains(out, "Exit status:") || !strings.Contains(out, "77  refused by policy") || !strings.Contains(out, "Examples:")) {
				t.Errorf("--help lacks the exit codes or examples:\n%s", out)
			}
		})
	}
}

// TestConventions: every command has an example and -o table|json|yaml.
func TestConventions(t *testing.T) {
	for _, p := range cli.Lint(newRoot()) {
		t.Error(p)
	}
}
