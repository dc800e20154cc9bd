//! Structured edits to the example manifests, so that most inputs stay close to a valid
//! manifest and reach validation, the model and the planner (random bytes rarely do).
//!
//! The input drives a few edits (replace a value, remove a member, copy one value over
//! another, rename a key, add a member or an element) chosen from the manifests under
//! `manifests/` and a pool of values the validator has opinions about; the edited document
//! goes through the same checks as the `manifest` target.
#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};

const BASES: [&str; 4] = [
    include_str!("../../manifests/site.example.json"),
    include_str!("../../manifests/site.alias.json"),
    include_str!("../../manifests/site.pinned-cert.json"),
    include_str!("../../manifests/site.shared-backend.json"),
];

/// Strings that mean something to the validator: keys, references, ids, names, CIDRs.
#[rustfmt::skip]
const STRINGS: &[&str] = &[
    "", "lb", "backend", "http", "app", "site", "spare", "HTTP", "HTTPS", "A", "AAAA", "CNAME",
    "load_balancer", "internal", "internet-facing", "www.example.com", "example.com",
    "*.example.com", "EXAMPLE.COM.", "www.example.org", "0.0.0.0/0", "::/0", "198.51.100.0/24",
    "2001:db8::/32", "10.0.0.1/8", "1.2.3.4/33", "sg-0123456789abcdef0", "sg-01234567",
    "i-0aaaaaaaaaaaaaaa1", "i-0aaaaaaaaaaaaaaa3", "subnet-0aaaaaaaaaaaaaaa1",
    "subnet-0aaaaaaaaaaaaaaa3", "vpc-0123456789abcdef0",
    "arn:aws:acm:us-east-1:123456789012:certificate/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
    "200", "200-299", "200,204", "499-200", "/health/", "health", "reconcile:stack", "aws:x",
    "us-east-1", "internal-x", "sg-x", "www-example", "a-", "x.y", "ро\u{200b}rts", "\u{feff}",
    "\u{202e}lb", "e\u{301}", "😀", "\\", "\"", "$schema", "version", "stack", "vpc", "tags",
    "certificates", "security_groups", "target_groups", "dns", "zone", "records", "name",
    "type", "to", "ttl", "transition_ttl", "listeners", "port", "protocol", "forward",
    "certificate", "subnets", "scheme", "ingress", "ports", "cidrs", "from", "existing",
    "exclusive", "description", "domain", "arn", "health_check", "targets", "path", "matcher",
    "interval_seconds", "timeout_seconds", "healthy_threshold", "unhealthy_threshold", "region",
];

#[rustfmt::skip]
const INTS: &[i64] = &[
    0, 1, -1, 2, 5, 10, 22, 80, 120, 300, 443, 3600, 8080, 8088, 65535, 65536, 2_147_483_647,
    2_147_483_648, i64::MIN, i64::MAX,
];

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});

fn run(u: &mut Unstructured) -> Result<()> {
    let mut doc: Value = serde_json::from_str(u.choose(&BASES)?).expect("the examples are JSON");
    let edits = u.int_in_range(1..=8)?;
    for _ in 0..edits {
        if u.is_empty() {
            break;
        }
        edit(u, &mut doc)?;
    }
    let text = if u.arbitrary()? {
        serde_json::to_string_pretty(&doc)
    } else {
        serde_json::to_string(&doc)
    }
    .expect("a Value serialises");
    reconcile_fuzz::check(&text);
    Ok(())
}

/// One edit at a node chosen by the input.
fn edit(u: &mut Unstructured, doc: &mut Value) -> Result<()> {
    let mut nodes = Vec::new();
    pointers(doc, String::new(), &mut nodes);
    let at = u.choose(&nodes)?.clone();
    match u.int_in_range(0..=5)? {
        0 => {
            let v = leaf(u)?;
            set(doc, &at, v);
        }
        1 => remove(doc, &at),
        2 => {
            let from = u.choose(&nodes)?;
            let v = doc.pointer(from).cloned().unwrap_or(Value::Null);
            set(doc, &at, v);
        }
        3 => {
            // Rename the member at `at` (when its parent is an object).
            let Some((parent, key)) = split(&at) else {
                return Ok(());
            };
            let new_key = string(u)?;
            if let Some(Value::Object(map)) = doc.pointer_mut(&parent) {
                if let Some(v) = map.shift_remove(&key) {
                    map.insert(new_key, v);
                }
            }
        }
        4 => {
            // Add a member to an object or an element to a list.
            let v = if u.arbitrary()? {
                leaf(u)?
            } else {
                node_value(u, doc, &nodes)?
            };
            match doc.pointer_mut(&at) {
                Some(Value::Object(map)) => {
                    let k = string(u)?;
                    map.insert(k, v);
                }
                Some(Value::Array(items)) => items.push(v),
                _ => {}
            }
        }
        _ => {
            // Duplicate an element of a list, or empty it.
            if let Some(Value::Array(items)) = doc.pointer_mut(&at) {
                match items.first().cloned() {
                    Some(first) if u.arbitrary()? => items.push(first),
                    _ => items.clear(),
                }
            }
        }
    }
    Ok(())
}

fn node_value(u: &mut Unstructured, doc: &Value, nodes: &[String]) -> Result<Value> {
    let from = u.choose(nodes)?;
    Ok(doc.pointer(from).cloned().unwrap_or(Value::Null))
}

fn leaf(u: &mut Unstructured) -> Result<Value> {
    Ok(match u.int_in_range(0..=9)? {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary()?),
        2 | 3 => json!(*u.choose(INTS)?),
        4 => json!(u.arbitrary::<i64>()?),
        5 => json!(1.5),
        6 => json!(u64::MAX),
        7 => json!([]),
        8 => json!({}),
        _ => Value::String(string(u)?),
    })
}

fn string(u: &mut Unstructured) -> Result<String> {
    Ok(match u.int_in_range(0..=3)? {
        0 | 1 => (*u.choose(STRINGS)?).to_owned(),
        2 => u.arbitrary::<String>()?,
        _ => "a".repeat(u.int_in_range(30..=300)?),
    })
}

/// JSON pointers of every node, the root first.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    out.push(at.clone());
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                let k = k.replace('~', "~0").replace('/', "~1");
                pointers(child, format!("{at}/{k}"), out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                pointers(child, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

fn split(at: &str) -> Option<(String, String)> {
    let (parent, last) = at.rsplit_once('/')?;
    Some((
        parent.to_owned(),
        last.replace("~1", "/").replace("~0", "~"),
    ))
}

fn set(doc: &mut Value, at: &str, v: Value) {
    if let Some(slot) = doc.pointer_mut(at) {
        *slot = v;
    }
}

fn remove(doc: &mut Value, at: &str) {
    let Some((parent, last)) = split(at) else {
        return;
    };
    match doc.pointer_mut(&parent) {
        Some(Value::Object(map)) => {
            map.shift_remove(&last);
        }
        Some(Value::Array(items)) => {
            if let Ok(i) = last.parse::<usize>() {
                if i < items.len() {
                    items.remove(i);
                }
            }
        }
        _ => {}
    }
}
