//! stload's rename against Go's own strings.Replacer on generated cases: overlapping, prefix,
//! repeated, empty and non-ASCII pairs.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use stload::Replacer;

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Pieces that make overlaps and prefixes likely, including multi-byte characters.
const ATOMS: &[&str] = &[
    "a",
    "b",
    "ab",
    "aa",
    ".",
    "model",
    "layers",
    "é",
    "ü",
    "✓",
    "0",
    "1",
    "_proj",
    "self_attn",
];

fn word(rng: &mut Rng, max_atoms: usize) -> String {
    (0..rng.below(max_atoms + 1))
        .map(|_| ATOMS[rng.below(ATOMS.len())])
        .collect()
}

fn cases() -> Vec<(Vec<String>, String)> {
    let mut rng = Rng(0x5EED_2026);
    let mut cases = Vec::new();
    for i in 0..400 {
        let n_pairs = 1 + rng.below(4);
        let mut pairs = Vec::new();
        for _ in 0..n_pairs {
            // Every tenth case gets an empty old string somewhere.
            let old = if i % 10 == 0 && rng.below(2) == 0 {
                String::new()
            } else {
                word(&mut rng, 2).max("a".into())
            };
            pairs.push(old);
            pairs.push(word(&mut rng, 2));
        }
        cases.push((pairs, word(&mut rng, 8)));
    }
    // The pairs ollama's llama converter uses, on real names.
    let llama: Vec<String> = [
        "lm_head",
        "output",
        "model.embed_tokens",
        "token_embd",
        "model.layers",
        "blk",
        "self_attn.q_proj",
        "attn_q",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for name in [
        "model.layers.10.self_attn.q_proj.weight",
        "lm_head.weight",
        "model.embed_tokens.weight",
    ] {
        cases.push((llama.clone(), name.to_string()));
    }
    cases
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn rename_equals_go_strings_replacer() {
    let cases = cases();
    assert!(cases.len() >= 200);
    let json: Vec<serde_json::Value> = cases
        .iter()
        .map(|(p, s)| serde_json::json!({"pairs": p, "input": hex(s.as_bytes())}))
        .collect();
    let program = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/go/replacer/main.go");
    let mut child = Command::new("go")
        .arg("run")
        .arg(&program)
        .env("GO111MODULE", "off")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("`go` must be installed for this test (scripts/test.sh installs golang-go)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(&json).unwrap().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "go run failed");
    let go: Vec<String> = serde_json::from_slice(&out.stdout).unwrap();
    let mut with_empty = 0;
    for ((pairs, input), want) in cases.iter().zip(&go) {
        with_empty += usize::from(pairs.iter().step_by(2).any(String::is_empty));
        let ours = Replacer::from_flat(pairs)
            .unwrap()
            .replace_bytes(input.as_bytes());
        assert_eq!(&hex(&ours), want, "pairs {pairs:?} on {input:?}");
    }
    assert!(with_empty >= 10, "the cases include empty old strings");
}
