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

func TestWriteTokenRoundTrip(t *testing.T) {
	for _, p := range []Position{
		{History{7716506984150931816, 1}, 0x16B374D848},
		{History{1, 1<<32 - 1}, 1<<64 - 1},
		{History{1<<64 - 1, 2}, 1},
	} {
		got, err := ParseWriteToken(WriteToken(p))
		if err != nil || got != p {
			t.Errorf("ParseWriteToken(WriteToken(%+v)) = %+v, %v", p, got, err)
		}
	}
	if got, err := ParseWriteToken(""); got != (Position{}) || err != nil {
		t.Errorf("empty token = %+v, %v; want the zero position", got, err)
	}
	// A first-version token: a position with no history.
	if got, err := ParseWriteToken(Token(42)); err != nil || got != (Position{LSN: 42}) {
		t.Errorf("a version 1 token = %+v, %v; want position 42 in no history", got, err)
	}
	for _, bad := range []string{"x", WriteToken(Position{LSN: 5}), WriteToken(Position{History{1, 1}, 5}) + "A", "B" + WriteToken(Position{History{1, 1}, 5})[1:]} {
		if _, err := ParseWriteToken(bad); err == nil {
			t.Errorf("ParseWriteToken(%q) accepted a malformed token", bad)
		}
	}
}

func FuzzParseWriteToken(f *testing.F) {
	f.Add(WriteToken(Position{History{7, 2}, 42}))
	f.Add(Token(42))
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseWriteToken(s)
		if err != nil || s == "" {
			return
		}
		if again := WriteToken(p); !p.History.IsZero() && again != s {
			t.Fatalf("token %q parsed to %+v, which encodes as %q", s, p, again)
		}
	})
}
