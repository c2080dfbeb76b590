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

// Convert every float tensor to F32 up front, reporting progress, then read one as float32
// values. Later GetAs(name, F32) calls are served from the model's cache.
func ExampleModel_Load() {
	m, err := stload.Open("path/to/model")
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	err = m.Load(stload.F32, func(done, total int, name string) bool {
		fmt.Printf("\r%d/%d %s", done, total, name)
		return true // false cancels: Load then returns an error matching ErrCancelled
	})
	if err != nil {
		log.Fatal(err)
	}
	t, err := m.GetAs("model.norm.weight", stload.F32) // no conversion: loaded above
	if err != nil {
		log.Fatal(err)
	}
	defer t.Close()
	vals, err := t.Float32s() // a Go copy, valid after Close
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(vals))
}

// Convert a BF16 buffer to F32 without a model, e.g. bytes read from elsewhere.
func ExampleConvert() {
	bf16 := []byte{0x80, 0x3f, 0x00, 0xc0} // 1.0, -2.0
	f32 := make([]byte, 8)
	if err := stload.Convert(bf16, stload.BF16, f32, stload.F32); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("% x\n", f32)
	// Output: 00 00 80 3f 00 00 00 c0
}

// The loader API of ollama's image generator, by its names: in the default build Get gives
// host tensors, with the stload_mlx tag MLX arrays; the code is the same.
func ExampleModelWeights() {
	w, err := stload.LoadModelWeights("path/to/model")
	if err != nil {
		log.Fatal(err)
	}
	defer w.Close() // also releases every array w handed out
	// Convert every float tensor to BF16; Load(0) keeps every tensor as stored.
	if err := w.Load(stload.BF16); err != nil {
		log.Fatal(err)
	}
	emb, err := w.Get("model.embed_tokens.weight")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(emb.Dtype(), emb.Shape(), len(emb.Bytes()))
}
