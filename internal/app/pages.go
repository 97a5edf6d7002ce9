package app

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/swapmeet/swapmeet/internal/readstore"
)

const (
	defaultPageSize = 20
	maxPageSize     = 100
)

// pageSize applies the default and the bound.
func (v *violations) pageSize(n int32) int {
	switch {
	case n == 0:
		return defaultPageSize
	case n < 0 || n > maxPageSize:
		v.add("page_size", "must be 0 (for %d) to %d", defaultPageSize, maxPageSize)
		return defaultPageSize
	}
	return int(n)
}

// pageToken is the opaque cursor handed to clients. It names the query it
// belongs to, so a token replayed against other filters is refused rather
// than silently skipping results.
type pageToken struct {
	V     int    `json:"v"`
	Query string `json:"q"`
	At    int64  `json:"t,omitempty"` // created_at, Unix ms
	Price int64  `json:"p,omitempty"`
	ID    string `json:"id"`
}

// digest identifies a query by its canonical JSON.
func digest(v any) string {
	b, _ := json.Marshal(v) // plain structs of strings and numbers
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:12])
}

func encodePageToken(query string, c readstore.Cursor) string {
	b, _ := json.Marshal(pageToken{V: 1, Query: query, At: c.CreatedAt.UnixMilli(), Price: c.Price, ID: c.ID})
	return base64.RawURLEncoding.EncodeToString(b)
}

// cursor decodes a page token for query; "" means the first page.
func (v *violations) cursor(token, query string) *readstore.Cursor {
	if token == "" {
		return nil
	}
	b, err := base64.RawURLEncoding.DecodeString(token)
	var t pageToken
	if err != nil || len(token) > 512 || json.Unmarshal(b, &t) != nil || t.V != 1 || t.ID == "" {
		v.add("page_token", "is not a token this service issued")
		return nil
	}
	if t.Query != query {
		v.add("page_token", "belongs to a different query; start again without it")
		return nil
	}
	return &readstore.Cursor{CreatedAt: time.UnixMilli(t.At).UTC(), Price: t.Price, ID: t.ID}
}
