//! `plan --format markdown`: the plan for a pull-request comment. A heading per stack,
//! its totals, the blockers and warnings, a table of the changes by step (what, why, the
//! attributes that change) and the waits, and the checker's verdict. Pure: plans in,
//! text out.

use std::fmt::Write as _;

use crate::plan::{NodeKind, Plan};

use super::human::{gate_line, step_note, totals};

/// Text for a table cell: one line, no `|` or backtick that would break the table.
fn cell(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace('`', "'")
        .replace(['\n', '\r'], " ")
}

fn value(v: &Option<serde_json::Value>) -> String {
    match v {
        None => "(none)".to_owned(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// A blocker or warning as a quote: `> **Kind** subject: message`, its hint beneath.
fn quote(out: &mut String, kind: &str, subject: &str, message: &str, hint: &str) {
    let _ = writeln!(
        out,
        "> **{kind}** {}: {}  \n> hint: {}\n",
        cell(subject),
        cell(message),
        cell(hint)
    );
}

/// Renders the plans of a run. `labels` name each stack (and its manifest).
pub fn render(plans: &[(&Plan, String)]) -> String {
    let mut out = String::new();
    for (p, label) in plans {
        let _ = writeln!(out, "### {}\n", cell(label));
        for b in &p.blockers {
            quote(&mut out, "Blocked", &b.subject, &b.message, &b.hint);
        }
        if !p.has_changes() {
            if p.blockers.is_empty() && p.drifted() {
                let _ = writeln!(
                    out,
                    "No changes to make, but drift that no change repairs (see the warnings).\n"
                );
            } else if p.blockers.is_empty() {
                let _ = writeln!(out, "No changes: the live state matches the manifest.\n");
            }
            for w in &p.warnings {
                quote(&mut out, "Warning", &w.subject, &w.message, &w.hint);
            }
            continue;
        }
        let _ = writeln!(out, "**Plan:** {}.\n", cell(&totals(p)));
        for w in &p.warnings {
            quote(&mut out, "Warning", &w.subject, &w.message, &w.hint);
        }
        let _ = writeln!(out, "| step | | change | why | attributes |");
        let _ = writeln!(out, "|---:|:---:|---|---|---|");
        for n in &p.nodes {
            match &n.kind {
                NodeKind::Change(c) => {
                    let attrs: Vec<String> = c
                        .attrs
                        .iter()
                        .map(|a| match (&a.before, &a.after) {
                            (None, after) => format!("+ {}: {}", a.name, value(after)),
                            (before, None) => format!("- {}: {}", a.name, value(before)),
                            (before, after) => {
                                format!("{}: {} → {}", a.name, value(before), value(after))
                            }
                        })
                        .collect();
                    let note = match step_note(c) {
                        note if note.is_empty() => note,
                        note => format!(" {note}"),
                    };
                    let _ = writeln!(
                        out,
                        "| {} | `{}` | {} {}{} | {} | {} |",
                        n.step,
                        c.action.symbol(),
                        cell(&c.resource.kind),
                        cell(&c.resource.name),
                        cell(&note),
                        cell(&c.reason),
                        cell(&attrs.join("; "))
                    );
                }
                NodeKind::Gate(g) => {
                    let _ = writeln!(out, "| {} | ⧗ | {} | | |", n.step, cell(&gate_line(g)));
                }
            }
        }
        out.push('\n');
        if let Some(c) = &p.checked {
            let _ = writeln!(out, "{}\n", crate::render::human::checked_line(c));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::cell;

    #[test]
    fn cells_keep_the_table_whole() {
        assert_eq!(cell("a|b`c\nd"), "a\\|b'c d");
    }
}
