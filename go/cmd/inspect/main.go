// Command inspect prints every tensor of a safetensors model: name, dtype, shape, bytes and
// the first values. It is the Go twin of examples/c/inspect.c.
//
//	inspect [-n N] MODEL_DIR
//	inspect [-n N] FILE.safetensors [FILE.safetensors ...]
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"stload.dev/stload"
)

func main() {
	n := flag.Int("n", 4, "number of leading values to print per tensor")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: %s [-n N] MODEL_DIR | FILE.safetensors...\n", os.Args[0])
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() < 1 {
		flag.Usage()
		os.Exit(2)
	}
	w := bufio.NewWriter(os.Stdout)
	err := run(w, flag.Args(), *n)
	if ferr := w.Flush(); err == nil {
		err = ferr
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "inspect:", err)
		os.Exit(1)
	}
}

// run opens the model named by args (one directory, or files) and prints its tensors to w.
func run(w io.Writer, args []string, n int) error {
	m, err := open(args)
	if err != nil {
		return err
	}
	defer m.Close()
	names := m.Names()
	for _, name := range names {
		if err := printTensor(w, m, name, n); err != nil {
			return err
		}
	}
	_, err = fmt.Fprintf(w, "%d tensors\n", len(names))
	return err
}

func open(args []string) (*stload.Model, error) {
	if len(args) == 1 {
		if st, err := os.Stat(args[0]); err == nil && st.IsDir() {
			return stload.Open(args[0])
		}
	}
	return stload.OpenFiles(args)
}

// printTensor prints one line: name, dtype, shape, byte count and the first n values.
func printTensor(w io.Writer, m *stload.Model, name string, n int) error {
	t, err := m.Get(name)
	if err != nil {
		return err
	}
	defer t.Close()
	dims := make([]string, 0, 4)
	for _, d := range t.Shape() {
		dims = append(dims, fmt.Sprint(d))
	}
	_, err = fmt.Fprintf(w, "%-40s %-11s [%s] %d bytes %s\n", name, t.Dtype(),
		strings.Join(dims, ", "), t.NBytes(), formatValues(t.Dtype(), t.Bytes(), n))
	return err
}
