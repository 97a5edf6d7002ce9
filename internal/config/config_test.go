package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/swapmeet/swapmeet/internal/config"
)

type limits struct {
	Window  time.Duration `env:"TEST_WINDOW"`
	PerUser int           `env:"TEST_PER_USER,off"`
}

type settings struct {
	Name    string        `env:"TEST_NAME"`
	Pool    int           `env:"TEST_POOL"`
	Bytes   int64         `env:"TEST_BYTES"`
	Timeout time.Duration `env:"TEST_TIMEOUT"`
	Cache   time.Duration `env:"TEST_CACHE,off"`
	TLS     bool          `env:"TEST_TLS"`
	Origins []string      `env:"TEST_ORIGINS"`
	Limits  limits        // nested: its fields name their own variables
	Ignored int
}

func defaults() settings {
	return settings{Name: "x", Pool: 4, Bytes: 1 << 20, Timeout: time.Second, Cache: time.Minute,
		Origins: []string{"http://a"}, Limits: limits{Window: time.Minute, PerUser: 10}, Ignored: 7}
}

func TestLoad(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want func(*settings)
		bad  []string // variables the error must name
	}{
		{name: "unset keeps the defaults", want: func(*settings) {}},
		{name: "empty keeps the defaults", env: map[string]string{"TEST_POOL": "", "TEST_NAME": ""}, want: func(*settings) {}},
		{
			name: "values",
			env: map[string]string{"TEST_NAME": "y", "TEST_POOL": "8", "TEST_BYTES": "5", "TEST_TIMEOUT": "3s",
				"TEST_TLS": "true", "TEST_ORIGINS": "http://b, http://c", "TEST_WINDOW": "2m", "TEST_PER_USER": "3"},
			want: func(s *settings) {
				s.Name, s.Pool, s.Bytes, s.Timeout, s.TLS = "y", 8, 5, 3*time.Second, true
				s.Origins, s.Limits = []string{"http://b", "http://c"}, limits{Window: 2 * time.Minute, PerUser: 3}
			},
		},
		{
			name: "0 switches off what can be off",
			env:  map[string]string{"TEST_CACHE": "0", "TEST_PER_USER": "0"},
			want: func(s *settings) { s.Cache, s.Limits.PerUser = 0, 0 },
		},
		{
			name: "0 is refused where a setting cannot be off, and every bad value is named",
			env: map[string]string{"TEST_POOL": "0", "TEST_TIMEOUT": "0s", "TEST_WINDOW": "0", "TEST_BYTES": "-1",
				"TEST_CACHE": "-1s", "TEST_PER_USER": "many", "TEST_TLS": "yes please"},
			bad: []string{"TEST_POOL", "TEST_TIMEOUT", "TEST_WINDOW", "TEST_BYTES", "TEST_CACHE", "TEST_PER_USER", "TEST_TLS"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			got := defaults()
			err := config.Load(&got)
			if tc.bad != nil {
				if err == nil {
					t.Fatal("no error")
				}
				for _, name := range tc.bad {
					if !strings.Contains(err.Error(), name+"=") {
						t.Errorf("the error does not name %s: %v", name, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := defaults()
			tc.want(&want)
			if got.Name != want.Name || got.Pool != want.Pool || got.Bytes != want.Bytes || got.Timeout != want.Timeout ||
				got.Cache != want.Cache || got.TLS != want.TLS || strings.Join(got.Origins, " ") != strings.Join(want.Origins, " ") ||
				got.Limits != want.Limits || got.Ignored != 7 {
				t.Errorf("got %+v, want %+v", got, want)
			}
		})
	}
}

func TestVars(t *testing.T) {
	s := defaults()
	var names []string
	for _, v := range config.Vars(&s) {
		names = append(names, v.Name+"="+v.Default)
		if v.Off != (v.Name == "TEST_CACHE" || v.Name == "TEST_PER_USER") {
			t.Errorf("%s: Off = %v", v.Name, v.Off)
		}
	}
	want := "TEST_NAME=x TEST_POOL=4 TEST_BYTES=1048576 TEST_TIMEOUT=1s TEST_CACHE=1m TEST_TLS=false TEST_ORIGINS=http://a TEST_WINDOW=1m TEST_PER_USER=10"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("Vars:\n got %s\nwant %s", got, want)
	}
}
