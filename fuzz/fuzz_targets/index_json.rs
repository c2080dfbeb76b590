//! `model.safetensors.index.json` parsing on arbitrary bytes: never a panic, and every shard
//! name it accepts stays inside the model directory.

#![no_main]

use std::path::{Component, Path};

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Ok(index) = stload::__private::index::ShardIndex::parse("fuzz.index.json", input) else {
        return;
    };
    assert!(!index.weight_map.is_empty());
    for shard in index.shards() {
        assert!(
            !shard.is_empty()
                && Path::new(shard)
                    .components()
                    .all(|c| matches!(c, Component::Normal(_))),
            "escaping shard name accepted: {shard:?}"
        );
    }
});
