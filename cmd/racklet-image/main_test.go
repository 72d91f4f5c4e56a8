package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/racklet/racklet-boot/image/imagetest"
)

func run(args ...string) (string, error) {
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
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
		"build needs a destination":    {args: []string{"build", "--base", "oci-layout:/x"}, want: "exactly one of --output DIR and --push REF"},
		"build takes one destination":  {args: []string{"build", "--base", "b", "--output", "o", "--push", "r"}, want: "exactly one"},
		"build needs a base":           {args: []string{"build", "--output", "o"}, want: `"base" not set`},
		"bad compression":              {args: []string{"build", "--base", "oci-layout:/nonexistent", "--output", t.TempDir() + "/o", "--compression", "lz4"}, want: "compression \"lz4\""},
		"missing base":                 {args: []string{"build", "--base", "oci-layout:/nonexistent", "--output", t.TempDir() + "/o", "--agent", agent}, want: "base image not found"},
		"no agent":                     {args: []string{"build", "--base", "oci-layout:/nonexistent", "--output", t.TempDir() + "/o"}, want: "CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build"},
		"bad node setting":             {args: []string{"build", "--base", "b", "--output", "o", "--on-failure", "explode"}, want: `node.onFailure "explode"`},
		"sign-key needs push":          {args: []string{"build", "--base", "b", "--output", "o", "--sign-key", "k.key"}, want: "--sign-key signs what --push pushes"},
		"sign-key missing":             {args: []string{"build", "--base", "b", "--push", "r", "--sign-key", "/nonexistent.key"}, want: "nonexistent.key"},
		"boot-key missing":             {args: []string{"build", "--base", "b", "--output", "o", "--boot-key", "/nonexistent-boot.key"}, want: "nonexistent-boot.key"},
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
