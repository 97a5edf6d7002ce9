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

// Token encodes a position of the read side as an opaque, URL-safe string:
// a Watch stream's resume token (a write's token is WriteToken's).
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

// History names one history of the write Postgres: the cluster's system
// identifier (a new cluster, by initdb or a dump and restore, has a new one)
// and its timeline (a promotion or a point-in-time restore starts a new
// one). WAL positions compare only within one history.
type History struct {
	System   uint64
	Timeline uint32
}

// IsZero reports an unknown history.
func (h History) IsZero() bool { return h == History{} }

func (h History) String() string {
	if h.IsZero() {
		return "unknown"
	}
	return fmt.Sprintf("%d/%d", h.System, h.Timeline)
}

// Position is where a write's commit lies: a WAL position in a history.
type Position struct {
	History History
	LSN     uint64
}

// writeTokenVersion leads a write's token, which names its history.
const (
	writeTokenVersion = 2
	writeTokenBytes   = 1 + 8 + 4 + 8
	writeTokenLen     = 28 // writeTokenBytes in unpadded base64
)

// WriteToken encodes a write's position, with its history, as the opaque,
// URL-safe consistency token that commands return.
func WriteToken(p Position) string {
	var b [writeTokenBytes]byte
	b[0] = writeTokenVersion
	binary.BigEndian.PutUint64(b[1:], p.History.System)
	binary.BigEndian.PutUint32(b[9:], p.History.Timeline)
	binary.BigEndian.PutUint64(b[13:], p.LSN)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// ParseWriteToken returns the position of a token that a read accepts: a
// write's, or a position of the read side (a Watch stream's resume token,
// Token's encoding, which has the zero history). The empty token is the
// zero position, which every read satisfies at once. A write's token from
// before histories has Token's encoding too: its WAL position was the read
// side's position then.
func ParseWriteToken(s string) (Position, error) {
	switch len(s) {
	case 0:
		return Position{}, nil
	case tokenLen:
		lsn, err := ParseToken(s)
		return Position{LSN: lsn}, err
	case writeTokenLen:
	default:
		return Position{}, ErrBadToken
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != writeTokenBytes || b[0] != writeTokenVersion {
		return Position{}, ErrBadToken
	}
	p := Position{
		History: History{System: binary.BigEndian.Uint64(b[1:]), Timeline: binary.BigEndian.Uint32(b[9:])},
		LSN:     binary.BigEndian.Uint64(b[13:]),
	}
	// Only the canonical spelling is a token.
	if p.History.IsZero() || WriteToken(p) != s {
		return Position{}, ErrBadToken
	}
	return p, nil
}

// FormatLSN renders a position the way Postgres does (16/B374D848).
func FormatLSN(lsn uint64) string {
	return fmt.Sprintf("%X/%X", uint32(lsn>>32), uint32(lsn))
}
