//! Opening a model allocates once per tensor (its name) plus a constant: shapes, dtypes and
//! offsets live inline in the index. Counted with a global allocator, so this file holds one
//! test only (other tests' threads would be counted too).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

mod common;

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts the calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn open_allocates_once_per_tensor_plus_a_constant() {
    const TENSORS: usize = 10_000;
    // Shapes of one to six dimensions (the inline capacity), 8 bytes of F32 each.
    let shapes: [&[u64]; 6] = [
        &[2],
        &[1, 2],
        &[2, 1, 1],
        &[1, 1, 2, 1],
        &[1, 1, 1, 1, 2],
        &[1, 2, 1, 1, 1, 1],
    ];
    let mut header = String::from("{");
    for i in 0..TENSORS {
        let shape = shapes[i % shapes.len()];
        header += &format!(
            "\"model.layers.{i}.weight\":{{\"dtype\":\"F32\",\"shape\":{shape:?},\"data_offsets\":[{},{}]}},",
            8 * i,
            8 * (i + 1)
        );
    }
    header.pop();
    header.push('}');
    let dir = tempfile::tempdir().unwrap();
    let path = common::raw_file(dir.path(), "m.safetensors", &header, &vec![0; 8 * TENSORS]);
    let options = {
        let mut o = stload::Options::default();
        o.threads = 1;
        o
    };

    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let model = stload::Model::open_files(&[&path], &options).unwrap();
    let during = ALLOCATIONS.load(Ordering::Relaxed) - before;

    assert_eq!(model.len(), TENSORS);
    let info = model.info("model.layers.9999.weight").unwrap();
    assert_eq!(info.shape, shapes[9999 % shapes.len()]);
    assert!(
        during <= TENSORS + 100,
        "opening {TENSORS} tensors made {during} allocations"
    );
}
