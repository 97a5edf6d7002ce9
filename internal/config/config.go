// Package config reads settings from SWAPMEET_* environment variables into
// structs whose fields name their variable in an `env` tag. It knows no
// setting itself: each package declares its options and their defaults,
// and the assembly (internal/system) gathers them into one struct that
// Load fills.
//
// The rules, the same for every setting (docs/configuration.md):
//   - a variable that is unset or empty leaves the field as it was: the
//     default the caller put there;
//   - a number or a duration must be positive; 0 is accepted only where
//     the tag says `off` (env:"NAME,off"), and then means off, none or
//     unlimited, as the field's comment says;
//   - a bool is true or false;
//   - every bad value is reported, all at once, each naming its variable.
package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// Var is one variable Load reads.
type Var struct {
	Name    string
	Default string // the field's value before Load, as the variable would spell it
	Off     bool   // 0 is accepted and switches the setting off
}

// Load sets every tagged field of the struct dst points to from its
// variable, walking nested structs. It returns every bad value at once.
func Load(dst any) error {
	var errs []error
	walk(reflect.ValueOf(dst).Elem(), func(f reflect.Value, name string, off bool) {
		v, ok := os.LookupEnv(name)
		if !ok || v == "" {
			return
		}
		if err := set(f, v, off); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %w", name, v, err))
		}
	})
	return errors.Join(errs...)
}

// Vars lists the variables Load reads for the struct dst points to, with
// the defaults dst holds.
func Vars(dst any) []Var {
	var vars []Var
	walk(reflect.ValueOf(dst).Elem(), func(f reflect.Value, name string, off bool) {
		vars = append(vars, Var{Name: name, Default: format(f), Off: off})
	})
	return vars
}

func walk(v reflect.Value, fn func(f reflect.Value, name string, off bool)) {
	t := v.Type()
	for i := range t.NumField() {
		sf, f := t.Field(i), v.Field(i)
		tag, ok := sf.Tag.Lookup("env")
		if !ok {
			if f.Kind() == reflect.Struct && sf.IsExported() && f.Type() != reflect.TypeFor[time.Time]() {
				walk(f, fn)
			}
			continue
		}
		name, opt, _ := strings.Cut(tag, ",")
		fn(f, name, opt == "off")
	}
}

var durationType = reflect.TypeFor[time.Duration]()

func set(f reflect.Value, v string, off bool) error {
	positive := "want a positive number"
	if off {
		positive = "want a positive number, or 0 for off"
	}
	switch {
	case f.Type() == durationType:
		d, err := time.ParseDuration(v)
		switch {
		case err != nil:
			return errors.New("want a duration like 2s or 5m")
		case d < 0 || (d == 0 && !off):
			if off {
				return errors.New("want a positive duration, or 0 for off")
			}
			return errors.New("want a positive duration like 2s")
		}
		f.SetInt(int64(d))
	case f.Kind() == reflect.String:
		f.SetString(v)
	case f.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(v)
		if err != nil {
			return errors.New("want true or false")
		}
		f.SetBool(b)
	case f.Kind() == reflect.Int || f.Kind() == reflect.Int64:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 || (n == 0 && !off) || f.OverflowInt(n) {
			return errors.New(positive)
		}
		f.SetInt(n)
	case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.String:
		var items []string
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				items = append(items, s)
			}
		}
		f.Set(reflect.ValueOf(items))
	default:
		panic("config: no parser for a field of type " + f.Type().String())
	}
	return nil
}

func format(f reflect.Value) string {
	switch {
	case f.Type() == durationType:
		s := time.Duration(f.Int()).String()
		if strings.HasSuffix(s, "m0s") { // 1m0s reads as 1m
			s = s[:len(s)-2]
		}
		if strings.HasSuffix(s, "h0m") { // and 720h0m as 720h
			s = s[:len(s)-2]
		}
		return s
	case f.Kind() == reflect.Slice:
		return strings.Join(f.Interface().([]string), ",")
	default:
		return fmt.Sprint(f.Interface())
	}
}
