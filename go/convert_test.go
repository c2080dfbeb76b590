package stload_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"stload.dev/stload"
)

// noConversion lists the stored dtypes stload does not convert.
var noConversion = map[stload.Dtype]bool{
	stload.C64: true, stload.F4: true, stload.F6E2M3: true, stload.F6E3M2: true,
}

// floatTargets are the conversion targets every other dtype supports.
var floatTargets = []stload.Dtype{stload.F32, stload.F16, stload.BF16, stload.F64}

// mustParse turns a fixture's dtype spelling into a Dtype.
func mustParse(t testing.TB, name string) stload.Dtype {
	t.Helper()
	d, err := stload.ParseDtype(name)
	if err != nil {
		t.Fatalf("ParseDtype(%q): %v", name, err)
	}
	return d
}

// dataPtr is the address of a tensor's first byte (nil when empty): equal pointers mean the
// same memory.
func dataPtr(tensor *stload.Tensor) *byte {
	b := tensor.Bytes()
	if len(b) == 0 {
		return nil
	}
	return &b[0]
}

// checkConverted gets name as target through GetAs and CopyTo and compares both with the
// numpy / ml_dtypes astype bytes the fixture script recorded.
func checkConverted(t *testing.T, m *stload.Model, name string, target stload.Dtype, want []byte) {
	t.Helper()
	tensor, err := m.GetAs(name, target)
	if err != nil {
		t.Errorf("GetAs(%s, %v): %v", name, target, err)
		return
	}
	defer tensor.Close()
	if tensor.Dtype() != target || !equalShape(tensor.Shape(), fx.Tensors[name].Shape) {
		t.Errorf("GetAs(%s, %v): dtype %v shape %v, want %v %v", name, target,
			tensor.Dtype(), tensor.Shape(), target, fx.Tensors[name].Shape)
	}
	if got := tensor.Bytes(); !bytes.Equal(got, want) {
		t.Errorf("GetAs(%s, %v):\n got %x\nwant %x", name, target, got, want)
	}
	stored, err := m.Get(name)
	if err != nil {
		t.Fatal(err)
	}
	defer stored.Close()
	dst := make([]byte, len(want))
	if err := stored.CopyTo(dst, target); err != nil {
		t.Errorf("CopyTo(%s, %v): %v", name, target, err)
	} else if !bytes.Equal(dst, want) {
		t.Errorf("CopyTo(%s, %v):\n got %x\nwant %x", name, target, dst, want)
	}
}

// Every convertible fixture tensor, into every target the script recorded, equals astype;
// C64, F4 and F6 refuse every float target with ErrUnsupported.
func TestConvertedMatchesNumpy(t *testing.T) {
	m := openFixture(t, "dtypes", "f6")
	sharded, err := stload.Open(fx.Path(fx.Files["sharded"]))
	if err != nil {
		t.Fatal(err)
	}
	defer sharded.Close()
	seen := map[stload.Dtype]bool{}
	for name, want := range fx.Tensors {
		model := m
		if filepath.Dir(want.File) != "." {
			model = sharded
		}
		from := mustParse(t, want.Dtype)
		if noConversion[from] {
			if len(want.As) != 0 {
				t.Errorf("%s: the fixture script recorded conversions of %v", name, from)
			}
			for _, to := range floatTargets {
				if tensor, err := model.GetAs(name, to); !errors.Is(err, stload.ErrUnsupported) {
					t.Errorf("GetAs(%s, %v): error %v, want ErrUnsupported", name, to, err)
					if err == nil {
						tensor.Close()
					}
				}
			}
			continue
		}
		seen[from] = true
		for _, to := range floatTargets {
			if to == from {
				continue
			}
			if _, ok := want.AsBytes(to.String()); !ok {
				t.Errorf("%s: no expected %v conversion in expected.json", name, to)
			}
		}
		for target := range want.As {
			exp, _ := want.AsBytes(target)
			checkConverted(t, model, name, mustParse(t, target), exp)
		}
	}
	for _, d := range stload.Dtypes() {
		if !noConversion[d] && !seen[d] {
			t.Errorf("no convertible fixture tensor of dtype %v", d)
		}
	}
}

