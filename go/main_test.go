package stload_test

import (
	"fmt"
	"os"
	"testing"

	"stload.dev/stload/internal/fixtures"
)

// fx is generated once per test binary by the Python fixture script.
var fx *fixtures.Set

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "stload-go-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		os.Exit(1)
	}
	fx, err = fixtures.Generate(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: cannot generate the test fixtures:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// mustPanic fails the test unless f panics.
func mustPanic(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Errorf("%s did not panic", what)
		}
	}()
	f()
}

// sameShape reports whether two shapes are equal.
func sameShape(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
