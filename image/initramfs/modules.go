package initramfs

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
)

// ErrModule means a wanted kernel module is neither a file of the kernel's module directory
// nor built into the kernel.
var ErrModule = errors.New("kernel module not found")

// ModuleName is the kernel's name of a module file or a requested module: the base name
// without .ko and a compression suffix, with '-' read as '_' (dm-mod.ko is dm_mod).
func ModuleName(p string) string {
	b := path.Base(p)
	for _, s := range []string{".gz", ".xz", ".zst"} {
		b = strings.TrimSuffix(b, s)
	}
	return strings.ReplaceAll(strings.TrimSuffix(b, ".ko"), "-", "_")
}

// Index is what a kernel's module directory (/lib/modules/<version>) says about its modules:
// modules.dep, modules.softdep, modules.builtin, modules.alias and modules.builtin.modinfo.
type Index struct {
	// Deps maps a module file (relative to the module directory) to the files it needs, as
	// depmod lists them.
	Deps map[string][]string
	// Builtin holds the names of the modules built into the kernel.
	Builtin map[string]bool
	// Pre and Post map a module name to the names or aliases modprobe loads before and after it.
	Pre, Post map[string][]string
	// Aliases are the lines of modules.alias: pattern and module name.
	Aliases [][2]string
	// BuiltinAliases maps aliases of built-in modules to their names.
	BuiltinAliases map[string]string

	byName map[string][]string
}

// ParseDep reads modules.dep: "path: dep dep ..." per line.
func ParseDep(r io.Reader) (map[string][]string, error) {
	deps := map[string][]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		mod, rest, ok := strings.Cut(line, ":")
		mod = strings.TrimSpace(mod)
		if !ok || !cleanModulePath(mod) {
			return nil, fmt.Errorf("modules.dep line %d: want \"path.ko: deps\", got %q", n, line)
		}
		ds := strings.Fields(rest)
		for _, d := range ds {
			if !cleanModulePath(d) {
				return nil, fmt.Errorf("modules.dep line %d: dependency %q is not a module path", n, d)
			}
		}
		deps[mod] = ds
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read modules.dep: %w", err)
	}
	return deps, nil
}

// cleanModulePath accepts relative paths of .ko files without ".." parts.
func cleanModulePath(p string) bool {
	return p != "" && !strings.HasPrefix(p, "/") && path.Clean(p) == p && !strings.HasPrefix(p, "../") &&
		strings.Contains(path.Base(p), ".ko") && ModuleName(p) != ""
}

