// Package consistency names WAL positions outside Postgres: the opaque
// token a write returns (read-your-writes), the way Postgres prints a
// position, and the form Redis scripts store and compare positions in.
// The watcher that lets a query wait for a token's position is
// cache.Watcher, beside the near cache it keeps exact.
package consistency

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
)

// tokenVersion leads every token so that its encoding can change later.
const tokenVersion = 1

// tokenLen is the length of an encoded token: 9 bytes in unpadded base64.
const tokenLen = 12

// ErrBadToken means a client sent a token this server did not issue.
var ErrBadToken = errors.New("malformed consistency token")

// Token encodes a WAL position as an opaque, URL-safe string.
func Token(lsn uint64) string {
	var b [9]byte
	b[0] = tokenVersion
	binary.BigEndian.PutUint64(b[1:], lsn)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// ParseToken returns the WAL position of a token; the empty token is 0,
// which every read satisfies at once.
func ParseToken(s string) (uint64, error) {
	if s == "" {
		return 0, nil
	}
	if len(s) != tokenLen {
		return 0, ErrBadToken
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != 9 || b[0] != tokenVersion {
		return 0, ErrBadToken
	}
	lsn := binary.BigEndian.Uint64(b[1:])
	// The decoder skips line breaks; only the canonical spelling is a token.
	if Token(lsn) != s {
		return 0, ErrBadToken
	}
	return lsn, nil
}

// FormatLSN renders a position the way Postgres does (16/B374D848).
func FormatLSN(lsn uint64) string {
	return fmt.Sprintf("%X/%X", uint32(lsn>>32), uint32(lsn))
}
