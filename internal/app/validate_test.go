package app

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestValidateSignUp(t *testing.T) {
	long := strings.Repeat("a", 250) + "@example.com"
	for _, tc := range []struct {
		name, email, pw, display string
		wantEmail, wantName      string
		wantFields               string // comma-separated, "" = valid
	}{
		{"valid", "Ada@Example.com", "correct horse", " Ada ", "ada@example.com", "Ada", ""},
		{"unicode name", "b@example.org", "パスワードは八文字", "Zoë Ω", "b@example.org", "Zoë Ω", ""},
		{"empty", "", "", "", "", "", "email,password,display_name"},
		{"no domain dot", "a@localhost", "correct horse", "A", "", "", "email"},
		{"display name form", "Ada <ada@example.com>", "correct horse", "A", "", "", "email"},
		{"too long email", long, "correct horse", "A", "", "", "email"},
		{"short password", "a@example.com", "1234567", "A", "", "", "password"},
		{"long password", "a@example.com", strings.Repeat("p", 129), "A", "", "", "password"},
		{"bad utf8 password", "a@example.com", "abcdefgh\xff", "A", "", "", "password"},
		{"blank name", "a@example.com", "correct horse", "   ", "", "", "display_name"},
		{"long name", "a@example.com", "correct horse", strings.Repeat("n", 65), "", "", "display_name"},
		{"control char", "a@example.com", "correct horse", "a\x07b", "", "", "display_name"},
		{"newline in name", "a@example.com", "correct horse", "a\nb", "", "", "display_name"},
		{"bad utf8 name", "a@example.com", "correct horse", "a\xc3", "", "", "display_name"},
		{"right-to-left override", "a@example.com", "correct horse", "Ada\u202Enimda", "", "", "display_name"},
		{"isolate", "a@example.com", "correct horse", "Ada\u2067x\u2069", "", "", "display_name"},
		{"zero-width space", "a@example.com", "correct horse", "Ad\u200Ba", "", "", "display_name"},
		{"zero-width joiner", "a@example.com", "correct horse", "Ad\u200Da", "", "", "display_name"},
		{"byte order mark", "a@example.com", "correct horse", "\uFEFFAda", "", "", "display_name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			email, name, err := validateSignUp(tc.email, tc.pw, tc.display)
			if got := fields(err); got != tc.wantFields {
				t.Fatalf("violations = %q, want %q (err %v)", got, tc.wantFields, err)
			}
			if err == nil && (email != tc.wantEmail || name != tc.wantName) {
				t.Fatalf("canonical = %q, %q; want %q, %q", email, name, tc.wantEmail, tc.wantName)
			}
			if err != nil && ErrorCode(err) != CodeInvalid {
				t.Fatalf("code = %v, want CodeInvalid", ErrorCode(err))
			}
		})
	}
}

func fields(err error) string {
	e, ok := err.(*Error)
	if !ok {
		return ""
	}
	var f []string
	for _, v := range e.Violations {
		f = append(f, v.Field)
	}
	return strings.Join(f, ",")
}

// FuzzValidateSignUp: whatever the input, validation never panics, and
// what it accepts is canonical, valid UTF-8 within the column limits.
func FuzzValidateSignUp(f *testing.F) {
	f.Add("ada@example.com", "correct horse", "Ada")
	f.Add("a@b.c", "\x00\x00\x00\x00\x00\x00\x00\x00", "\u202e")
	f.Add("\xff@example.com", "pw", "\t")
	f.Fuzz(func(t *testing.T, email, pw, name string) {
		e, n, err := validateSignUp(email, pw, name)
		if err != nil {
			if ErrorCode(err) != CodeInvalid || len(err.(*Error).Violations) == 0 {
				t.Fatalf("invalid input gave %v", err)
			}
			return
		}
		if !utf8.ValidString(e) || !utf8.ValidString(n) || e != strings.ToLower(e) || len(e) > maxEmailLen {
			t.Fatalf("accepted non-canonical email %q", e)
		}
		if c := utf8.RuneCountInString(n); c < 1 || c > 64 || n != strings.TrimSpace(n) {
			t.Fatalf("accepted display name %q", n)
		}
	})
}

func TestValidatePlaceOrder(t *testing.T) {
	a, b := "0190a0b0-0000-7000-8000-00000000000b", "0190a0b0-0000-7000-8000-00000000000a"
	ids, _, err := validatePlaceOrder([]string{a, b}, "k")
	if err != nil || len(ids) != 2 || ids[0].String() != b {
		t.Fatalf("ids = %v, %v; want sorted [%s %s]", ids, err, b, a)
	}
	for _, tc := range []struct {
		name string
		ids  []string
		key  string
		want string
	}{
		{"empty", nil, "k", "listing_ids"},
		{"duplicate", []string{a, a}, "k", "listing_ids[1]"},
		{"not a uuid", []string{"42"}, "k", "listing_ids[0]"},
		{"braced uuid", []string{"{" + a + "}"}, "k", "listing_ids[0]"},
		{"no key", []string{a}, "", "idempotency_key"},
		{"long key", []string{a}, strings.Repeat("k", 129), "idempotency_key"},
	} {
		_, _, err := validatePlaceOrder(tc.ids, tc.key)
		if got := fields(err); !strings.HasPrefix(got, tc.want) {
			t.Errorf("%s: violations %q, want %s", tc.name, got, tc.want)
		}
	}
}
