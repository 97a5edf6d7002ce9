package main

import (
	"testing"

	"github.com/swapmeet/swapmeet/internal/itest"
)

// TestMain removes the swapmeet binary the tests built.
func TestMain(m *testing.M) { itest.Main(m) }
