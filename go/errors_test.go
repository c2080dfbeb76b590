package stload_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"stload.dev/stload"
)

func TestMissingNameIsNotFound(t *testing.T) {
	m := openFixture(t, "dtypes")
	_, err := m.Get("no.such.tensor")
	if !errors.Is(err, stload.ErrNotFound) || errors.Is(err, stload.ErrFormat) {
		t.Fatalf("Get(missing) error = %v, want ErrNotFound only", err)
	}
	var e *stload.Error
	if !errors.As(err, &e) || e.Status != stload.StatusNotFound || !strings.Contains(e.Message, "no.such.tensor") {
		t.Errorf("Get(missing) error = %#v, want an *Error naming the tensor", err)
	}
	if _, err := m.Info("no.such.tensor"); !errors.Is(err, stload.ErrNotFound) {
		t.Errorf("Info(missing) error = %v, want ErrNotFound", err)
	}
	if _, err := m.GetAs("no.such.tensor", stload.F32); !errors.Is(err, stload.ErrNotFound) {
		t.Errorf("GetAs(missing) error = %v, want ErrNotFound", err)
	}
	if _, err := m.GetAs("t_f32", stload.Dtype(77)); !errors.Is(err, stload.ErrInvalidArgument) {
		t.Errorf("GetAs(unknown dtype) error = %v, want ErrInvalidArgument", err)
	}
	if _, err := m.Get("t_f32\x00x"); !errors.Is(err, stload.ErrInvalidArgument) {
		t.Errorf("Get(name with NUL) error = %v, want ErrInvalidArgument", err)
	}
}

func TestBadFiles(t *testing.T) {
	cases := map[string]*stload.Error{
		"truncated_data.safetensors":   stload.ErrFormat,
		"truncated_header.safetensors": stload.ErrFormat,
		"garbage.safetensors":          stload.ErrFormat,
		"tiny.safetensors":             stload.ErrFormat,
		"huge_header.safetensors":      stload.ErrLimit,
	}
	for file, want := range cases {
		path := fx.Path("bad", file)
		m, err := stload.OpenFiles([]string{path})
		if !errors.Is(err, want) {
			if m != nil {
				m.Close()
			}
			t.Errorf("%s: error = %v, want %v", file, err, want)
			continue
		}
		if !strings.Contains(err.Error(), file) {
			t.Errorf("%s: message %q does not name the file", file, err)
		}
	}
	// A directory holding a bad file fails the same way.
	dir := t.TempDir()
	raw, err := os.ReadFile(fx.Path("bad", "truncated_data.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "model.safetensors"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := stload.Open(dir); !errors.Is(err, stload.ErrFormat) {
		t.Errorf("Open(dir with a truncated file) error = %v, want ErrFormat", err)
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := stload.Open(filepath.Join(fx.Dir, "does-not-exist")); !errors.Is(err, stload.ErrIO) {
		t.Errorf("Open(missing dir) error = %v, want ErrIO", err)
	}
	dup := []string{fx.Path("dup", "a.safetensors"), fx.Path("dup", "b.safetensors")}
	if _, err := stload.OpenFiles(dup); !errors.Is(err, stload.ErrDuplicate) {
		t.Errorf("OpenFiles(duplicate names) error = %v, want ErrDuplicate", err)
	}
	if _, err := stload.Open("a\x00b"); !errors.Is(err, stload.ErrInvalidArgument) {
		t.Errorf("Open(NUL) error = %v, want ErrInvalidArgument", err)
	}
	if _, err := stload.OpenFiles([]string{"a\x00b"}); !errors.Is(err, stload.ErrInvalidArgument) {
		t.Errorf("OpenFiles(NUL) error = %v, want ErrInvalidArgument", err)
	}
	if m, err := stload.OpenFiles(nil); !errors.Is(err, stload.ErrInvalidArgument) {
		t.Errorf("OpenFiles(nil) = %v, %v; want ErrInvalidArgument", m, err)
	}
}

func TestErrorType(t *testing.T) {
	sentinels := []*stload.Error{stload.ErrInvalidArgument, stload.ErrIO, stload.ErrFormat,
		stload.ErrNotFound, stload.ErrUnsupported, stload.ErrDuplicate, stload.ErrLimit,
		stload.ErrBufferSize, stload.ErrOutOfMemory, stload.ErrCancelled, stload.ErrInternal}
	for i, s := range sentinels {
		for j, o := range sentinels {
			if errors.Is(s, o) != (i == j) {
				t.Errorf("errors.Is(%v, %v) = %v", s, o, !(i == j))
			}
		}
		if !strings.HasPrefix(s.Error(), "stload: ") {
			t.Errorf("%v: message lacks the package prefix", s)
		}
	}
	e := &stload.Error{Status: stload.StatusFormat, Message: "f: bad"}
	if e.Error() != "stload: f: bad" || !errors.Is(e, stload.ErrFormat) || errors.Is(e, stload.ErrIO) {
		t.Errorf("Error %q does not behave", e)
	}
	if stload.StatusNotFound.String() != "not found" || stload.Status(55).String() != "status 55" {
		t.Error("Status.String")
	}
}
