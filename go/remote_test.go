package stload_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"stload.dev/stload"
)

// TestRemoteS3 opens a model from the S3 server tests/remote/run.sh starts (it sets
// STLOAD_TEST_S3_ENDPOINT and the credentials) and compares every tensor with the same file
// opened locally. Elsewhere there is no server, and the test says so.
func TestRemoteS3(t *testing.T) {
	endpoint := os.Getenv("STLOAD_TEST_S3_ENDPOINT")
	root := os.Getenv("STLOAD_TEST_S3_ROOT")
	if endpoint == "" || root == "" {
		t.Skip("no S3 server: tests/remote/run.sh runs this test against one")
	}
	local := fx.Path(fx.Files["dtypes"])
	raw, err := os.ReadFile(local)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "gotest", "single"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "gotest", "single", "model.safetensors"), raw, 0o644); err != nil {
		t.Fatal(err)
	}

	want, err := stload.OpenFiles([]string{local})
	if err != nil {
		t.Fatal(err)
	}
	defer want.Close()
	got, err := stload.Open("s3://gotest/single/", stload.WithRemote("aws_endpoint", endpoint),
		stload.WithRemote("allow_http", "true"), stload.WithRemote("concurrency", "4"))
	if err != nil {
		t.Fatalf("Open(s3://gotest/single/): %v", err)
	}
	defer got.Close()
	if got.Len() != want.Len() || got.Len() == 0 {
		t.Fatalf("%d tensors from S3, %d locally", got.Len(), want.Len())
	}
	for _, name := range want.Names() {
		a, err := want.Get(name)
		if err != nil {
			t.Fatal(err)
		}
		b, err := got.Get(name)
		if err != nil {
			t.Fatalf("Get(%s) from S3: %v", name, err)
		}
		if !bytes.Equal(a.Bytes(), b.Bytes()) {
			t.Errorf("%s: S3 bytes differ from the local file's", name)
		}
		a.Close()
		b.Close()
	}

	// With a cache directory: the first open downloads a copy there, the second reads it.
	cache := t.TempDir()
	for round := 0; round < 2; round++ {
		cached, err := stload.Open("s3://gotest/single/", stload.WithRemote("aws_endpoint", endpoint),
			stload.WithRemote("allow_http", "true"), stload.WithRemote("cache_dir", cache))
		if err != nil {
			t.Fatalf("Open(s3://gotest/single/) with cache_dir, round %d: %v", round, err)
		}
		if cached.Len() != want.Len() {
			t.Fatalf("round %d: %d tensors from the cache, %d locally", round, cached.Len(), want.Len())
		}
		for _, name := range want.Names() {
			a, err := want.Get(name)
			if err != nil {
				t.Fatal(err)
			}
			b, err := cached.Get(name)
			if err != nil {
				t.Fatalf("round %d: Get(%s) from the cache: %v", round, name, err)
			}
			if !bytes.Equal(a.Bytes(), b.Bytes()) {
				t.Errorf("round %d: %s: cached bytes differ from the local file's", round, name)
			}
			a.Close()
			b.Close()
		}
		cached.Close()
		// One complete copy beside models/, the prefix's directory of links to it.
		entries, err := os.ReadDir(cache)
		var copies []string
		for _, e := range entries {
			if e.Type().IsRegular() {
				copies = append(copies, e.Name())
			}
		}
		if err != nil || len(copies) != 1 {
			t.Fatalf("round %d: cache holds %v (%v), want one copy", round, copies, err)
		}
	}

	// A setting stload does not know is refused, naming it.
	_, err = stload.Open("s3://gotest/single/", stload.WithRemote("aws_endpoint_typo", "x"))
	if !errors.Is(err, stload.ErrInvalidArgument) {
		t.Errorf("unknown remote key: %v, want stload.ErrInvalidArgument", err)
	}
}
