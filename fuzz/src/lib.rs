//! The checks the fuzz targets run on one manifest text: parse and validate never panic,
//! every problem is located and explained, and a manifest that validates can be modelled,
//! planned, rendered and written back without a panic.

use reconcile::manifest::{self, Diagnostics, Manifest};
use reconcile::model::{Desired, Observed};
use reconcile::render;

/// Same limit as the parser's (`parse::MAX_BYTES`, private): above it, the only problem is
/// the size, reported for the document without a position.
const MAX_BYTES: usize = 1024 * 1024;

/// Runs the checks on `data` when it is UTF-8 text (the CLI refuses other bytes before
/// parsing, so they never reach `from_str`).
pub fn check_bytes(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        check(text);
    }
}

/// Runs the checks on one manifest text. Panics (a fuzzer finding) when one fails.
pub fn check(text: &str) {
    match manifest::from_str("fuzz.json", text) {
        Err(diagnostics) => check_diagnostics(text, &diagnostics),
        Ok(m) => check_manifest(&m),
    }
}

fn check_diagnostics(text: &str, diagnostics: &Diagnostics) {
    assert!(
        !diagnostics.problems.is_empty(),
        "from_str failed without naming a problem"
    );
    // Text that is JSON has a position for everything (at worst the document's start).
    let json = text.len() <= MAX_BYTES && is_json(text);
    for d in &diagnostics.problems {
        assert!(
            !d.message.trim().is_empty(),
            "a problem with no message: {d:?}"
        );
        if json {
            assert!(
                d.line.is_some() && d.column.is_some(),
                "a problem in a JSON document without a line: {d:?}"
            );
        }
    }
    // The report users read must render too.
    let _ = diagnostics.to_string();
}

fn is_json(text: &str) -> bool {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    serde_json::from_str::<serde_json::Value>(text).is_ok()
}

fn check_manifest(m: &Manifest) {
    let desired = Desired::from_manifest(m);
    // Blockers inside the plan are fine; a cycle in the change graph of a valid manifest
    // planned against nothing is not.
    match reconcile::plan::plan(&desired, &Observed::default()) {
        Ok(plan) => {
            let _ = render::human::plan(&plan, "fuzz.json", &render::human::Style { color: false });
            let doc = render::json::StackPlan::new(&plan, "fuzz.json", serde_json::Value::Null);
            serde_json::to_string(&doc).expect("the JSON view of a plan serialises");
        }
        Err(cycle) => panic!("a valid manifest planned into a cycle: {:?}", cycle.nodes),
    }
    // A valid manifest, written back out, reads back as itself (unless writing it out, with
    // its defaults spelled out, took it over the size limit).
    let text = serde_json::to_string_pretty(m).expect("a manifest serialises");
    if text.len() > MAX_BYTES {
        return;
    }
    match manifest::from_str("roundtrip.json", &text) {
        Ok(again) => assert_eq!(&again, m, "the manifest changed on a round trip"),
        Err(d) => panic!("a valid manifest, written back out, fails validation:\n{d}\n{text}"),
    }
}
