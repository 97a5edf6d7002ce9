package system_test

import (
	"os"
	"regexp"
	"testing"

	"github.com/swapmeet/swapmeet/internal/config"
	"github.com/swapmeet/swapmeet/internal/media"
	"github.com/swapmeet/swapmeet/internal/system"
)

// TestConfigurationReference: docs/configuration.md lists every variable
// the configuration reads, no other, each with the code's default and
// with "off" in its 0 column exactly where 0 switches the setting off.
func TestConfigurationReference(t *testing.T) {
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	// | `NAME` | `default` or none | off, refused or nothing | meaning |
	row := regexp.MustCompile("(?m)^\\| `(SWAPMEET_[A-Z0-9_]+)` \\| (?:`([^`]*)`|(none)) \\| *(off|refused)? *\\|")
	type entry struct{ def, zero string }
	listed := map[string]entry{}
	for _, m := range row.FindAllStringSubmatch(string(doc), -1) {
		if m[3] == "none" {
			m[2] = "none"
		}
		listed[m[1]] = entry{m[2], m[4]}
	}
	if len(listed) == 0 {
		t.Fatal("no rows found in docs/configuration.md")
	}
	c := system.DefaultConfig()
	read := map[string]bool{}
	for _, v := range append(config.Vars(&c), config.Vars(&media.Admin{})...) {
		read[v.Name] = true
		e, ok := listed[v.Name]
		if !ok {
			t.Errorf("%s is not in docs/configuration.md", v.Name)
			continue
		}
		def := v.Default
		if def == "" || def == "0" { // unset means none, or sized by the program
			def = "none"
		}
		if e.def != def {
			t.Errorf("%s: the default is %q, docs/configuration.md says %q", v.Name, v.Default, e.def)
		}
		if (e.zero == "off") != v.Off {
			t.Errorf("%s: 0 switches it off: %v, docs/configuration.md says %q", v.Name, v.Off, e.zero)
		}
	}
	for name := range listed {
		if !read[name] {
			t.Errorf("docs/configuration.md lists %s, which nothing reads", name)
		}
	}
}
