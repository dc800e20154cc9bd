//! Text to typed manifest, reporting every structural problem at once.
//!
//! serde stops at the first error, so when the typed parse fails the document is checked
//! again piece by piece (each top-level field, each map entry, each listener, rule and
//! record on its own) to list every unknown field and wrong type with its path.

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::diag::Diagnostic;
use super::span::{Path, SpanIndex};
use super::types::{Certificate, IngressRule, Listener, Manifest, Record, TargetGroup};

/// Largest manifest accepted; a real one is a few kilobytes.
pub const MAX_BYTES: usize = 1024 * 1024;

/// The outcome of parsing: the manifest when the document has its shape, otherwise the
/// structural problems and, where taking out the offending members leaves a manifest, that
/// manifest too, so that validation can still report the rest.
pub struct Parsed {
    pub manifest: Option<Manifest>,
    pub problems: Vec<Diagnostic>,
    /// Paths of members taken out to get past a structural problem.
    pub removed: Vec<String>,
    pub spans: SpanIndex,
}

/// Parses manifest text, reporting every structural problem found.
pub fn parse(text: &str) -> Parsed {
    let fail = |d: Diagnostic| Parsed {
        manifest: None,
        problems: vec![d],
        removed: vec![],
        spans: SpanIndex::default(),
    };
    if text.len() > MAX_BYTES {
        return fail(Diagnostic::new(
            &Path::root(),
            format!("the manifest is {} bytes; the limit is {MAX_BYTES} bytes", text.len()),
        )
        .hint("a manifest describes one stack and is a few kilobytes; check that this is the right file"));
    }
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return fail(syntax_error(&e)),
    };
    let spans = SpanIndex::build(text);
    let duplicates: Vec<Diagnostic> = spans
        .duplicates()
        .iter()
        .map(|p| {
            Diagnostic::new(
                &Path::from_raw(p),
                "this key appears more than once in its object",
            )
            .hint("JSON keeps only the last one silently; remove the others")
            .at(spans.key_or_value(p))
        })
        .collect();
    if !duplicates.is_empty() {
        return Parsed {
            manifest: None,
            problems: duplicates,
            removed: vec![],
            spans,
        };
    }
    let first = match serde_path_to_error::deserialize::<_, Manifest>(&value) {
        Ok(manifest) => {
            return Parsed {
                manifest: Some(manifest),
                problems: vec![],
                removed: vec![],
                spans,
            }
        }
        Err(first) => first,
    };
    let mut c = Collector::default();
    check_root(&value, &mut c);
    if c.out.is_empty() {
        // The piecewise check must never miss what the typed parse saw.
        c.push(from_serde(first.path(), first.inner()));
    }
    let mut repaired = value;
    for path in &c.removed {
        remove_member(&mut repaired, path);
    }
    Parsed {
        manifest: serde_json::from_value(repaired).ok(),
        problems: c.out,
        removed: c.removed,
        spans,
    }
}

/// Problems found so far, and the members taken out to get past them.
#[derive(Default)]
struct Collector {
    out: Vec<Diagnostic>,
    removed: Vec<String>,
}

impl Collector {
    fn push(&mut self, d: Diagnostic) {
        self.out.push(d);
    }
}

fn syntax_error(e: &serde_json::Error) -> Diagnostic {
    let full = e.to_string();
    let message = match full.rfind(" at line ") {
        Some(cut) => &full[..cut],
        None => &full,
    };
    let hint = match e.classify() {
        serde_json::error::Category::Eof => "the file ends early: look for a missing `}` or `]`",
        _ if message.contains("recursion limit") => {
            "the document nests too deeply to be a manifest"
        }
        _ if message.contains("trailing comma") => "JSON allows no comma before `}` or `]`",
        _ if message.contains("key must be a string") => "object keys must be in double quotes",
        _ => "the manifest must be valid JSON (no comments, no trailing commas)",
    };
    let pos = (e.line() > 0).then_some(super::span::Pos {
        line: e.line(),
        column: e.column(),
    });
    Diagnostic::new(&Path::root(), format!("malformed JSON: {message}"))
        .hint(hint)
        .at(pos)
}

