package stload_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"stload.dev/stload"
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

// The go.mod block under README.md's "Use from another module", with its placeholder path
// replaced by this directory, builds a program in a new module outside the repository with
// the network off (GOPROXY=off; GOFLAGS=-mod=mod lets go add what is missing, and it may
// fetch nothing), go has nothing to add to it, and the program runs.
func TestReadmeModuleLinesBuildOutsideTheRepo(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	const heading, placeholder = "## Use from another module", "/path/to/stload/go"
	section := strings.SplitN(string(readme), heading, 2)
	if len(section) != 2 {
		t.Fatalf("README.md has no %q section", heading)
	}
	block := regexp.MustCompile("(?s)```go.mod\n(.*?)```").FindStringSubmatch(section[1])
	if block == nil || !strings.Contains(block[1], placeholder) {
		t.Fatalf("README.md's %q section has no go.mod block naming %s", heading, placeholder)
	}
	here, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	app := t.TempDir()
	gomod := strings.ReplaceAll(block[1], placeholder, here)
	program := "package main\n\nimport (\n\t\"fmt\"\n\n\t\"stload.dev/stload\"\n)\n\n" +
		"func main() { fmt.Println(stload.Version()) }\n"
	for name, text := range map[string]string{"go.mod": gomod, "main.go": program} {
		if err := os.WriteFile(filepath.Join(app, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(app, "app")
	build := exec.Command(goTool, "build", "-o", exe, ".")
	build.Dir = app
	build.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOWORK=off", "CGO_ENABLED=1")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build with README.md's go.mod:\n%s\n%s: %v", gomod, out, err)
	}
	// Complete lines leave go nothing to add (-mod=mod would add a missing require).
	after, err := os.ReadFile(filepath.Join(app, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if string(after) != gomod {
		t.Errorf("go build had to change README.md's go.mod:\n%s\ninto:\n%s", gomod, after)
	}
	out, err := exec.Command(exe).Output()
	if err != nil {
		t.Fatalf("%s: %v", exe, err)
	}
	if got := strings.TrimSpace(string(out)); got != stload.Version() {
		t.Errorf("the program printed %q, want %q", got, stload.Version())
	}
}
