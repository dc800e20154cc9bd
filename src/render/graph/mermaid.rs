//! Mermaid: one `flowchart` titled in its front matter, a subgraph per step (inside a
//! subgraph per stack when there are several), changes as boxes, gates as hexagons, colours
//! as `classDef`s.

use std::fmt::Write as _;

use super::{blocker_label, by_step, document_title, drawn_edges, shown, title, Look, BLOCKED};
use crate::plan::Plan;

/// Text for a Mermaid quoted label (`["…"]`): the characters Mermaid or the HTML it renders
/// into would read (`"`, `#`, `<`, `>`, `&`, `` ` ``, `%`) become entity codes, newlines
/// `<br>`, other control characters spaces.
pub fn mermaid_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '"' => out.push_str("#quot;"),
            '#' => out.push_str("#35;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '&' => out.push_str("#amp;"),
            '`' => out.push_str("#96;"),
            '%' => out.push_str("#37;"),
            '\n' => out.push_str("<br>"),
            '\r' => {}
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A YAML double-quoted scalar, for the front matter's title.
fn yaml_quote(text: &str) -> String {
    let mut out = String::from("\"");
    for ch in text.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

pub(super) fn render(plans: &[&Plan]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "---");
    let _ = writeln!(out, "title: {}", yaml_quote(&document_title(plans)));
    let _ = writeln!(out, "---");
    let _ = writeln!(out, "flowchart TB");
    for look in Look::ALL {
        let (fill, stroke) = look.colors();
        let dash = if look == Look::Gate {
            ",stroke-dasharray:5 4"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "  classDef {} fill:{fill},stroke:{stroke},color:#202124{dash}",
            look.name()
        );
    }
    let (fill, stroke) = BLOCKED;
    let _ = writeln!(
        out,
        "  classDef blocked fill:{fill},stroke:{stroke},stroke-width:2px,color:#202124"
    );
    let several = plans.len() > 1;
    for (s, p) in plans.iter().enumerate() {
        let s = s + 1;
        let pad = if several { "    " } else { "  " };
        if several {
            let _ = writeln!(out, "  subgraph s{s}[\"{}\"]", mermaid_text(&title(p)));
        }
        mermaid_stack(&mut out, s, p, pad);
        if several {
            let _ = writeln!(out, "  end");
        }
    }
    for (s, p) in plans.iter().enumerate() {
        for (f, t) in drawn_edges(p) {
            let _ = writeln!(out, "  s{}n{} --> s{}n{}", s + 1, f + 1, s + 1, t + 1);
        }
    }
    out
}

fn mermaid_stack(out: &mut String, s: usize, p: &Plan, pad: &str) {
    for (i, b) in p.blockers.iter().enumerate() {
        let _ = writeln!(
            out,
            "{pad}s{s}b{}[\"{}\"]:::blocked",
            i + 1,
            mermaid_text(&blocker_label(b))
        );
    }
    if !p.has_changes() {
        let _ = writeln!(
            out,
            "{pad}s{s}none[\"No changes: the live state matches the manifest.\"]"
        );
    }
    for (step, nodes) in by_step(p) {
        let _ = writeln!(out, "{pad}subgraph s{s}step{step}[\"Step {step}\"]");
        for (i, n) in nodes {
            let shown = shown(n);
            let text = mermaid_text(&shown.label);
            let shape = match shown.look {
                Look::Gate => format!("{{{{\"{text}\"}}}}"),
                _ => format!("[\"{text}\"]"),
            };
            let _ = writeln!(out, "{pad}  s{s}n{}{shape}:::{}", i + 1, shown.look.name());
        }
        let _ = writeln!(out, "{pad}end");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mermaid_text_escapes_what_mermaid_and_html_read() {
        assert_eq!(mermaid_text("plain text"), "plain text");
        assert_eq!(mermaid_text("say \"hi\""), "say #quot;hi#quot;");
        assert_eq!(mermaid_text("<script>"), "#lt;script#gt;");
        assert_eq!(mermaid_text("a & b"), "a #amp; b");
        assert_eq!(mermaid_text("#quot;"), "#35;quot;");
        assert_eq!(mermaid_text("`md`"), "#96;md#96;");
        assert_eq!(mermaid_text("100%%"), "100#37;#37;");
        assert_eq!(mermaid_text("one\ntwo\r\n"), "one<br>two<br>");
        assert_eq!(mermaid_text("tab\t"), "tab ");
        // Brackets and pipes are plain inside a quoted label.
        assert_eq!(mermaid_text("[a]{b}(c)|d"), "[a]{b}(c)|d");
        assert_eq!(mermaid_text("-/+ ⧗"), "-/+ ⧗");
    }

    #[test]
    fn mermaid_text_has_no_quote_or_angle_bracket_left() {
        let text = mermaid_text("\"<>\"&#`%\n");
        let without_br = text.replace("<br>", "");
        assert!(!without_br.contains(['"', '<', '>', '`', '%']), "{text}");
    }

    #[test]
    fn yaml_titles_are_quoted() {
        assert_eq!(yaml_quote("stack a: 1"), "\"stack a: 1\"");
        assert_eq!(yaml_quote("q\"\\\n"), "\"q\\\"\\\\ \"");
    }
}
