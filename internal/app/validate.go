package app

import (
	"fmt"
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Every request is checked here, before any write, so that bad input gets
// one InvalidArgument listing all of its problems and changes nothing.

// violations collects the problems of one request.
type violations []FieldViolation

func (v *violations) add(field, format string, args ...any) {
	*v = append(*v, FieldViolation{Field: field, Description: fmt.Sprintf(format, args...)})
}

func (v violations) err() error {
	if len(v) == 0 {
		return nil
	}
	return &Error{Code: CodeInvalid, Message: "invalid request: " + v[0].Field + ": " + v[0].Description, Violations: v}
}

// textRule bounds a free-text field.
type textRule struct {
	min, max  int  // in characters
	multiline bool // newlines and tabs allowed
}

// text checks that s is valid UTF-8, within bounds, and free of control characters.
func (v *violations) text(field, s string, r textRule) {
	if !utf8.ValidString(s) {
		v.add(field, "must be valid UTF-8")
		return
	}
	n := utf8.RuneCountInString(s)
	switch {
	case n < r.min && r.min == 1:
		v.add(field, "is required")
		return
	case n < r.min:
		v.add(field, "must be at least %d characters", r.min)
		return
	case n > r.max:
		v.add(field, "must be at most %d characters", r.max)
		return
	}
	for _, c := range s {
		if r.multiline && (c == '\n' || c == '\t' || c == '\r') {
			continue
		}
		if unicode.IsControl(c) || c == utf8.RuneError {
			v.add(field, "must not contain control characters")
			return
		}
	}
}

var (
	displayNameRule = textRule{min: 1, max: 64}
	bioRule         = textRule{min: 0, max: 500, multiline: true}
)

const (
	minPasswordLen = 8
	maxPasswordLen = 128 // bounds the hashing work a request can ask for
	maxEmailLen    = 254
)

// email checks an address and returns its canonical (lower-case) form.
func (v *violations) email(field, s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		v.add(field, "is required")
		return ""
	}
	if !utf8.ValidString(s) || len(s) > maxEmailLen {
		v.add(field, "must be a valid email address of at most %d bytes", maxEmailLen)
		return ""
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" || !strings.Contains(s[strings.LastIndexByte(s, '@')+1:], ".") {
		v.add(field, "must be a valid email address, like ada@example.com")
		return ""
	}
	return strings.ToLower(s)
}

func (v *violations) password(field, s string) {
	if !utf8.ValidString(s) {
		v.add(field, "must be valid UTF-8")
		return
	}
	n := utf8.RuneCountInString(s)
	if n < minPasswordLen || n > maxPasswordLen {
		v.add(field, "must be %d to %d characters", minPasswordLen, maxPasswordLen)
	}
}

// id parses a UUID field; required says whether empty is a violation.
func (v *violations) id(field, s string) uuid.UUID {
	if s == "" {
		v.add(field, "is required")
		return uuid.Nil
	}
	id, err := uuid.Parse(s)
	if err != nil || len(s) != 36 {
		v.add(field, "must be a UUID")
		return uuid.Nil
	}
	return id
}

// trimmed normalises a single-line name: surrounding space is never meaningful.
func trimmed(s string) string { return strings.TrimSpace(s) }
