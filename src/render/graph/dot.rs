//! Graphviz: one `digraph`, a cluster per step (inside a cluster per stack when there are
//! several), changes as rounded boxes, gates as dashed hexagons, blockers as octagons.

use std::fmt::Write as _;

use super::{blocker_label, by_step, document_title, drawn_edges, shown, title, Look, BLOCKED};
use crate::plan::Plan;

/// A DOT quoted string: `"` and `\` escaped (so that Graphviz's `\n`, `\l`, `\N` escapes
/// cannot be smuggled in), each newline a centred line break, other control characters
/// spaces. `<`, `>`, `{`, `|` need nothing inside quotes (only HTML labels and records care).
pub fn dot_quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for ch in text.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

pub(super) fn render(plans: &[&Plan]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "digraph plan {{");
    let _ = writeln!(
        out,
        "  graph [label={}, labelloc=t, fontname=\"Helvetica,Arial,sans-serif\", fontsize=14, newrank=true, nodesep=0.25, ranksep=0.35];",
        dot_quote(&document_title(plans))
    );
    let _ = writeln!(
        out,
        "  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica,Arial,sans-serif\", fontsize=11, penwidth=1.2];"
    );
    let _ = writeln!(out, "  edge [color=\"#5f6368\", arrowsize=0.7];");
    let several = plans.len() > 1;
    for (s, p) in plans.iter().enumerate() {
        let s = s + 1;
        let pad = if several { "    " } else { "  " };
        if several {
            let _ = writeln!(out, "  subgraph cluster_{s} {{");
            let _ = writeln!(
                out,
                "    graph [label={}, style=\"rounded\", color=\"#202124\", fontsize=13];",
                dot_quote(&title(p))
            );
        }
        dot_stack(&mut out, s, p, pad);
        if several {
            let _ = writeln!(out, "  }}");
        }
    }
    for (s, p) in plans.iter().enumerate() {
        for (f, t) in drawn_edges(p) {
            if let (Some(from), Some(to)) = (p.nodes.get(f), p.nodes.get(t)) {
                let _ = writeln!(
                    out,
                    "  {} -> {};",
                    dot_id(s + 1, &from.id.to_string()),
                    dot_id(s + 1, &to.id.to_string())
                );
            }
        }
    }
    let _ = writeln!(out, "}}");
    out
}

fn dot_id(stack: usize, id: &str) -> String {
    dot_quote(&format!("{stack}/{id}"))
}

fn dot_stack(out: &mut String, s: usize, p: &Plan, pad: &str) {
    for (i, b) in p.blockers.iter().enumerate() {
        let (fill, stroke) = BLOCKED;
        let _ = writeln!(
            out,
            "{pad}{} [label={}, tooltip={}, shape=octagon, style=filled, fillcolor=\"{fill}\", color=\"{stroke}\", penwidth=2];",
            dot_id(s, &format!("blocked.{}", i + 1)),
            dot_quote(&blocker_label(b)),
            dot_quote(&b.hint)
        );
    }
    if !p.has_changes() {
        let _ = writeln!(
            out,
            "{pad}{} [label={}, shape=plaintext, style=\"\"];",
            dot_id(s, "no-changes"),
            dot_quote("No changes: the live state matches the manifest.")
        );
    }
    for (step, nodes) in by_step(p) {
        let _ = writeln!(out, "{pad}subgraph cluster_{s}_step_{step} {{");
        let _ = writeln!(
            out,
            "{pad}  graph [label={}, style=\"rounded,dashed\", color=\"#9aa0a6\", fontsize=12];",
            dot_quote(&format!("Step {step}"))
        );
        // One row per step, so that the step boxes stack and never overlap.
        let _ = writeln!(out, "{pad}  rank=same;");
        for (_, n) in nodes {
            let shown = shown(n);
            let (fill, stroke) = shown.look.colors();
            let shape = match shown.look {
                Look::Gate => "shape=hexagon, style=\"filled,dashed\", ",
                _ => "",
            };
            let _ = writeln!(
                out,
                "{pad}  {} [label={}, tooltip={}, {shape}fillcolor=\"{fill}\", color=\"{stroke}\"];",
                dot_id(s, &n.id.to_string()),
                dot_quote(&shown.label),
                dot_quote(&shown.tooltip)
            );
        }
        let _ = writeln!(out, "{pad}}}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_strings_escape_quotes_backslashes_and_newlines() {
        assert_eq!(dot_quote("plain"), "\"plain\"");
        assert_eq!(dot_quote("say \"hi\""), "\"say \\\"hi\\\"\"");
        assert_eq!(dot_quote("a\\lb"), "\"a\\\\lb\"");
        assert_eq!(dot_quote("\\N"), "\"\\\\N\"");
        assert_eq!(dot_quote("one\ntwo"), "\"one\\ntwo\"");
        assert_eq!(dot_quote("crlf\r\n"), "\"crlf\\n\"");
        assert_eq!(dot_quote("tab\there"), "\"tab here\"");
        // Inside quotes, HTML and record syntax is plain text.
        assert_eq!(dot_quote("<b>{a|b}</b>"), "\"<b>{a|b}</b>\"");
        assert_eq!(dot_quote("⧗ 1h"), "\"⧗ 1h\"");
    }

    #[test]
    fn dot_strings_never_end_early() {
        for tricky in ["\"", "\\", "\\\"", "a\\", "\"; x -> y; \""] {
            let q = dot_quote(tricky);
            let inner = &q[1..q.len() - 1];
            // Every quote inside is preceded by an odd number of backslashes.
            let bytes = inner.as_bytes();
            for (i, b) in bytes.iter().enumerate() {
                if *b == b'"' {
                    let slashes = bytes[..i].iter().rev().take_while(|c| **c == b'\\').count();
                    assert!(slashes % 2 == 1, "{tricky:?} → {q}");
                }
            }
            assert!(!inner.ends_with('\\') || inner.ends_with("\\\\"), "{q}");
        }
    }
}