func TestCopyTo(t *testing.T) {
	m := openFixture(t, "dtypes", "f6")
	// Native and the stored dtype copy the stored bytes, for every dtype (sub-byte ones too).
	for _, name := range m.Names() {
		tensor, err := m.Get(name)
		if err != nil {
			t.Fatal(err)
		}
		want := fx.Tensors[name].Bytes()
		for _, d := range []stload.Dtype{stload.Native, tensor.Dtype()} {
			dst := make([]byte, len(want))
			if err := tensor.CopyTo(dst, d); err != nil || !bytes.Equal(dst, want) {
				t.Errorf("CopyTo(%s, %v) = %v, bytes %x; want %x", name, d, err, dst, want)
			}
		}
		tensor.Close()
	}

	tensor, err := m.Get("t_bf16") // 12 elements
	if err != nil {
		t.Fatal(err)
	}
	defer tensor.Close()
	for _, n := range []int{0, 47, 49, 24} { // 24 is right for BF16, not for F32
		err := tensor.CopyTo(make([]byte, n), stload.F32)
		if !errors.Is(err, stload.ErrBufferSize) {
			t.Errorf("CopyTo(%d bytes, F32): error %v, want ErrBufferSize", n, err)
		}
	}
	if err := tensor.CopyTo(nil, stload.F32); !errors.Is(err, stload.ErrBufferSize) {
		t.Errorf("CopyTo(nil, F32): error %v, want ErrBufferSize", err)
	}
	if err := tensor.CopyTo(make([]byte, 12), stload.Bool); !errors.Is(err, stload.ErrUnsupported) {
		t.Errorf("CopyTo(BOOL): error %v, want ErrUnsupported", err)
	}
	// The tensor's own bytes are read-only native memory: never a destination.
	if err := tensor.CopyTo(tensor.Bytes(), stload.Native); !errors.Is(err, stload.ErrInvalidArgument) {
		t.Errorf("CopyTo(own bytes): error %v, want ErrInvalidArgument", err)
	}
	// An empty tensor copies into an empty buffer.
	empty, err := m.Get("empty_f32")
	if err != nil {
		t.Fatal(err)
	}
	defer empty.Close()
	if err := empty.CopyTo(nil, stload.BF16); err != nil {
		t.Errorf("empty CopyTo(nil, BF16): %v", err)
	}
	mustPanic(t, "CopyTo after Close", func() {
		tensor, _ := m.Get("t_f32")
		tensor.Close()
		tensor.CopyTo(make([]byte, 48), stload.F32)
	})
}

