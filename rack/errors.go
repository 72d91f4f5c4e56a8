package rack

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	goccy "github.com/goccy/go-yaml"
	goccyparser "github.com/goccy/go-yaml/parser"
	"gopkg.in/yaml.v3"
)

// ErrInvalid is wrapped by every *ValidationError, so callers can branch with
// errors.Is(err, rack.ErrInvalid) without caring about the individual problems.
var ErrInvalid = errors.New("invalid rack config")

// FieldError is one problem found in a config file, with its position.
// Line and Col are 1-based; 0 means the position is unknown (for example a
// required field that is missing from an otherwise empty file).
type FieldError struct {
	File string `json:"file,omitempty"` // the file name given to Parse or Load
	Line int    `json:"line,omitempty"`
	Col  int    `json:"column,omitempty"`
	Path string `json:"field,omitempty"` // the field, as in "nodes[2].mac" or "dhcp.pool.start"
	Msg  string `json:"message"`
}

// String formats the error as "file:line:col: path: message", leaving out
// the parts that are unknown.
func (e FieldError) String() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteString(":")
	}
	if e.Line > 0 {
		b.WriteString(strconv.Itoa(e.Line))
		b.WriteString(":")
		if e.Col > 0 {
			b.WriteString(strconv.Itoa(e.Col))
			b.WriteString(":")
		}
	}
	if b.Len() > 0 {
		b.WriteString(" ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ValidationError lists every problem found in a config, in line order.
type ValidationError struct {
	Errors []FieldError
}

// Error prints one "file:line:col: path: message" per problem, one per line.
func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Errors))
	for i, fe := range e.Errors {
		lines[i] = fe.String()
	}
	return strings.Join(lines, "\n")
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *ValidationError) Unwrap() error { return ErrInvalid }

// collector gathers FieldErrors during decoding and validation.
type collector struct {
	file string
	list []FieldError
}

// at records a problem at the position of n (which may be nil).
func (c *collector) at(n *yaml.Node, path, format string, args ...any) {
	fe := FieldError{File: c.file, Path: path, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		fe.Line, fe.Col = n.Line, n.Column
	}
	c.list = append(c.list, fe)
}

// err returns the collected problems sorted by position, or nil.
func (c *collector) err() error {
	if len(c.list) == 0 {
		return nil
	}
	list := append([]FieldError(nil), c.list...)
	sort.SliceStable(list, func(i, j int) bool {
		if list[i].Line != list[j].Line {
			return list[i].Line < list[j].Line
		}
		return list[i].Col < list[j].Col
	})
	return &ValidationError{Errors: list}
}

// yamlLine finds the line number yaml.v3 puts in its syntax errors.
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxError turns a yaml.v3 parse error of data into a FieldError with
// its line and column. yaml.v3 reports only a line (and at times the line
// its parser gave up on, not the mistake's); goccy/go-yaml's parser, asked
// about the same bytes, names the token it stopped at, with its column.
func (c *collector) syntaxError(data []byte, err error) {
	msg := err.Error()
	fe := FieldError{File: c.file, Msg: "yaml syntax: " + strings.TrimPrefix(msg, "yaml: ")}
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		fe.Line, _ = strconv.Atoi(m[1])
		fe.Msg = "yaml syntax: " + m[2]
	}
	if line, col, gmsg, ok := locateSyntaxError(data); ok {
		switch {
		case line == fe.Line:
			fe.Col = col // both parsers agree on the line: keep yaml.v3's words
		case strings.Contains(gmsg, "mapping value is not allowed") && fe.Line > line:
			// A key indented deeper than its siblings: goccy points at the
			// value before it, yaml.v3 at the key's line. Point at the key.
			fe.Col = firstColumn(data, fe.Line)
		default:
			fe.Line, fe.Col, fe.Msg = line, col, "yaml syntax: "+gmsg
		}
	}
	c.list = append(c.list, fe)
}

// locateSyntaxError parses data with goccy/go-yaml and returns where its
// parser stopped, or ok false when it has no position (or no complaint).
func locateSyntaxError(data []byte) (line, col int, msg string, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	_, err := goccyparser.ParseBytes(data, 0)
	var se *goccy.SyntaxError
	if !errors.As(err, &se) || se.Token == nil || se.Token.Position == nil || se.Token.Position.Line < 1 {
		return 0, 0, "", false
	}
	return se.Token.Position.Line, se.Token.Position.Column, strings.ReplaceAll(se.Message, "\t", `\t`), true
}

// firstColumn is the 1-based column of the first non-blank byte of the
// 1-based line n of data (0 when there is none).
func firstColumn(data []byte, n int) int {
	lines := strings.Split(string(data), "\n")
	if n < 1 || n > len(lines) {
		return 0
	}
	l := lines[n-1]
	if i := strings.IndexFunc(l, func(r rune) bool { return r != ' ' && r != '\t' }); i >= 0 {
		return i + 1
	}
	return 0
}
