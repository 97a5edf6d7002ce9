package app

import (
	"fmt"
	"net/mail"
	"regexp"
	"slices"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/swapmeet/swapmeet/internal/consistency"
)

// Every request is checked here, before any write, so that bad input gets
// one InvalidArgument listing all of its problems and changes nothing.

// violations collects the problems of one request. It keeps the first
// maxViolations and counts the rest, so that an error is never much larger
// than the request that caused it.
type violations struct {
	list []FieldViolation
	more int
}

const maxViolations = 20

func (v *violations) add(field, format string, args ...any) {
	if len(v.list) == maxViolations {
		v.more++
		return
	}
	v.list = append(v.list, FieldViolation{Field: field, Description: fmt.Sprintf(format, args...)})
}

func (v violations) err() error {
	if len(v.list) == 0 {
		return nil
	}
	list := v.list
	if v.more > 0 {
		list = append(slices.Clip(list), FieldViolation{Description: fmt.Sprintf("and %d more problems, not listed", v.more)})
	}
	return &Error{Code: CodeInvalid, Message: "invalid request: " + list[0].Field + ": " + list[0].Description, Violations: list}
}

// textRule bounds a free-text field.
type textRule struct {
	min, max  int  // in characters
	multiline bool // newlines and tabs allowed
	// invisible refuses every format character (Unicode Cf: zero-width
	// spaces and joiners, soft hyphens), not only the bidirectional
	// controls that every field refuses: for names that must look like
	// what they are.
	invisible bool
}

// bidiControl reports the characters that reorder the text around them
// (embeddings, overrides, isolates, marks): "abc\u202Efdp.exe" shows as
// "abcexe.pdf".
func bidiControl(c rune) bool {
	return c == 0x061C || c == 0x200E || c == 0x200F || (c >= 0x202A && c <= 0x202E) || (c >= 0x2066 && c <= 0x2069)
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
		if bidiControl(c) {
			v.add(field, "must not contain bidirectional control characters (U+%04X)", c)
			return
		}
		if r.invisible && unicode.Is(unicode.Cf, c) {
			v.add(field, "must not contain invisible characters (U+%04X)", c)
			return
		}
	}
}

var (
	displayNameRule = textRule{min: 1, max: 64, invisible: true}
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

// maxPriceMinor keeps the sum of an order's prices far from overflow.
const maxPriceMinor = 100_000_000_000

func (v *violations) price(field string, m *Money) {
	if m == nil {
		v.add(field, "is required")
		return
	}
	if !currencyRE.MatchString(m.Currency) {
		v.add(field+".currency_code", "must be a three-letter upper-case ISO 4217 code, like EUR")
	}
	if m.Minor <= 0 || m.Minor > maxPriceMinor {
		v.add(field+".amount_minor", "must be between 1 and %d", maxPriceMinor)
	}
}

var (
	currencyRE     = regexp.MustCompile(`^[A-Z]{3}$`)
	categoryRE     = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,39}$`)
	attributeKeyRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,40}$`)
)

var (
	titleRule          = textRule{min: 1, max: 140}
	descriptionRule    = textRule{min: 0, max: 5000, multiline: true}
	attributeValueRule = textRule{min: 1, max: 200}
	commentRule        = textRule{min: 0, max: 2000, multiline: true}
	idempotencyKeyRule = textRule{min: 1, max: 128}
)

const maxAttributes = 32

// Conditions are the states an item can be in.
var Conditions = []string{"NEW", "LIKE_NEW", "GOOD", "FAIR", "POOR"}

func (v *violations) category(field, s string) {
	if !categoryRE.MatchString(s) {
		v.add(field, "must be a lower-case slug of 1 to 40 letters, digits and dashes, like board-games")
	}
}

func (v *violations) condition(field, s string) {
	if !slices.Contains(Conditions, s) {
		v.add(field, "is required: one of %s", strings.Join(Conditions, ", "))
	}
}

// attributes checks a listing's free-form attributes. Keys are restricted
// to a safe alphabet: they become field names in the read documents, where
// "$" or "." would act as MongoDB operators or paths.
func (v *violations) attributes(field string, m map[string]string) {
	if len(m) > maxAttributes {
		v.add(field, "must have at most %d entries", maxAttributes)
		return
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys) // report problems in a stable order
	for _, k := range keys {
		if !attributeKeyRE.MatchString(k) {
			v.add(field, "key %q must be 1 to 40 letters, digits, _ or - (no $ or .)", truncate(k, 50))
			continue
		}
		v.text(field+"["+k+"]", m[k], attributeValueRule)
	}
}

// listing checks every listing field that set says is present.
func (v *violations) listing(in ListingInput, set func(field string) bool) ListingInput {
	if set("title") {
		in.Title = trimmed(in.Title)
		v.text("title", in.Title, titleRule)
	}
	if set("description") {
		v.text("description", in.Description, descriptionRule)
	}
	if set("category") {
		v.category("category", in.Category)
	}
	if set("condition") {
		v.condition("condition", in.Condition)
	}
	if set("price") {
		v.price("price", in.Price)
	}
	if set("attributes") {
		v.attributes("attributes", in.Attributes)
	}
	return in
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// ValidateWatch checks a Watch request: the id, when idField names one,
// and the resume token: a stream's, or a write's consistency token (the
// empty one means "from now"). Queries.ReadSidePosition maps it to the
// read side's position.
func ValidateWatch(idField, id, resume string) (uuid.UUID, consistency.Position, error) {
	var v violations
	var uid uuid.UUID
	if idField != "" {
		uid = v.id(idField, id)
	}
	after, err := consistency.ParseWriteToken(resume)
	if err != nil {
		v.add("resume_token", "is not a token this service issued")
	}
	return uid, after, v.err()
}