/// Turns a serde error at a path into a diagnostic whose path names the field itself.
fn from_serde(at: &serde_path_to_error::Path, e: &serde_json::Error) -> Diagnostic {
    let mut path = Path::root();
    for seg in at.iter() {
        path = match seg {
            serde_path_to_error::Segment::Seq { index } => path.index(*index),
            serde_path_to_error::Segment::Map { key } => path.key(key),
            serde_path_to_error::Segment::Enum { variant } => path.key(variant),
            serde_path_to_error::Segment::Unknown => path,
        };
    }
    describe(&path, &e.to_string())
}

fn describe(path: &Path, msg: &str) -> Diagnostic {
    if let Some(field) = between(msg, "missing field `", "`") {
        return Diagnostic::new(
            &path.key(field),
            format!("required field `{field}` is missing"),
        )
        .hint("add it; `reconcile schema` lists every field");
    }
    if let Some(field) = between(msg, "unknown field `", "`") {
        // serde_path_to_error sometimes includes the unknown key in the path, sometimes not.
        let own = Path::root().key(field);
        let own = own.as_str();
        let p = path.as_str();
        let named = p == own
            || (own.starts_with('[') && p.ends_with(own))
            || p.ends_with(&format!(".{own}"));
        let field_path = if named { path.clone() } else { path.key(field) };
        let expected = msg
            .split_once(", expected ")
            .map(|(_, rest)| rest.to_owned())
            .unwrap_or_else(|| "no fields here".to_owned());
        return Diagnostic::new(
            &field_path,
            format!("unknown field `{}`", super::span::visible(field)),
        )
        .hint(format!("allowed here: {expected}"));
    }
    if let Some(rest) = msg.strip_prefix("invalid type: ") {
        if let Some((found, expected)) = rest.split_once(", expected ") {
            return Diagnostic::new(
                path,
                format!(
                    "wrong type: expected {}, found {found}",
                    plain_type(expected)
                ),
            );
        }
    }
    if let Some(rest) = msg.strip_prefix("unknown variant ") {
        return Diagnostic::new(path, format!("unknown value {rest}"));
    }
    Diagnostic::new(path, msg.to_owned())
}

fn plain_type(expected: &str) -> &str {
    match expected {
        "i64" | "u32" | "u16" => "a whole number",
        "a string" => "a string",
        "a boolean" => "true or false",
        "a sequence" => "a list",
        "a map" => "an object",
        _ => expected,
    }
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = s.find(start)? + start.len();
    let len = s[from..].find(end)?;
    Some(&s[from..from + len])
}

/// Checks `value` as a `T`, reporting every unknown field and wrong type, not just the
/// first: after each error the offending member is taken out and the check runs again.
fn check<T: DeserializeOwned>(value: &Value, path: &Path, out: &mut Collector) {
    let mut value = value.clone();
    let mut taken_out: Vec<String> = Vec::new();
    // Each round removes one member, so the number of rounds is bounded by the members.
    for _ in 0..256 {
        let Err(e) = serde_path_to_error::deserialize::<_, T>(&value) else {
            return;
        };
        let mut d = from_serde(e.path(), e.inner());
        if d.message.starts_with("required field") && taken_out.contains(&d.path) {
            // Missing only because a wrongly typed value was taken out: already reported.
            return;
        }
        let removed = remove_member(&mut value, &d.path);
        if removed {
            taken_out.push(d.path.clone());
        }
        // Paths from serde are relative to `value`; re-root them under `path`.
        d.path = if d.path.is_empty() {
            path.as_str().to_owned()
        } else if d.path.starts_with('[') || path.as_str().is_empty() {
            format!("{}{}", path.as_str(), d.path)
        } else {
            format!("{}.{}", path.as_str(), d.path)
        };
        if removed {
            out.removed.push(d.path.clone());
        }
        out.push(d);
        if !removed {
            return;
        }
    }
}

/// Removes the object member at `path` (relative, as [`Path`] writes it); false when the
/// path does not end in an object member that can be removed.
fn remove_member(value: &mut Value, path: &str) -> bool {
    let segments = split_path(path);
    let Some((last, parents)) = segments.split_last() else {
        return false;
    };
    let mut at = value;
    for seg in parents {
        let next = match seg {
            Seg::Key(k) => at.get_mut(k.as_str()),
            Seg::Index(i) => at.get_mut(*i),
        };
        match next {
            Some(v) => at = v,
            None => return false,
        }
    }
    match (last, at) {
        (Seg::Key(k), Value::Object(map)) => map.shift_remove(k.as_str()).is_some(),
        _ => false,
    }
}

enum Seg {
    Key(String),
    Index(usize),
}

