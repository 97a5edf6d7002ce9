package consistency

import (
	"testing"
)

func TestTokenRoundTrip(t *testing.T) {
	for _, lsn := range []uint64{1, 0x16B374D848, 1<<64 - 1} {
		got, err := ParseToken(Token(lsn))
		if err != nil || got != lsn {
			t.Errorf("ParseToken(Token(%d)) = %d, %v", lsn, got, err)
		}
	}
	if got, err := ParseToken(""); got != 0 || err != nil {
		t.Errorf("empty token = %d, %v; want 0, nil", got, err)
	}
	for _, bad := range []string{"x", "AAAAAAAAAAAA", "!!!!", Token(5) + "A", "AgAAAAAAAAAB"} {
		if _, err := ParseToken(bad); err == nil {
			t.Errorf("ParseToken(%q) accepted a malformed token", bad)
		}
	}
}

func FuzzParseToken(f *testing.F) {
	f.Add(Token(42))
	f.Add("")
	f.Add("\xff")
	f.Add("AX0000\r000000") // the decoder skips line breaks
	f.Fuzz(func(t *testing.T, s string) {
		lsn, err := ParseToken(s)
		if err == nil && s != "" && Token(lsn) != s {
			t.Fatalf("token %q parsed to %d, which encodes as %q", s, lsn, Token(lsn))
		}
	})
}
