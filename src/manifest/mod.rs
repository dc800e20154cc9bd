//! The manifest: its serde types, parsing with located errors, semantic validation and
//! JSON Schema. Everything here is offline; nothing in this module talks to AWS.

mod diag;
pub mod net;
mod parse;
mod span;
mod types;
mod validate;

pub use diag::{Diagnostic, Diagnostics};
pub use span::{Path, Pos, SpanIndex};
pub use types::*;

/// Parses and validates manifest text. `file` names the source in the error report.
pub fn from_str(file: &str, text: &str) -> Result<Manifest, Diagnostics> {
    let fail = |mut problems: Vec<Diagnostic>| {
        // Document order reads best; problems without a position keep their place at the end.
        problems.sort_by_key(|d| (d.line.is_none(), d.line, d.column));
        Diagnostics {
            file: file.to_owned(),
            problems,
        }
    };
    let parsed = parse::parse(text);
    let mut problems = parsed.problems;
    if let Some(manifest) = &parsed.manifest {
        // Semantic problems, except those about a member taken out during parsing (the
        // member itself, what it holds, or what holds it). A set keeps this linear.
        let removed: std::collections::BTreeSet<&str> =
            parsed.removed.iter().map(String::as_str).collect();
        let boundary =
            |s: &str, len: usize| matches!(s.as_bytes().get(len), None | Some(b'.' | b'['));
        let related = |p: &str| {
            // `p` is a removed member or lies under one: some prefix of it was removed.
            let under = (1..=p.len())
                .filter(|&i| p.is_char_boundary(i) && boundary(p, i))
                .any(|i| removed.contains(&p[..i]));
            // A removed member lies under `p`.
            let holds = removed
                .range(p..)
                .next()
                .is_some_and(|r| r.starts_with(p) && boundary(r, p.len()));
            under || holds
        };
        problems.extend(
            validate::validate(manifest)
                .into_iter()
                .filter(|d| !related(&d.path)),
        );
    }
    match (parsed.manifest, problems.is_empty()) {
        (Some(manifest), true) => Ok(manifest),
        _ => Err(fail(
            problems
                .into_iter()
                .map(|d| d.locate(&parsed.spans))
                .collect(),
        )),
    }
}

/// Reads, parses and validates a manifest file.
pub fn load(path: &std::path::Path) -> Result<Manifest, Diagnostics> {
    let file = path.display().to_string();
    let text = read(path).map_err(|message| Diagnostics {
        file: file.clone(),
        problems: vec![Diagnostic::new(&Path::root(), message)
            .hint("pass the manifest's path with -f, e.g. -f manifests/site.example.json")],
    })?;
    from_str(&file, &text)
}

fn read(path: &std::path::Path) -> Result<String, String> {
    use std::io::Read as _;
    let f = std::fs::File::open(path).map_err(|e| format!("cannot read the file: {e}"))?;
    // Read one byte past the limit, so a huge file is refused without loading it whole.
    let mut bytes = Vec::new();
    f.take(parse::MAX_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read the file: {e}"))?;
    if bytes.len() > parse::MAX_BYTES {
        return Err(format!(
            "the file is over the {} byte limit for a manifest",
            parse::MAX_BYTES
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "the file is not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })
}

/// The manifest's JSON Schema, generated from the types above.
pub fn schema() -> serde_json::Value {
    let schema = schemars::schema_for!(Manifest);
    serde_json::to_value(schema).unwrap_or_default()
}
