package stload_test

import (
	"errors"
	"fmt"
	"log"

	"stload.dev/stload"
)

// Open a model directory, list it and read one tensor without copying it.
func Example() {
	m, err := stload.Open("path/to/model", stload.WithMaxHeaderSize(64<<20))
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	for _, name := range m.Names() {
		info, err := m.Info(name)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(name, info.Dtype, info.Shape)
	}
	t, err := m.Get("model.embed_tokens.weight")
	if errors.Is(err, stload.ErrNotFound) {
		return
	} else if err != nil {
		log.Fatal(err)
	}
	defer t.Close() // Bytes below is valid until this Close
	data := t.Bytes()
	fmt.Println(t.Dtype(), t.Shape(), len(data))
}
