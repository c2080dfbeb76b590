//! Every rule on an `Options` value holds in the Rust API: the setters refuse a bad value when
//! it is set, and `Model::open_*` refuses options built as a struct literal with the same error
//! before it reads anything. The C setters call these, so both give the same answers.

use stload::__private::options::MAX_THREADS;
use stload::{Error, Model, Options};
use stload::{SplitRule, StackRule};

/// The refusals of an opened model, of an opened file list, and of the setter.
fn refused_at_open(options: &Options) -> (Error, Error) {
    // The directory does not exist: an error other than the options' proves they come first.
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let a = Model::open_dir(&missing, options).unwrap_err();
    let b = Model::open_files(&[missing.join("m.safetensors")], options).unwrap_err();
    (a, b)
}

fn assert_invalid(e: &Error, words: &str) {
    assert!(
        matches!(e, Error::InvalidArgument(m) if m.contains(words)),
        "want an invalid argument saying \"{words}\", got {e:?}"
    );
}

/// A setter of one limit to 0.
type Setter = fn(&mut Options) -> stload::Result<&mut Options>;

#[test]
fn zero_limits_are_refused_when_set_and_at_open() {
    let cases: [(Setter, &str); 3] = [
        (|o| o.set_max_header_size(0), "max header size"),
        (|o| o.set_max_json_size(0), "max JSON size"),
        (|o| o.set_max_view_expansion(0), "max view expansion"),
    ];
    for (set, words) in cases {
        let mut o = Options::default();
        assert_invalid(&set(&mut o).unwrap_err(), words);
        // A refused value leaves the options as they were.
        assert!(o.validate().is_ok());
    }
    for (options, words) in [
        (
            {
                let mut o = Options::default();
                o.max_header_size = 0;
                o
            },
            "max header size",
        ),
        (
            {
                let mut o = Options::default();
                o.max_json_size = 0;
                o
            },
            "max JSON size",
        ),
        (
            {
                let mut o = Options::default();
                o.max_view_expansion = 0;
                o
            },
            "max view expansion",
        ),
    ] {
        let (a, b) = refused_at_open(&options);
        assert_invalid(&a, words);
        assert_invalid(&b, words);
    }
    let mut o = Options::default();
    o.set_max_header_size(1)
        .unwrap()
        .set_max_json_size(7)
        .unwrap();
    assert_eq!((o.max_header_size, o.max_json_size), (1, 7));
}

#[test]
fn thread_counts_over_the_maximum_are_refused_by_the_setter() {
    let mut o = Options::default();
    o.set_threads(MAX_THREADS).unwrap();
    assert_eq!(o.threads, MAX_THREADS);
    o.set_threads(0).unwrap();
    assert_invalid(&o.set_threads(MAX_THREADS + 1).unwrap_err(), "threads");
    assert_eq!(o.threads, 0);
    // Set directly, a larger count is clamped (tests/hostile_open.rs opens with one).
    let direct = {
        let mut o = Options::default();
        o.threads = usize::MAX;
        o
    };
    assert!(direct.validate().is_ok());
    assert_eq!(direct.effective_threads(), MAX_THREADS);
}

#[test]
fn an_unknown_architecture_is_refused_when_set_and_at_open() {
    let mut o = Options::default();
    let e = o.set_arch(Some("llama9")).unwrap_err();
    assert!(
        matches!(&e, Error::Unsupported(m) if m.contains("llama9")),
        "{e:?}"
    );
    assert_eq!(o.arch, None);
    o.set_arch(Some("Mixtral")).unwrap();
    assert_eq!(o.arch.as_deref(), Some("Mixtral"));
    o.set_arch(Some("auto")).unwrap();
    o.set_arch(None).unwrap();
    assert_eq!(o.arch, None);
    let (a, b) = refused_at_open(&{
        let mut o = Options::default();
        o.arch = Some("llama9".into());
        o
    });
    for e in [a, b] {
        assert!(
            matches!(&e, Error::Unsupported(m) if m.contains("llama9")),
            "{e:?}"
        );
    }
}

#[test]
fn type_overrides_are_checked_when_set_and_at_open() {
    let mut o = Options::default();
    assert_invalid(
        &o.set_output_tensor_type(Some("q9_9")).unwrap_err(),
        "output tensor type: unknown tensor type \"q9_9\"",
    );
    assert_invalid(
        &o.set_token_embedding_type(Some("Q4_X")).unwrap_err(),
        "token embedding type: unknown tensor type \"Q4_X\"",
    );
    assert_invalid(&o.add_tensor_type("attn_v").unwrap_err(), "attn_v");
    assert_invalid(&o.add_tensor_type("attn_(v=q8_0").unwrap_err(), "attn_(v");
    assert!(o.type_overrides.is_empty());
    o.set_output_tensor_type(Some("Q6_K")).unwrap();
    o.set_token_embedding_type(Some("q8_0")).unwrap();
    o.add_tensor_type("ATTN_V=bf16").unwrap();
    o.set_pure(true);
    let t = &o.type_overrides;
    assert_eq!(t.output.map(|t| t.to_string()).as_deref(), Some("Q6_K"));
    assert_eq!(t.token_embedding, Some(stload::gguf::GgmlType::Q8_0));
    assert_eq!(t.tensor_types[0].pattern, "attn_v");
    assert!(t.pure);
    o.set_output_tensor_type(None).unwrap();
    assert_eq!(o.type_overrides.output, None);
    // A struct literal with a type no override may give (I8) is refused at open.
    let (a, b) = refused_at_open(&{
        let mut o = Options::default();
        o.type_overrides.output = Some(stload::gguf::GgmlType::I8);
        o
    });
    for e in [a, b] {
        assert_invalid(&e, "type overrides: unknown tensor type \"i8\"");
    }
}

#[test]
fn empty_stacks_and_splits_are_refused_when_added_and_at_open() {
    let mut o = Options::default();
    assert_invalid(
        &o.add_stack(Vec::new(), "experts").unwrap_err(),
        "at least one tensor",
    );
    assert_invalid(
        &o.add_split("w", Vec::new()).unwrap_err(),
        "at least one part",
    );
    assert!(o.stacks.is_empty() && o.splits.is_empty());
    o.add_stack(vec!["a".into(), "b".into()], "ab")
        .unwrap()
        .add_split("ab", vec![("x".into(), 1), ("y".into(), 1)])
        .unwrap();
    assert_eq!(
        o.stacks,
        [StackRule {
            names: vec!["a".into(), "b".into()],
            into: "ab".into()
        }]
    );
    assert_eq!(o.splits[0].parts.len(), 2);
    let (a, b) = refused_at_open(&{
        let mut o = Options::default();
        o.stacks = vec![StackRule {
            names: Vec::new(),
            into: "experts".into(),
        }];
        o
    });
    assert_invalid(&a, "experts");
    assert_invalid(&b, "at least one tensor");
    let (a, _) = refused_at_open(&{
        let mut o = Options::default();
        o.splits = vec![SplitRule {
            name: "w".into(),
            parts: Vec::new(),
        }];
        o
    });
    assert_invalid(&a, "at least one part");
}

#[test]
fn valid_options_reach_the_file_system() {
    let (a, _) = refused_at_open(&Options::default());
    assert!(matches!(a, Error::Io { .. }), "{a:?}");
}
