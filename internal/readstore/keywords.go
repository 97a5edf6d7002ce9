package readstore

import (
	"strings"
	"unicode"

	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"
)

// Keyword search runs on an indexed array of normalized tokens rather than
// $text, which FerretDB lacks. Documents and queries are tokenized by the
// same function, so "Café" finds "cafe".

const (
	minKeywordLen = 2  // shorter tokens match too much to be worth indexing
	maxKeywordLen = 40 // longer ones are noise (hashes, URLs)
	maxKeywords   = 300
)

// Keywords returns the distinct normalized tokens of texts, in first-seen order.
func Keywords(texts ...string) []string {
	seen := map[string]bool{}
	out := []string{}
	for _, t := range texts {
		for _, tok := range strings.FieldsFunc(fold(t), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsNumber(r) }) {
			n := len([]rune(tok))
			if n < minKeywordLen || n > maxKeywordLen || seen[tok] {
				continue
			}
			seen[tok] = true
			out = append(out, tok)
			if len(out) == maxKeywords {
				return out
			}
		}
	}
	return out
}

// fold lower-cases s and strips accents: NFD splits "é" into "e" and a
// combining mark, and the marks are dropped.
func fold(s string) string {
	t := transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)), norm.NFC)
	out, _, err := transform.String(t, s)
	if err != nil {
		out = s
	}
	return strings.ToLower(out)
}
