package archtest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// oldKeys are log attribute keys replaced by the shared spellings, so that
// one query (node=pi-01, ip=10.0.0.7) finds a machine in every component's
// lines: node, mac, serial, ip, file.
var oldKeys = map[string]string{
	"client":     "ip",
	"peer":       "ip",
	"addr":       "ip (a client's address) or listen (a listen address)",
	"clientIP":   "ip",
	"remoteAddr": "ip",
	"hwaddr":     "mac",
	"filename":   "file",
	"nodeName":   "node",
	"node_name":  "node",
}

// slogMethods take alternating key/value arguments after the message
// (With: from the first argument).
var slogMethods = map[string]int{
	"Debug": 1, "Info": 1, "Warn": 1, "Error": 1,
	"DebugContext": 2, "InfoContext": 2, "WarnContext": 2, "ErrorContext": 2,
	"Log": 3, "With": 0,
}

// slogAttrs are the slog.Attr constructors: the key is the first argument.
var slogAttrs = map[string]bool{
	"String": true, "Int": true, "Int64": true, "Uint64": true, "Float64": true,
	"Bool": true, "Time": true, "Duration": true, "Any": true, "Group": true,
}

// TestLogKeys parses every Go file of the module and fails on a log
// attribute key in an old spelling.
func TestLogKeys(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	fset := token.NewFileSet()
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); n == "testdata" || n == "vendor" || (strings.HasPrefix(n, ".") && p != root) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			for _, key := range logKeys(call) {
				if want, old := oldKeys[key.value]; old {
					rel, _ := filepath.Rel(root, p)
					found = append(found, rel+":"+strconv.Itoa(fset.Position(key.pos).Line)+": log key "+strconv.Quote(key.value)+": use "+want)
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(found)
	for _, f := range found {
		t.Error(f)
	}
}

type key struct {
	value string
	pos   token.Pos
}

// logKeys returns the string-literal keys of a slog call: the key/value
// arguments of a Logger method, or the key of an Attr constructor.
func logKeys(call *ast.CallExpr) []key {
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok {
		return nil
	}
	if pkg, ok := sel.X.(*ast.Ident); ok && pkg.Name == "slog" {
		if !slogAttrs[sel.Sel.Name] || len(call.Args) == 0 {
			return nil
		}
		if k, ok := stringLit(call.Args[0]); ok {
			return []key{k}
		}
		return nil
	}
	first, ok := slogMethods[sel.Sel.Name]
	if !ok || len(call.Args) <= first || !isMessage(call, first) {
		return nil
	}
	var keys []key
	for i := first; i < len(call.Args); i++ {
		k, ok := stringLit(call.Args[i])
		if !ok {
			continue // an Attr, not a key/value pair
		}
		keys = append(keys, k)
		i++ // skip the value
	}
	return keys
}

// isMessage reports whether the call looks like a slog call: the argument
// before the key/value pairs is the message (a string), or there is none
// (With).
func isMessage(call *ast.CallExpr, first int) bool {
	if first == 0 {
		return len(call.Args)%2 == 0 || hasAttr(call.Args)
	}
	_, ok := stringLit(call.Args[first-1])
	if !ok {
		// a message in a variable: still a log call if the rest pairs up
		return (len(call.Args)-first)%2 == 0
	}
	return true
}

func hasAttr(args []ast.Expr) bool {
	for _, a := range args {
		if c, ok := a.(*ast.CallExpr); ok {
			if s, ok := c.Fun.(*ast.SelectorExpr); ok {
				if p, ok := s.X.(*ast.Ident); ok && p.Name == "slog" {
					return true
				}
			}
		}
	}
	return false
}

func stringLit(e ast.Expr) (key, bool) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return key{}, false
	}
	v, err := strconv.Unquote(lit.Value)
	if err != nil {
		return key{}, false
	}
	return key{value: v, pos: lit.Pos()}, true
}

// TestLogKeysParser checks that logKeys finds the keys of each call form.
func TestLogKeysParser(t *testing.T) {
	src := `package p
func f() {
	log.Info("msg", "client", a, "node", n)
	log.With("peer", p).Warn("msg")
	log.LogAttrs(ctx, level, "msg", slog.String("addr", a))
	log.Log(ctx, slog.LevelInfo, "msg", "filename", f)
	s.logger().Error("msg", slog.Any("hwaddr", m), "ip", i)
	fmt.Println("client", "peer")
}`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "p.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	ast.Inspect(f, func(n ast.Node) bool {
		if call, ok := n.(*ast.CallExpr); ok {
			for _, k := range logKeys(call) {
				got = append(got, k.value)
			}
		}
		return true
	})
	sort.Strings(got)
	want := []string{"addr", "client", "filename", "hwaddr", "ip", "node", "peer"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("keys %q, want %q", got, want)
	}
}