/// Splits a path written by [`Path`] back into segments.
fn split_path(path: &str) -> Vec<Seg> {
    let mut out = Vec::new();
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            rest = r;
        } else if let Some(r) = rest.strip_prefix('[') {
            // Either an index `[3]` or a quoted key `["a.b"]`.
            let close = if r.starts_with('"') {
                let mut de = serde_json::Deserializer::from_str(r).into_iter::<String>();
                match de.next() {
                    Some(Ok(key)) => {
                        let used = de.byte_offset();
                        out.push(Seg::Key(key));
                        used
                    }
                    _ => return out,
                }
            } else {
                let Some(end) = r.find(']') else { return out };
                match r[..end].parse() {
                    Ok(i) => out.push(Seg::Index(i)),
                    Err(_) => return out,
                }
                end
            };
            rest = r.get(close..).unwrap_or("").trim_start_matches(']');
        } else {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            out.push(Seg::Key(rest[..end].to_owned()));
            rest = &rest[end..];
        }
    }
    out
}

/// Checks an object: each `nested` member by its own checker, then the rest of the object
/// with those members replaced by a placeholder of the right type, so that no problem is
/// reported twice.
fn check_with<T: DeserializeOwned>(
    value: &Value,
    path: &Path,
    out: &mut Collector,
    nested: &[Nested],
) {
    let Some(obj) = value.as_object() else {
        return check::<T>(value, path, out);
    };
    let mut shell = obj.clone();
    for (field, checker, placeholder) in nested {
        if let Some(v) = shell.get_mut(*field) {
            checker(v, &path.key(field), out);
            *v = placeholder();
        }
    }
    check::<T>(&Value::Object(shell), path, out);
}

type Checker = fn(&Value, &Path, &mut Collector);
/// A member checked on its own: name, checker, and a valid stand-in for the parent's check.
type Nested = (&'static str, Checker, fn() -> Value);

fn empty_list() -> Value {
    Value::Array(vec![])
}

fn empty_map() -> Value {
    Value::Object(Default::default())
}

fn each_entry<T: DeserializeOwned>(value: &Value, path: &Path, out: &mut Collector) {
    match value.as_object() {
        Some(map) => map
            .iter()
            .for_each(|(k, v)| check::<T>(v, &path.key(k), out)),
        None => out.push(Diagnostic::new(
            path,
            "wrong type: expected an object of named entries",
        )),
    }
}

fn each_item<T: DeserializeOwned>(value: &Value, path: &Path, out: &mut Collector) {
    match value.as_array() {
        Some(items) => items
            .iter()
            .enumerate()
            .for_each(|(i, v)| check::<T>(v, &path.index(i), out)),
        None => out.push(Diagnostic::new(path, "wrong type: expected a list")),
    }
}

fn check_security_groups(value: &Value, path: &Path, out: &mut Collector) {
    match value.as_object() {
        Some(map) => map.iter().for_each(|(k, v)| {
            check_with::<super::types::SecurityGroup>(
                v,
                &path.key(k),
                out,
                &[("ingress", each_item::<IngressRule>, empty_list)],
            )
        }),
        None => out.push(Diagnostic::new(
            path,
            "wrong type: expected an object of named security groups",
        )),
    }
}

fn check_load_balancer(value: &Value, path: &Path, out: &mut Collector) {
    check_with::<super::types::LoadBalancer>(
        value,
        path,
        out,
        &[("listeners", each_item::<Listener>, empty_list)],
    );
}

fn check_dns(value: &Value, path: &Path, out: &mut Collector) {
    check_with::<super::types::Dns>(
        value,
        path,
        out,
        &[("records", each_item::<Record>, empty_list)],
    );
}

fn check_root(value: &Value, out: &mut Collector) {
    if !value.is_object() {
        out.push(
            Diagnostic::new(&Path::root(), "the manifest must be a JSON object")
                .hint("start from manifests/site.example.json"),
        );
        return;
    }
    check_with::<Manifest>(
        value,
        &Path::root(),
        out,
        &[
            ("certificates", each_entry::<Certificate>, empty_map),
            ("security_groups", check_security_groups, empty_map),
            ("target_groups", each_entry::<TargetGroup>, empty_map),
            (
                "load_balancer",
                check_load_balancer,
                || serde_json::json!({"scheme": "internal", "subnets": [], "security_groups": [], "listeners": []}),
            ),
            ("dns", check_dns, || Value::Null),
        ],
    );
}
