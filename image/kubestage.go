package image

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/racklet/racklet-boot/image/flatten"
	"github.com/racklet/racklet-boot/kube/kubebin"
	"github.com/racklet/racklet-boot/kube/profile"
)

// kubeFiles returns what the spec's Kubernetes profile adds to the root for
// arch, with kubelet and kubeadm from the kubebin cache (built when
// missing), and a digest of all of it for the input digest. No profile: nil.
func kubeFiles(ctx context.Context, spec Spec, arch string, opts Options, log *slog.Logger) ([]profile.File, string, error) {
	if spec.Kubernetes == nil {
		return nil, "", nil
	}
	ko := opts.Kubernetes
	ko.Version, ko.Arch, ko.Commands = spec.Kubernetes.Version, arch, kubebin.Node
	if ko.Logger == nil {
		ko.Logger = log
	}
	bin, err := kubebin.Build(ctx, ko)
	if err != nil {
		return nil, "", fmt.Errorf("kubernetes profile: %w", err)
	}
	files, err := profile.Files(bin)
	if err != nil {
		return nil, "", err
	}
	h := sha256.New()
	for _, f := range files {
		fmt.Fprintf(h, "%q %o", f.Path, f.Mode)
		switch {
		case f.Link != "":
			fmt.Fprintf(h, " -> %q", f.Link)
		case f.Source != "":
			_, d, err := hashFile(f.Source)
			if err != nil {
				return nil, "", fmt.Errorf("kubernetes profile: %w", err)
			}
			fmt.Fprintf(h, " %s", d)
		default:
			fmt.Fprintf(h, " %x", sha256.Sum256(f.Data))
		}
		fmt.Fprintln(h)
	}
	log.Info("kubernetes profile", "version", bin.Version, "arch", bin.Arch, "files", len(files), "file", bin.Dir)
	return files, fmt.Sprintf("sha256:%x", h.Sum(nil)), nil
}

// addKubernetes checks the flattened base has what the profile relies on
// (profile.CheckBase) and adds the profile's files over it.
func addKubernetes(b *flatten.Builder, files []profile.File) error {
	if err := profile.CheckBase(b.Tree().FS()); err != nil {
		return err
	}
	var errs []error
	for _, f := range files {
		switch {
		case f.Link != "":
			errs = append(errs, b.AddSymlink(f.Path, f.Link))
		case f.Source != "":
			errs = append(errs, addHostFile(b, f.Path, uint32(f.Mode.Perm()), f.Source))
		default:
			errs = append(errs, b.AddFile(f.Path, uint32(f.Mode.Perm()), bytes.NewReader(f.Data), int64(len(f.Data))))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("kubernetes profile: %w", err)
	}
	return nil
}

// addHostFile adds the host file src at name.
func addHostFile(b *flatten.Builder, name string, perm uint32, src string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	return b.AddFile(name, perm, io.LimitReader(f, fi.Size()), fi.Size())
}
