package verifier

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/racklet/racklet-boot/attest"
)

// Enrollments stores enrollments. Implementations are safe for concurrent
// use and durable when a call returns.
type Enrollments interface {
	Enrollment(ctx context.Context, node string) (attest.Enrollment, bool, error)
	PutEnrollment(ctx context.Context, e attest.Enrollment) error
	DeleteEnrollment(ctx context.Context, node string) error
	ListEnrollments(ctx context.Context) ([]attest.Enrollment, error)
}

// EnrollmentFile keeps enrollments in a JSON file, rewritten atomically
// (temporary file, fsync, rename, fsync of the directory) on every change.
type EnrollmentFile struct {
	path string
	mu   sync.Mutex
	m    map[string]attest.Enrollment
}

var _ Enrollments = (*EnrollmentFile)(nil)

// OpenEnrollmentFile loads path, or starts empty if it does not exist.
func OpenEnrollmentFile(path string) (*EnrollmentFile, error) {
	f := &EnrollmentFile{path: path, m: map[string]attest.Enrollment{}}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read enrollments: %w", err)
	}
	var list []attest.Enrollment
	if err := json.Unmarshal(data, &list); err != nil {
		return nil, fmt.Errorf("enrollment file %s is corrupt: %w", path, err)
	}
	for _, e := range list {
		f.m[e.Node] = e
	}
	return f, nil
}

// Enrollment implements Enrollments.
func (f *EnrollmentFile) Enrollment(ctx context.Context, node string) (attest.Enrollment, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.m[node]
	return e, ok, nil
}

// PutEnrollment implements Enrollments.
func (f *EnrollmentFile) PutEnrollment(ctx context.Context, e attest.Enrollment) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	old, had := f.m[e.Node]
	f.m[e.Node] = e
	if err := f.save(); err != nil {
		if had {
			f.m[e.Node] = old
		} else {
			delete(f.m, e.Node)
		}
		return err
	}
	return nil
}

// DeleteEnrollment implements Enrollments.
func (f *EnrollmentFile) DeleteEnrollment(ctx context.Context, node string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	old, had := f.m[node]
	if !had {
		return nil
	}
	delete(f.m, node)
	if err := f.save(); err != nil {
		f.m[node] = old
		return err
	}
	return nil
}

// ListEnrollments implements Enrollments; the list is sorted by node.
func (f *EnrollmentFile) ListEnrollments(ctx context.Context) ([]attest.Enrollment, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.list(), nil
}

func (f *EnrollmentFile) list() []attest.Enrollment {
	out := make([]attest.Enrollment, 0, len(f.m))
	for _, e := range f.m {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b attest.Enrollment) int { return strings.Compare(a.Node, b.Node) })
	return out
}

func (f *EnrollmentFile) save() error {
	data, err := json.MarshalIndent(f.list(), "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(f.path, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("save enrollments: %w", err)
	}
	return nil
}

// writeFileAtomic replaces path with data so a crash leaves the old or the
// new content, never a mix.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	t, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(t.Name())
	if _, err := t.Write(data); err != nil {
		t.Close()
		return err
	}
	if err := t.Chmod(perm); err != nil {
		t.Close()
		return err
	}
	if err := t.Sync(); err != nil {
		t.Close()
		return err
	}
	if err := t.Close(); err != nil {
		return err
	}
	if err := os.Rename(t.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
