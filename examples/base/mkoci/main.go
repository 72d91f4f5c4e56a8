// Command mkoci packs a root file system tarball into an OCI image layout and copies tagged
// images between layouts. examples/base/debian.sh uses it: `pack` turns mmdebstrap's
// reproducible tarball into a one-layer image with the platform in its config and the tag in
// the layout's index, `copy` puts a cached image into the layout the caller asked for
// (hard-linking blobs where it can), keeping the other tags of that layout.
//
//	mkoci pack -tar ROOT.tar -platform linux/arm64 -layout DIR -tag bookworm-arm64 [-epoch N] [-annotation K=V]...
//	mkoci copy -from DIR -tag bookworm-arm64 -to DIR
//
// Each prints the image's manifest digest. The same tarball, platform, epoch and annotations
// give the same digest: the layer is gzip'd by go-containerregistry at a fixed level, and every
// time in the config comes from the epoch.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "mkoci:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: mkoci pack|copy [flags] (-h for the flags of each)")
	}
	var (
		d   v1.Hash
		err error
	)
	switch args[0] {
	case "pack":
		var opts PackOptions
		if opts, err = packFlags(args[1:]); err == nil {
			d, err = Pack(ctx, opts)
		}
	case "copy":
		var opts CopyOptions
		if opts, err = copyFlags(args[1:]); err == nil {
			d, err = Copy(ctx, opts)
		}
	default:
		return fmt.Errorf("unknown command %q: want pack or copy", args[0])
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, d)
	return nil
}

func packFlags(args []string) (PackOptions, error) {
	fs := flag.NewFlagSet("mkoci pack", flag.ContinueOnError)
	tarPath := fs.String("tar", "", "root file system tarball (uncompressed), one layer")
	plat := fs.String("platform", "linux/arm64", "OS/architecture[/variant] written into the config")
	dir := fs.String("layout", "", "OCI layout to write (created when missing)")
	tag := fs.String("tag", "", "tag of the image in the layout's index")
	epoch := fs.String("epoch", os.Getenv("SOURCE_DATE_EPOCH"), "creation time, seconds since 1970 (default $SOURCE_DATE_EPOCH)")
	ann := annotations{}
	fs.Var(ann, "annotation", "KEY=VALUE manifest annotation (repeatable)")
	if err := fs.Parse(args); err != nil {
		return PackOptions{}, err
	}
	if *tarPath == "" || *dir == "" || *tag == "" {
		return PackOptions{}, fmt.Errorf("pack needs -tar, -layout and -tag")
	}
	p, err := v1.ParsePlatform(*plat)
	if err != nil {
		return PackOptions{}, fmt.Errorf("parse -platform %q: %w", *plat, err)
	}
	sec, err := strconv.ParseInt(*epoch, 10, 64)
	if err != nil {
		return PackOptions{}, fmt.Errorf("-epoch (or SOURCE_DATE_EPOCH) %q is not seconds since 1970: %w", *epoch, err)
	}
	return PackOptions{Tar: *tarPath, Platform: *p, Layout: *dir, Tag: *tag, Epoch: sec, Annotations: ann}, nil
}

func copyFlags(args []string) (CopyOptions, error) {
	fs := flag.NewFlagSet("mkoci copy", flag.ContinueOnError)
	from := fs.String("from", "", "source OCI layout")
	tag := fs.String("tag", "", "tag of the image to copy")
	to := fs.String("to", "", "destination OCI layout (created when missing)")
	if err := fs.Parse(args); err != nil {
		return CopyOptions{}, err
	}
	if *from == "" || *tag == "" || *to == "" {
		return CopyOptions{}, fmt.Errorf("copy needs -from, -tag and -to")
	}
	return CopyOptions{From: *from, Tag: *tag, To: *to}, nil
}

// annotations collects repeated -annotation KEY=VALUE flags.
type annotations map[string]string

func (a annotations) String() string { return fmt.Sprint(map[string]string(a)) }

func (a annotations) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("annotation %q is not KEY=VALUE", s)
	}
	a[k] = v
	return nil
}
