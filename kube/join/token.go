package join

import (
	"crypto/rand"
	"errors"
	"fmt"
	"regexp"
)

// Token is a kubeadm bootstrap token, "<id>.<secret>": 6 and 16 characters
// of [a-z0-9]. The id is public (it names the Secret); the secret is not.
type Token struct {
	ID     string
	Secret string
}

// ErrToken means a string is not a bootstrap token.
var ErrToken = errors.New("not a bootstrap token (want 6 and 16 characters of a-z0-9 joined by a dot, as kubeadm token create prints)")

var tokenRE = regexp.MustCompile(`^([a-z0-9]{6})\.([a-z0-9]{16})$`)

// ParseToken parses "<id>.<secret>".
func ParseToken(s string) (Token, error) {
	m := tokenRE.FindStringSubmatch(s)
	if m == nil {
		return Token{}, ErrToken
	}
	return Token{ID: m[1], Secret: m[2]}, nil
}

// String is the token as kubeadm join takes it.
func (t Token) String() string { return t.ID + "." + t.Secret }

// GoString hides the secret (%#v in a log line).
func (t Token) GoString() string { return fmt.Sprintf("cluster.Token{ID: %q, Secret: <hidden>}", t.ID) }

// NewToken returns a random token.
func NewToken() Token {
	return Token{ID: randomChars(6), Secret: randomChars(16)}
}

const tokenAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

// randomChars draws n characters of tokenAlphabet uniformly (rejection
// sampling: 252 is the largest multiple of 36 below 256).
func randomChars(n int) string {
	out := make([]byte, 0, n)
	var b [32]byte
	for len(out) < n {
		rand.Read(b[:])
		for _, c := range b {
			if c < 252 && len(out) < n {
				out = append(out, tokenAlphabet[int(c)%len(tokenAlphabet)])
			}
		}
	}
	return string(out)
}