// ParseSoftdep reads modules.softdep (or a modprobe.d file's softdep lines):
// "softdep MODULE pre: A B post: C". Names before pre:/post: are ignored, as modprobe does.
func ParseSoftdep(r io.Reader) (pre, post map[string][]string, err error) {
	pre, post = map[string][]string{}, map[string][]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || strings.HasPrefix(f[0], "#") || f[0] != "softdep" {
			continue
		}
		if len(f) < 2 {
			return nil, nil, fmt.Errorf("modules.softdep line %d: softdep without a module", n)
		}
		mod := ModuleName(f[1])
		var into map[string][]string
		for _, w := range f[2:] {
			switch w {
			case "pre:":
				into = pre
			case "post:":
				into = post
			default:
				if into != nil {
					into[mod] = append(into[mod], w)
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("read modules.softdep: %w", err)
	}
	return pre, post, nil
}

// ParseBuiltin reads modules.builtin: one module path per line.
func ParseBuiltin(r io.Reader) (map[string]bool, error) {
	b := map[string]bool{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" && l[0] != '#' {
			b[ModuleName(l)] = true
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read modules.builtin: %w", err)
	}
	return b, nil
}

// ParseAlias reads modules.alias: "alias PATTERN MODULE" per line.
func ParseAlias(r io.Reader) ([][2]string, error) {
	var out [][2]string
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if f[0] != "alias" || len(f) != 3 {
			return nil, fmt.Errorf("modules.alias line %d: want \"alias PATTERN MODULE\"", n)
		}
		out = append(out, [2]string{f[1], ModuleName(f[2])})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read modules.alias: %w", err)
	}
	return out, nil
}

// ParseBuiltinModinfo reads the aliases of built-in modules from modules.builtin.modinfo:
// NUL-separated "module.key=value" strings.
func ParseBuiltinModinfo(b []byte) map[string]string {
	out := map[string]string{}
	for _, kv := range bytes.Split(b, []byte{0}) {
		k, v, ok := strings.Cut(string(kv), "=")
		mod, key, ok2 := strings.Cut(k, ".")
		if ok && ok2 && key == "alias" && mod != "" && v != "" {
			out[v] = ModuleName(mod)
		}
	}
	return out
}

// index fills byName from Deps.
func (ix *Index) index() {
	ix.byName = map[string][]string{}
	for p := range ix.Deps {
		n := ModuleName(p)
		ix.byName[n] = append(ix.byName[n], p)
	}
	for _, ps := range ix.byName {
		sort.Strings(ps)
	}
}

// Resolution is a closed set of modules in the order to load them.
type Resolution struct {
	// Load lists module files (relative to the module directory): every dependency and
	// pre-softdep before the module that needs it, post-softdeps after.
	Load []string
	// Builtin names wanted modules (and softdeps) the kernel has built in: no file needed.
	Builtin []string
	// Missing names optional modules and softdeps this kernel has neither as a file nor
	// built in.
	Missing []string
}

// Resolve closes the wanted modules over modules.dep and the softdeps. A name may be a
// module name or an alias (as modprobe takes them); an alias loads every module it names. A
// required name that the kernel has neither as a module nor built in is an ErrModule.
func (ix *Index) Resolve(required, optional []string) (*Resolution, error) {
	if ix.byName == nil {
		ix.index()
	}
	r := &resolver{ix: ix, state: map[string]int{}, seen: map[string]bool{}, res: &Resolution{}}
	var errs []error
	for _, n := range required {
		if err := r.want(n, false, false); err != nil {
			errs = append(errs, err)
		}
	}
	for _, n := range optional {
		if err := r.want(n, true, false); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	sort.Strings(r.res.Builtin)
	sort.Strings(r.res.Missing)
	return r.res, nil
}

type resolver struct {
	ix    *Index
	state map[string]int // module file: 1 visiting, 2 done
	seen  map[string]bool
	res   *Resolution
}

// want resolves a name or alias and loads what it names; soft marks a softdep.
func (r *resolver) want(name string, optional, soft bool) error {
	n := ModuleName(name)
	if ps := r.ix.byName[n]; len(ps) > 0 {
		if len(ps) > 1 {
			return fmt.Errorf("module %q: %d files of that name (%s): %w", name, len(ps), strings.Join(ps, ", "), ErrModule)
		}
		return r.visit(ps[0], soft)
	}
	if r.ix.Builtin[n] || r.ix.BuiltinAliases[name] != "" {
		r.note(&r.res.Builtin, name)
		return nil
	}
	var hits []string
	for _, a := range r.ix.Aliases {
		if ok, _ := path.Match(a[0], name); ok || a[0] == name {
			hits = append(hits, r.ix.byName[a[1]]...)
		}
	}
	if len(hits) > 0 {
		for _, p := range hits {
			if err := r.visit(p, soft); err != nil {
				return err
			}
		}
		return nil
	}
	if optional {
		r.note(&r.res.Missing, name)
		return nil
	}
	return fmt.Errorf("module %q is neither in modules.dep nor built in (modules.builtin): %w", name, ErrModule)
}

func (r *resolver) note(list *[]string, name string) {
	if !r.seen[name] {
		r.seen[name] = true
		*list = append(*list, name)
	}
}

// visit appends a module file after everything it needs. Reaching a module that is being
// visited is a cycle: an error through modules.dep (depmod refuses those, so the file is
// damaged), broken silently through softdeps, as modprobe does.
func (r *resolver) visit(p string, soft bool) error {
	switch r.state[p] {
	case 2:
		return nil
	case 1:
		if soft {
			return nil
		}
		return fmt.Errorf("modules.dep: %s depends on itself through its dependencies: %w", p, ErrModule)
	}
	r.state[p] = 1
	n := ModuleName(p)
	for _, s := range r.ix.Pre[n] {
		if err := r.want(s, true, true); err != nil {
			return err
		}
	}
	deps := r.ix.Deps[p]
	for i := len(deps) - 1; i >= 0; i-- { // depmod lists the deepest dependency last
		if err := r.visit(deps[i], false); err != nil {
			return err
		}
	}
	r.res.Load = append(r.res.Load, p)
	r.state[p] = 2
	for _, s := range r.ix.Post[n] {
		if err := r.want(s, true, true); err != nil {
			return err
		}
	}
	return nil
}
