package app

import (
	"strings"
	"unicode"

	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"
)

// A search query is checked for words before it reaches the search store,
// which stems and matches them (internal/search): queryWords splits it as
// a reader would count its words, folding case and accents.

const (
	minKeywordLen = 2  // shorter tokens match too much to be worth indexing
	maxKeywordLen = 40 // longer ones are noise (hashes, URLs)
	maxKeywords   = 300
)

// queryWords returns the distinct normalized words of texts, in first-seen order.
func queryWords(texts ...string) []string {
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
