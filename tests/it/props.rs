//! Properties of manifest parsing and validation: never a panic, and every problem is
//! located, whatever the input.

use proptest::prelude::*;
use reconcile::manifest;
use serde_json::Value;

fn example() -> Value {
    let text =
        std::fs::read_to_string(crate::support::repo_file("manifests/site.example.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Every leaf path of a JSON value, as (pointer) strings for `pointer_mut`.
fn leaves(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => m
            .iter()
            .for_each(|(k, v)| leaves(v, format!("{at}/{k}"), out)),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, v)| leaves(v, format!("{at}/{i}"), out)),
        _ => {}
    }
    out.push(at);
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
        Just(Value::String("sg-0123456789abcdef0".into())),
        Just(Value::String("0.0.0.0/0".into())),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        let _ = manifest::from_str("fuzz.json", &text);
    }

    /// Replace any one part of the example with any JSON value: the result is either a
    /// valid manifest or a list of problems, each with a message and a position.
    #[test]
    fn any_single_edit_is_accepted_or_located(pick in any::<prop::sample::Index>(), value in any_json()) {
        let mut m = example();
        let mut paths = Vec::new();
        leaves(&m, String::new(), &mut paths);
        let at = pick.get(&paths).clone();
        match m.pointer_mut(&at) {
            Some(slot) => *slot = value,
            None => unreachable!("the path came from the document"),
        }
        let text = serde_json::to_string_pretty(&m).unwrap();
        if let Err(report) = manifest::from_str("edit.json", &text) {
            prop_assert!(!report.problems.is_empty());
            for p in &report.problems {
                prop_assert!(!p.message.is_empty());
                prop_assert!(p.line.is_some(), "no position for {p}");
            }
        }
    }
}
