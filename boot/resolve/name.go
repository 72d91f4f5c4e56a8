package resolve

import (
	"fmt"
	"path"
	"strings"
	"unicode/utf8"
)

// MaxNameLen is the longest request name CleanName accepts, in bytes.
const MaxNameLen = 255

// CleanName turns a name as it came off the wire into a slash-separated path
// relative to a boot source, or refuses it with an error wrapping ErrRefused.
//
// One leading "/" is stripped (TFTP clients send "/file" as often as "file");
// a name still absolute after that is refused. Empty elements ("a//b", a
// trailing "/") and "." elements are dropped. A ".." element anywhere, a NUL,
// a backslash, any other control character, invalid UTF-8, an empty result
// and names over MaxNameLen bytes are refused. Percent-decoding is the HTTP
// server's job: "%2e%2e" reaches CleanName as "..", or not at all.
//
// The result never escapes the source root, never holds a ".." element, and
// CleanName(result) == result.
func CleanName(name string) (string, error) {
	if name == "" {
		return "", fmt.Errorf("%w: empty file name", ErrRefused)
	}
	if len(name) > MaxNameLen {
		return "", fmt.Errorf("%w: file name of %d bytes is longer than %d", ErrRefused, len(name), MaxNameLen)
	}
	if !utf8.ValidString(name) {
		return "", fmt.Errorf("%w: file name %s is not valid UTF-8", ErrRefused, quoteShort(name))
	}
	for _, c := range name {
		switch {
		case c == 0:
			return "", fmt.Errorf("%w: file name %s contains a NUL byte", ErrRefused, quoteShort(name))
		case c == '\\':
			return "", fmt.Errorf("%w: file name %s contains a backslash", ErrRefused, quoteShort(name))
		case c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0):
			return "", fmt.Errorf("%w: file name %s contains a control character", ErrRefused, quoteShort(name))
		}
	}
	rel := strings.TrimPrefix(name, "/")
	if strings.HasPrefix(rel, "/") {
		return "", fmt.Errorf("%w: file name %s is an absolute path", ErrRefused, quoteShort(name))
	}
	elems := strings.Split(rel, "/")
	kept := elems[:0]
	for _, e := range elems {
		switch e {
		case "", ".":
			continue
		case "..":
			return "", fmt.Errorf("%w: file name %s leaves its directory (\"..\")", ErrRefused, quoteShort(name))
		}
		kept = append(kept, e)
	}
	if len(kept) == 0 {
		return "", fmt.Errorf("%w: file name %s names no file", ErrRefused, quoteShort(name))
	}
	return strings.Join(kept, "/"), nil
}

// quoteShort quotes a name for an error message, shortened so that a hostile
// name cannot flood the logs.
func quoteShort(s string) string {
	const max = 64
	if len(s) > max {
		return fmt.Sprintf("%q…", s[:max])
	}
	return fmt.Sprintf("%q", s)
}

// selfUpdateNames are the Raspberry Pi bootloader self-update files. The
// bootloader probes some of them on every boot, at any prefix.
var selfUpdateNames = map[string]bool{
	"pieeprom.upd": true,
	"pieeprom.sig": true,
	"pieeprom.bin": true,
	"recovery.bin": true,
	"vl805.sig":    true,
	"vl805.bin":    true,
}

// isSelfUpdate reports whether a cleaned name is a bootloader self-update
// file. FAT names are case-insensitive, so the match is too.
func isSelfUpdate(name string) bool {
	return selfUpdateNames[strings.ToLower(path.Base(name))]
}

// splitFirst splits a cleaned name into its first element and the rest
// ("" when the name has one element).
func splitFirst(name string) (first, rest string) {
	first, rest, _ = strings.Cut(name, "/")
	return first, rest
}
