// Package release makes a racklet release: static binaries for each
// platform, SHA256SUMS, an SPDX SBOM read from the binaries' own build
// information (what `go version -m` prints), and racklet-boot as a
// multi-platform OCI image built with go-containerregistry (no Docker
// daemon), written to an OCI layout and signed with racklet's sign
// package. scripts/release.sh runs it.
package release

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/sigstore/sigstore/pkg/signature"
)

// Module is the Go module released.
const Module = "github.com/racklet/racklet-boot"

// Defaults for Options.
var (
	DefaultCommands  = []string{"racklet-boot", "racklet-image", "racklet-agent", "racklet-hat-sim"}
	DefaultPlatforms = []string{"linux/amd64", "linux/arm64"}
)

// File names in the output directory.
const (
	ChecksumsFile = "SHA256SUMS"
	LayoutDir     = "oci" // racklet-boot's image, tagged with the version
)

// Options say what to release and where.
type Options struct {
	// Dir is the output directory, created when missing; files of the same
	// names are replaced.
	Dir string
	// Version is stamped into the binaries (racklet-boot version) and tags
	// the image; required.
	Version string
	// Commands are the cmd/ directories to build; nil means DefaultCommands.
	// racklet-boot must be among them: it is the image.
	Commands []string
	// Platforms are GOOS/GOARCH pairs; nil means DefaultPlatforms.
	Platforms []string
	// Created is the release time in the SBOM and the image (reproducible
	// builds pass the commit's time, as SOURCE_DATE_EPOCH); zero means now.
	Created time.Time
	// Signer signs the image; required.
	Signer signature.Signer
	// Identity is the docker-reference the image's signature claims (where
	// it will be pulled from); "" claims localhost/image.
	Identity string
	// Source is the module's directory; "" means the current directory.
	Source string
	// Go is the go command; "" means "go" on the PATH.
	Go string
	// Log receives a line per step; nil discards.
	Log *slog.Logger
}

// Binary is one built command.
type Binary struct {
	Command  string `json:"command"`
	Platform string `json:"platform"`
	File     string `json:"file"` // name in Dir
	SHA256   string `json:"sha256"`
}

// Result says what Build wrote into Options.Dir.
type Result struct {
	Binaries  []Binary `json:"binaries"`
	Checksums string   `json:"checksums"` // ChecksumsFile
	SBOM      string   `json:"sbom"`      // the SPDX JSON file
	Layout    string   `json:"layout"`    // LayoutDir
	ImageRef  string   `json:"image"`     // oci-layout:DIR:VERSION
	Digest    v1.Hash  `json:"digest"`    // the image index's digest, which the signature covers
}

// Build makes the release: binaries, SHA256SUMS, the SBOM and the signed image.
func Build(ctx context.Context, o Options) (*Result, error) {
	if o.Version == "" || o.Dir == "" || o.Signer == nil {
		return nil, errors.New("release: Dir, Version and Signer are required")
	}
	if o.Commands == nil {
		o.Commands = DefaultCommands
	}
	if o.Platforms == nil {
		o.Platforms = DefaultPlatforms
	}
	if !slices.Contains(o.Commands, "racklet-boot") {
		return nil, errors.New("release: racklet-boot is the image: build it too")
	}
	if o.Created.IsZero() {
		o.Created = time.Now().UTC().Truncate(time.Second)
	}
	if o.Go == "" {
		o.Go = "go"
	}
	if o.Source == "" {
		o.Source = "."
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("release directory: %w", err)
	}
	res := &Result{Checksums: ChecksumsFile, Layout: LayoutDir}
	for _, plat := range o.Platforms {
		for _, cmd := range o.Commands {
			b, err := buildBinary(ctx, o, cmd, plat)
			if err != nil {
				return nil, err
			}
			o.Log.Info("built", "file", b.File, "sha256", b.SHA256)
			res.Binaries = append(res.Binaries, b)
		}
	}
	sbom, err := writeSBOM(o, res.Binaries)
	if err != nil {
		return nil, err
	}
	res.SBOM = sbom
	o.Log.Info("wrote SBOM", "file", sbom)
	if res.Digest, err = writeImage(ctx, o, res.Binaries); err != nil {
		return nil, err
	}
	res.ImageRef = "oci-layout:" + filepath.Join(o.Dir, LayoutDir) + ":" + o.Version
	o.Log.Info("wrote and signed the image", "ref", res.ImageRef, "digest", res.Digest)
	if err := writeChecksums(o.Dir, append(binaryFiles(res.Binaries), sbom)); err != nil {
		return nil, err
	}
	return res, nil
}

// buildBinary cross-compiles one static command.
func buildBinary(ctx context.Context, o Options, cmd, plat string) (Binary, error) {
	goos, goarch, ok := strings.Cut(plat, "/")
	if !ok {
		return Binary{}, fmt.Errorf("release: platform %q: want GOOS/GOARCH", plat)
	}
	name := fmt.Sprintf("%s_%s_%s", cmd, goos, goarch)
	out, err := filepath.Abs(filepath.Join(o.Dir, name))
	if err != nil {
		return Binary{}, err
	}
	c := exec.CommandContext(ctx, o.Go, "build", "-trimpath",
		"-ldflags", "-s -w -X "+Module+"/internal/version.Version="+o.Version,
		"-o", out, "./cmd/"+cmd)
	c.Dir = o.Source
	c.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch)
	if b, err := c.CombinedOutput(); err != nil {
		return Binary{}, fmt.Errorf("build %s for %s: %w\n%s", cmd, plat, err, b)
	}
	sum, err := fileSHA256(out)
	if err != nil {
		return Binary{}, err
	}
	return Binary{Command: cmd, Platform: plat, File: name, SHA256: sum}, nil
}

func binaryFiles(bs []Binary) []string {
	var out []string
	for _, b := range bs {
		out = append(out, b.File)
	}
	return out
}

// writeChecksums writes SHA256SUMS as sha256sum writes it ("HEX  NAME").
func writeChecksums(dir string, files []string) error {
	sort.Strings(files)
	var b strings.Builder
	for _, f := range files {
		sum, err := fileSHA256(filepath.Join(dir, f))
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s  %s\n", sum, f)
	}
	return os.WriteFile(filepath.Join(dir, ChecksumsFile), []byte(b.String()), 0o644)
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