// float32sOf decodes little-endian float32 bytes.
func float32sOf(b []byte) []float32 {
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

// sameFloat32s compares bit patterns, so NaN equals NaN and -0 differs from 0.
func sameFloat32s(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

func TestFloat32s(t *testing.T) {
	m := openFixture(t, "dtypes")
	for _, name := range []string{"t_bf16", "t_f16", "t_f8_e4m3", "t_i64", "t_f32", "scalar_f32"} {
		want := fx.Tensors[name]
		var wantVals []float32
		if exp, ok := want.AsBytes("F32"); ok {
			wantVals = float32sOf(exp)
		} else {
			wantVals = float32sOf(want.Bytes()) // stored as F32
		}
		tensor, err := m.Get(name)
		if err != nil {
			t.Fatal(err)
		}
		got, err := tensor.Float32s()
		tensor.Close()
		if err != nil || !sameFloat32s(got, wantVals) {
			t.Errorf("%s.Float32s() = %v, %v; want %v", name, got, err, wantVals)
		}
	}
	// A known value: BF16 3.140625 is exact in both.
	bf16, err := m.Get("t_bf16")
	if err != nil {
		t.Fatal(err)
	}
	vals, err := bf16.Float32s()
	bf16.Close() // the slice is Go memory: it outlives the tensor
	if err != nil || len(vals) != 12 || vals[1] != 1 || vals[6] != 3.140625 {
		t.Errorf("t_bf16.Float32s() = %v, %v", vals, err)
	}

	empty, err := m.Get("empty_f32")
	if err != nil {
		t.Fatal(err)
	}
	defer empty.Close()
	if vals, err := empty.Float32s(); err != nil || vals == nil || len(vals) != 0 {
		t.Errorf("empty_f32.Float32s() = %#v, %v; want an empty slice", vals, err)
	}
	c64, err := m.Get("t_c64")
	if err != nil {
		t.Fatal(err)
	}
	defer c64.Close()
	if _, err := c64.Float32s(); !errors.Is(err, stload.ErrUnsupported) {
		t.Errorf("t_c64.Float32s(): error %v, want ErrUnsupported", err)
	}
}

func TestConvert(t *testing.T) {
	// Buffer to buffer, from the stored bytes to what astype gives.
	cases := []struct {
		name string
		to   stload.Dtype
	}{
		{"t_bf16", stload.F32}, {"t_f32", stload.BF16}, {"t_f32", stload.F8E4M3},
		{"t_f16", stload.F8E5M2}, {"t_i8", stload.F16}, {"t_f8_e8m0", stload.F64},
		{"t_bool", stload.BF16}, {"t_u64", stload.F32},
	}
	for _, c := range cases {
		want := fx.Tensors[c.name]
		exp, ok := want.AsBytes(c.to.String())
		if !ok {
			t.Fatalf("%s: no expected %v bytes", c.name, c.to)
		}
		dst := make([]byte, len(exp))
		err := stload.Convert(want.Bytes(), mustParse(t, want.Dtype), dst, c.to)
		if err != nil || !bytes.Equal(dst, exp) {
			t.Errorf("Convert(%s, %v) = %v:\n got %x\nwant %x", c.name, c.to, err, dst, exp)
		}
	}

	// A pair without a conversion names both dtypes, whether or not the lengths fit.
	src := make([]byte, 16) // 4 F32
	for _, n := range []int{4, 5} {
		err := stload.Convert(src, stload.F32, make([]byte, n), stload.Bool)
		if !errors.Is(err, stload.ErrUnsupported) || !strings.Contains(err.Error(), "F32") ||
			!strings.Contains(err.Error(), "BOOL") {
			t.Errorf("Convert(F32 -> BOOL, dst %d bytes): error %v, want ErrUnsupported naming F32 and BOOL", n, err)
		}
	}
	for _, c := range []struct{ from, to stload.Dtype }{
		{stload.C64, stload.F32}, {stload.F4, stload.F16}, {stload.F32, stload.I32},
	} {
		in := make([]byte, 8)
		out := make([]byte, 8*c.to.Bits()/c.from.Bits())
		if err := stload.Convert(in, c.from, out, c.to); !errors.Is(err, stload.ErrUnsupported) {
			t.Errorf("Convert(%v -> %v): error %v, want ErrUnsupported", c.from, c.to, err)
		}
	}

	// Lengths: checked in Go before the call.
	for _, c := range []struct {
		src, dst int
	}{{16, 4}, {16, 16}, {16, 0}, {15, 7}, {3, 2}} {
		err := stload.Convert(make([]byte, c.src), stload.F32, make([]byte, c.dst), stload.BF16)
		if !errors.Is(err, stload.ErrBufferSize) {
			t.Errorf("Convert(%d bytes F32 -> %d bytes BF16): error %v, want ErrBufferSize", c.src, c.dst, err)
		}
	}
	if err := stload.Convert(nil, stload.F32, nil, stload.BF16); err != nil {
		t.Errorf("Convert of nothing: %v", err)
	}
	if err := stload.Convert(nil, stload.Native, nil, stload.F32); !errors.Is(err, stload.ErrInvalidArgument) {
		t.Errorf("Convert from Native: error %v, want ErrInvalidArgument", err)
	}
	if err := stload.Convert(nil, stload.F32, nil, stload.Native); !errors.Is(err, stload.ErrInvalidArgument) {
		t.Errorf("Convert to Native: error %v, want ErrInvalidArgument", err)
	}
	// Overlapping buffers are refused, not half converted.
	buf := make([]byte, 24)
	if err := stload.Convert(buf[:16], stload.F32, buf[8:16], stload.BF16); !errors.Is(err, stload.ErrInvalidArgument) {
		t.Errorf("Convert with overlap: error %v, want ErrInvalidArgument", err)
	}
	if err := stload.Convert(buf[:16], stload.F32, buf[16:24], stload.BF16); err != nil {
		t.Errorf("Convert into the same array, apart: %v", err)
	}
	// Sub-byte dtypes copy into themselves: 8 bytes are 16 F4 elements.
	f4 := fx.Tensors["t_f4"].Bytes()
	dst := make([]byte, len(f4))
	if err := stload.Convert(f4, stload.F4, dst, stload.F4); err != nil || !bytes.Equal(dst, f4) {
		t.Errorf("Convert(F4 -> F4) = %v, %x; want %x", err, dst, f4)
	}
}

// convertibleFloats lists the model's floating-point tensors that Load(F32) converts.
func convertibleFloats(t *testing.T, m *stload.Model) []string {
	var names []string
	for _, name := range m.Names() {
		d := mustParse(t, fx.Tensors[name].Dtype)
		isFloat := d == stload.BF16 || strings.HasPrefix(d.String(), "F")
		if isFloat && d != stload.F32 && !noConversion[d] {
			names = append(names, name)
		}
	}
	return names
}

func TestLoad(t *testing.T) {
	m := openFixture(t, "dtypes", "f6")
	var dones, totals []int
	var names []string
	err := m.Load(stload.F32, func(done, total int, name string) bool {
		dones = append(dones, done)
		totals = append(totals, total)
		names = append(names, name)
		return true
	})
	if err != nil {
		t.Fatalf("Load(F32): %v", err)
	}
	n := m.Len()
	if len(dones) != n {
		t.Fatalf("progress called %d times, want once per tensor (%d)", len(dones), n)
	}
	for i := range dones {
		if dones[i] != i+1 || totals[i] != n {
			t.Errorf("progress call %d: done %d total %d, want %d %d", i, dones[i], totals[i], i+1, n)
		}
	}
	sort.Strings(names)
	if !reflect.DeepEqual(names, m.Names()) {
		t.Errorf("progress names %v, want every tensor once: %v", names, m.Names())
	}

	// The converted tensors are now in the cache: two gets share one buffer, with the values
	// astype gives.
	floats := convertibleFloats(t, m)
	if len(floats) < 7 {
		t.Fatalf("only %d convertible float tensors: %v", len(floats), floats)
	}
	for _, name := range floats {
		a, err := m.GetAs(name, stload.F32)
		if err != nil {
			t.Fatal(err)
		}
		b, err := m.GetAs(name, stload.F32)
		if err != nil {
			t.Fatal(err)
		}
		if want, _ := fx.Tensors[name].AsBytes("F32"); !bytes.Equal(a.Bytes(), want) {
			t.Errorf("GetAs(%s, F32) after Load: %x, want %x", name, a.Bytes(), want)
		}
		if pa, pb := dataPtr(a), dataPtr(b); pa != pb {
			t.Errorf("GetAs(%s, F32) twice after Load: data at %p and %p, want one cached buffer", name, pa, pb)
		}
		a.Close()
		b.Close()
	}

	// ReleaseAll empties the cache: a new get converts again, into new memory, while the
	// tensor handed out before stays valid.
	old, err := m.GetAs("t_bf16", stload.F32)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	m.ReleaseAll()
	fresh, err := m.GetAs("t_bf16", stload.F32)
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	want, _ := fx.Tensors["t_bf16"].AsBytes("F32")
	if dataPtr(old) == dataPtr(fresh) || !bytes.Equal(old.Bytes(), want) || !bytes.Equal(fresh.Bytes(), want) {
		t.Errorf("after ReleaseAll: old %p %x, new %p %x", dataPtr(old), old.Bytes(), dataPtr(fresh), fresh.Bytes())
	}

	// Without a callback, and as stored.
	if err := m.Load(stload.BF16, nil); err != nil {
		t.Errorf("Load(BF16, nil): %v", err)
	}
	if err := m.Load(stload.Native, nil); err != nil {
		t.Errorf("Load(Native, nil): %v", err)
	}
}

// GetAs caches without Load too; WithCache(false) converts every time.
func TestGetAsCache(t *testing.T) {
	path := fx.Path(fx.Files["dtypes"])
	for _, cache := range []bool{true, false} {
		m, err := stload.OpenFiles([]string{path}, stload.WithCache(cache))
		if err != nil {
			t.Fatal(err)
		}
		a, err := m.GetAs("t_f16", stload.BF16)
		if err != nil {
			t.Fatal(err)
		}
		b, err := m.GetAs("t_f16", stload.BF16)
		if err != nil {
			t.Fatal(err)
		}
		if same := dataPtr(a) == dataPtr(b); same != cache {
			t.Errorf("WithCache(%v): two GetAs share memory: %v", cache, same)
		}
		want, _ := fx.Tensors["t_f16"].AsBytes("BF16")
		if !bytes.Equal(a.Bytes(), want) || !bytes.Equal(b.Bytes(), want) {
			t.Errorf("WithCache(%v): wrong converted bytes", cache)
		}
		// Another dtype is another cache entry.
		c, err := m.GetAs("t_f16", stload.F32)
		if err != nil {
			t.Fatal(err)
		}
		if dataPtr(c) == dataPtr(a) || c.Dtype() != stload.F32 {
			t.Errorf("WithCache(%v): GetAs(F32) returned the BF16 buffer", cache)
		}
		a.Close()
		b.Close()
		c.Close()
		m.Close()
	}
}

func TestLoadCancel(t *testing.T) {
	m := openFixture(t, "dtypes", "f6")
	calls := 0
	err := m.Load(stload.F32, func(done, total int, name string) bool {
		calls++
		return done < 3
	})
	if !errors.Is(err, stload.ErrCancelled) {
		t.Fatalf("Load cancelled after 3: error %v, want ErrCancelled", err)
	}
	if calls != 3 {
		t.Errorf("progress called %d times after cancelling at 3", calls)
	}
	// The model stays usable, and a later load completes.
	checkTensor(t, m, "t_bf16")
	if err := m.Load(stload.F32, func(int, int, string) bool { return true }); err != nil {
		t.Errorf("Load after a cancelled one: %v", err)
	}

	// A panic in the callback stops the load and comes out of Load, not out of C.
	func() {
		defer func() {
			if r := recover(); r != "boom" {
				t.Errorf("Load with a panicking callback: recovered %v, want boom", r)
			}
		}()
		m.Load(stload.F16, func(done, total int, name string) bool {
			if done == 2 {
				panic("boom")
			}
			return true
		})
		t.Error("Load returned after its callback panicked")
	}()
	checkTensor(t, m, "t_f32")
}

// Eight goroutines mix zero-copy gets, converted (cached) gets, copies and cache releases.
func TestConcurrentConvert(t *testing.T) {
	m := openFixture(t, "dtypes", "f6")
	names := m.Names()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			fail := func(format string, args ...interface{}) { errs <- fmt.Errorf(format, args...) }
			for i := 0; i < 60; i++ {
				name := names[(g*5+i)%len(names)]
				want := fx.Tensors[name]
				target := floatTargets[(g+i)%len(floatTargets)]
				exp, convertible := want.AsBytes(target.String())
				if !convertible && want.Dtype == target.String() {
					exp, convertible = want.Bytes(), true
				}
				switch (g + i) % 3 {
				case 0:
					tensor, err := m.Get(name)
					if err != nil {
						fail("Get(%s): %v", name, err)
						return
					}
					ok := bytes.Equal(tensor.Bytes(), want.Bytes())
					tensor.Close()
					if !ok {
						fail("Get(%s): wrong bytes under concurrency", name)
						return
					}
				case 1:
					tensor, err := m.GetAs(name, target)
					if !convertible {
						if !errors.Is(err, stload.ErrUnsupported) {
							fail("GetAs(%s, %v): error %v, want ErrUnsupported", name, target, err)
							return
						}
						continue
					}
					if err != nil {
						fail("GetAs(%s, %v): %v", name, target, err)
						return
					}
					ok := bytes.Equal(tensor.Bytes(), exp)
					tensor.Close()
					if !ok {
						fail("GetAs(%s, %v): wrong bytes under concurrency", name, target)
						return
					}
				case 2:
					tensor, err := m.Get(name)
					if err != nil {
						fail("Get(%s): %v", name, err)
						return
					}
					if !convertible {
						tensor.Close()
						continue
					}
					dst := make([]byte, len(exp))
					err = tensor.CopyTo(dst, target)
					tensor.Close()
					if err != nil || !bytes.Equal(dst, exp) {
						fail("CopyTo(%s, %v) = %v: wrong bytes under concurrency", name, target, err)
						return
					}
				}
				if i%20 == 19 {
					m.ReleaseAll()
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// Float32s hands out Go memory of the right size and alignment for float32.
func TestFloat32sIsGoMemory(t *testing.T) {
	m := openFixture(t, "dtypes")
	tensor, err := m.Get("t_bf16")
	if err != nil {
		t.Fatal(err)
	}
	vals, err := tensor.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	tensor.Close()
	m.Close()
	vals[0] = 42 // writable, unlike Bytes
	if uintptr(unsafe.Pointer(&vals[0]))%4 != 0 || cap(vals) != 12 {
		t.Errorf("Float32s: misaligned or wrong capacity %d", cap(vals))
	}
}

func TestLoadInto(t *testing.T) {
	m := openFixture(t, "dtypes", "f6")
	const alignment = 64
	size, err := m.ArenaSize(stload.BF16, alignment)
	if err != nil {
		t.Fatal(err)
	}
	// A buffer whose start is a multiple of the alignment.
	storage := make([]byte, int(size)+alignment)
	skip := (alignment - int(uintptr(unsafe.Pointer(&storage[0])))%alignment) % alignment
	buf := storage[skip : skip+int(size)]
	calls := 0
	slots, err := m.LoadInto(stload.BF16, alignment, buf, func(done, total int, name string) bool {
		calls++
		return true
	})
	if err != nil {
		t.Fatalf("LoadInto(BF16): %v", err)
	}
	if calls != m.Len() || len(slots) != m.Len() {
		t.Fatalf("%d progress calls, %d slots, want %d", calls, len(slots), m.Len())
	}
	for i, name := range m.Names() {
		s := slots[i]
		if s.Offset%alignment != 0 || s.Offset+s.NBytes > size {
			t.Errorf("%s: slot %+v outside a %d-byte arena or unaligned", name, s, size)
			continue
		}
		want, err := m.GetAs(name, s.Dtype)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf[s.Offset:s.Offset+s.NBytes], want.Bytes()) {
			t.Errorf("%s: arena bytes differ from GetAs(%v)", name, s.Dtype)
		}
		want.Close()
	}
	if _, err := m.LoadInto(stload.BF16, alignment, buf[:size-1], nil); !errors.Is(err, stload.ErrInvalidArgument) {
		t.Errorf("short buffer: %v, want ErrInvalidArgument", err)
	}
	if _, err := m.ArenaSize(stload.BF16, 48); !errors.Is(err, stload.ErrInvalidArgument) {
		t.Errorf("alignment 48: %v, want ErrInvalidArgument", err)
	}
}
