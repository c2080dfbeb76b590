package stload_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"stload.dev/stload/internal/fixtures"
)

// README.md's table "C function | Go" names every function stload.h declares, either in full
// (`stload_model_get`) or as a suffix after a full name of the same row that shares its prefix
// (`stload_tensor_data`, `_nbytes` names stload_tensor_nbytes).
func TestReadmeNamesEveryCFunction(t *testing.T) {
	root, err := fixtures.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	header, err := os.ReadFile(filepath.Join(root, "include", "stload.h"))
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	// Declarations start at the beginning of a line with their return type.
	decl := regexp.MustCompile(`(?m)^[a-z][^(*/#\n]*?[ *](stload_[a-z0-9_]+)\(`)
	var funcs []string
	for _, m := range decl.FindAllSubmatch(header, -1) {
		funcs = append(funcs, string(m[1]))
	}
	if len(funcs) < 50 {
		t.Fatalf("found only %d function declarations in stload.h: %v", len(funcs), funcs)
	}
	var rows []string
	in := false
	for _, line := range strings.Split(string(readme), "\n") {
		switch {
		case strings.HasPrefix(line, "| C function | Go |"):
			in = true
		case in && !strings.HasPrefix(line, "|"):
			in = false
		case in:
			rows = append(rows, strings.SplitN(line, "|", 3)[1])
		}
	}
	named := map[string]bool{}
	code := regexp.MustCompile("`([a-z0-9_]+)`")
	for _, row := range rows {
		var full []string
		for _, m := range code.FindAllStringSubmatch(row, -1) {
			if strings.HasPrefix(m[1], "stload_") {
				full = append(full, m[1])
				named[m[1]] = true
			}
		}
		for _, m := range code.FindAllStringSubmatch(row, -1) {
			if !strings.HasPrefix(m[1], "_") {
				continue
			}
			for _, f := range full {
				for i := strings.LastIndex(f, "_"); i > 0; i = strings.LastIndex(f[:i], "_") {
					named[f[:i]+m[1]] = true
				}
			}
		}
	}
	for _, f := range funcs {
		if !named[f] {
			t.Errorf("README.md's C function table does not name %s", f)
		}
	}
}
