package search

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"

	"github.com/google/uuid"
)

// A page token is opaque to clients: base64 of a small JSON object that
// names the query it belongs to (a digest of its filters and order) and
// the position after the page's last row in that order. A token replayed
// against other filters, another order, or not issued here is refused.
//
// Under SortRelevance the position is the last row's rank and id, and the
// token also carries the candidate boundary: the (created_at, id) of the
// oldest of the candidates the first page ranked. Later pages rank the
// matches at or after it, so a listing keeps its place between pages
// (a rank depends only on the row and the query, not on other rows).

type cursor struct {
	At       int64     `json:"t,omitempty"` // created_at, Unix µs
	Price    int64     `json:"p,omitempty"`
	Rank     float32   `json:"r,omitempty"`
	ID       string    `json:"id"`
	Boundary *boundary `json:"b,omitempty"`
}

type boundary struct {
	At int64  `json:"t"`
	ID string `json:"id"`
}

type token struct {
	V     int    `json:"v"`
	Query string `json:"q"`
	Sort  string `json:"s"`
	cursor
}

const tokenVersion = 2 // 1 was the document store's

// digest identifies a query by its canonical JSON (map keys sorted).
func digest(q Query, s Sort) string {
	b, _ := json.Marshal(struct {
		Q                                       string
		Category, Condition, SellerID, Currency string
		Min, Max                                *int64
		Attrs                                   map[string]string
		Status, Sort                            string
	}{q.Text, q.Category, q.Condition, q.SellerID, q.Currency, q.MinPrice, q.MaxPrice, q.Attributes, q.Status, s.String()})
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:12])
}

func encodeToken(query string, s Sort, c cursor) string {
	b, _ := json.Marshal(token{V: tokenVersion, Query: query, Sort: s.String(), cursor: c})
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeToken reads a token for the query with the given digest and order;
// "" is the first page.
func decodeToken(t, query string, s Sort) (*cursor, error) {
	if t == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(t)
	var tok token
	if err != nil || len(t) > 512 || json.Unmarshal(b, &tok) != nil || tok.V != tokenVersion || !validID(tok.ID) {
		return nil, &FieldError{"page_token", "is not a token this service issued"}
	}
	if tok.Query != query || tok.Sort != s.String() {
		return nil, &FieldError{"page_token", "belongs to a different query; start again without it"}
	}
	if s == SortRelevance && (tok.Boundary == nil || !validID(tok.Boundary.ID)) {
		return nil, &FieldError{"page_token", "is not a token this service issued"}
	}
	return &tok.cursor, nil
}

func validID(s string) bool {
	_, err := uuid.Parse(s)
	return err == nil
}
