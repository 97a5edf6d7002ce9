package app

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func validInput() ListingInput {
	return ListingInput{
		Title: "Road bike", Description: "Some rust.\nRides well.", Category: "bikes", Condition: "GOOD",
		Price: &Money{Currency: "EUR", Minor: 15000}, Attributes: map[string]string{"frame_size": "56cm", "gears": "21"},
	}
}

func TestValidateListing(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*ListingInput)
		want   string // first violated field; "" = valid
	}{
		{"valid", func(*ListingInput) {}, ""},
		{"no attributes", func(in *ListingInput) { in.Attributes = nil }, ""},
		{"title trimmed to empty", func(in *ListingInput) { in.Title = "  \t" }, "title"},
		{"title 140", func(in *ListingInput) { in.Title = strings.Repeat("é", 140) }, ""},
		{"title 141", func(in *ListingInput) { in.Title = strings.Repeat("é", 141) }, "title"},
		{"description 5001", func(in *ListingInput) { in.Description = strings.Repeat("d", 5001) }, "description"},
		{"category upper", func(in *ListingInput) { in.Category = "Bikes" }, "category"},
		{"category leading dash", func(in *ListingInput) { in.Category = "-bikes" }, "category"},
		{"condition", func(in *ListingInput) { in.Condition = "BROKEN" }, "condition"},
		{"price nil", func(in *ListingInput) { in.Price = nil }, "price"},
		{"price negative", func(in *ListingInput) { in.Price.Minor = -1 }, "price.amount_minor"},
		{"price huge", func(in *ListingInput) { in.Price.Minor = maxPriceMinor + 1 }, "price.amount_minor"},
		{"currency", func(in *ListingInput) { in.Price.Currency = "EURO" }, "price.currency_code"},
		{"key with $", func(in *ListingInput) { in.Attributes = map[string]string{"$ne": "x"} }, "attributes"},
		{"key with .", func(in *ListingInput) { in.Attributes = map[string]string{"a.b": "x"} }, "attributes"},
		{"empty key", func(in *ListingInput) { in.Attributes = map[string]string{"": "x"} }, "attributes"},
		{"long key", func(in *ListingInput) { in.Attributes = map[string]string{strings.Repeat("k", 41): "x"} }, "attributes"},
		{"value newline", func(in *ListingInput) { in.Attributes = map[string]string{"k": "a\nb"} }, "attributes[k]"},
		{"value bad utf8", func(in *ListingInput) { in.Attributes = map[string]string{"k": "\xff"} }, "attributes[k]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := validInput()
			tc.mutate(&in)
			var v violations
			v.listing(in, func(string) bool { return true })
			got := ""
			if len(v.list) > 0 {
				got = v.list[0].Field
			}
			if got != tc.want {
				t.Fatalf("first violation = %q (%v), want %q", got, v, tc.want)
			}
		})
	}
}

// FuzzValidateListing: anything the validator accepts fits the schema's
// checks and cannot reach MongoDB as an operator or a dotted path.
func FuzzValidateListing(f *testing.F) {
	f.Add("Bike", "desc", "bikes", "GOOD", "EUR", int64(100), "brand", "Acme")
	f.Add("\u0000", "\xff", "-", "", "eu", int64(-5), "$where", "1")
	f.Add("a", "", "a", "NEW", "USD", int64(1), "a.b", "\n")
	f.Fuzz(func(t *testing.T, title, desc, category, condition, currency string, minor int64, key, value string) {
		in := ListingInput{Title: title, Description: desc, Category: category, Condition: condition,
			Price: &Money{Currency: currency, Minor: minor}, Attributes: map[string]string{key: value}}
		var v violations
		out := v.listing(in, func(string) bool { return true })
		if len(v.list) > 0 {
			return
		}
		for _, s := range []string{out.Title, out.Description, key, value} {
			if !utf8.ValidString(s) {
				t.Fatalf("accepted invalid UTF-8 %q", s)
			}
		}
		if strings.ContainsAny(key, "$.") || key == "" {
			t.Fatalf("accepted attribute key %q", key)
		}
		if n := utf8.RuneCountInString(out.Title); n < 1 || n > 140 {
			t.Fatalf("accepted title of %d characters", n)
		}
		if minor < 1 || len(currency) != 3 {
			t.Fatalf("accepted price %s %d", currency, minor)
		}
	})
}
