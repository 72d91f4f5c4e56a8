package image

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// inputDigest hashes what a build depends on: the base manifest digest, the racklet-agent
// digest, the Kubernetes profile's files (kubeDigest, "" without the profile), the overlay
// content (paths, modes, link targets, bytes) and the spec with its paths left out. The version
// goes up when the same inputs build other bytes (v3: the initramfs carries the RNG drivers, a
// root without systemd gets the health script), so that a cached build of an older
// racklet-image is not taken for this one's.
func inputDigest(baseDigest string, spec Spec, agentDigest, kubeDigest string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "racklet-image input v3\nbase %s\nagent %s\n", baseDigest, agentDigest)
	if kubeDigest != "" {
		fmt.Fprintf(h, "kubernetes %s\n", kubeDigest)
	}
	s := spec
	s.Overlay, s.Base, s.Agent = "", "", ""
	js, _ := json.Marshal(s)
	fmt.Fprintf(h, "spec %s\n", js)
	if spec.Overlay != "" {
		err := filepath.WalkDir(spec.Overlay, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(spec.Overlay, p)
			fi, err := os.Lstat(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "%q %o", filepath.ToSlash(rel), fi.Mode())
			switch {
			case fi.Mode()&fs.ModeSymlink != 0:
				t, err := os.Readlink(p)
				if err != nil {
					return err
				}
				fmt.Fprintf(h, " -> %q", t)
			case fi.Mode().IsRegular():
				f, err := os.Open(p)
				if err != nil {
					return err
				}
				fh := sha256.New()
				_, err = io.Copy(fh, f)
				f.Close()
				if err != nil {
					return err
				}
				fmt.Fprintf(h, " %x", fh.Sum(nil))
			}
			fmt.Fprintln(h)
			return nil
		})
		if err != nil {
			return "", fmt.Errorf("hash overlay %s: %w", spec.Overlay, err)
		}
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// derive returns n bytes derived from the input digest for one purpose.
func derive(input, purpose string, n int) []byte {
	var out []byte
	for i := 0; len(out) < n; i++ {
		h := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%s\x00%d", input, purpose, i)))
		out = append(out, h[:]...)
	}
	return out[:n]
}

func derive32(input, purpose string) uint32 {
	return binary.LittleEndian.Uint32(derive(input, purpose, 4))
}

// buildEpoch is SOURCE_DATE_EPOCH when set, else the base image's creation time, else 0.
func buildEpoch(created time.Time) (int64, error) {
	if v, ok := os.LookupEnv("SOURCE_DATE_EPOCH"); ok && v != "" {
		e, err := strconv.ParseInt(v, 10, 64)
		if err != nil || e < 0 {
			return 0, fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a Unix time", v)
		}
		return e, nil
	}
	if created.Unix() > 0 {
		return created.Unix(), nil
	}
	return 0, nil
}
