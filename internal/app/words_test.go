package app

import (
	"slices"
	"testing"
)

func TestQueryWords(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want []string
	}{
		{[]string{"Café Crème", "CAFE au lait"}, []string{"cafe", "creme", "au", "lait"}},
		{[]string{"iPhone 13 Pro, 128GB!"}, []string{"iphone", "13", "pro", "128gb"}},
		{[]string{"a b c", ""}, []string{}},
		{[]string{"Straße über Ångström"}, []string{"straße", "uber", "angstrom"}},
		{[]string{"dup dup DUP"}, []string{"dup"}},
	} {
		if got := queryWords(tc.in...); !slices.Equal(got, tc.want) {
			t.Errorf("queryWords(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
