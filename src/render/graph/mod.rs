//! The plan as a picture: Graphviz `dot` or a Mermaid `flowchart`, rendered from the plan
//! model alone (plans in, text out; deterministic). Changes sit in one box per step,
//! labelled with their symbol (`+ ~ - -/+`), resource kind and name and coloured by action;
//! gates are dashed hexagons labelled with what they wait for and how long; blockers are red
//! octagons.
//!
//! Edges are the plan's ordering edges less those implied by others (a transitive
//! reduction): `a → c` is not drawn when `a → b → c` is. The order the picture shows is the
//! plan's order exactly; it only leaves out arrows that say nothing more.
//!
//! Several stacks make one document, so that it renders as one file or one Markdown code
//! block: one box per stack, titled with the stack, holding its steps (a Mermaid file or
//! code block holds only one diagram).

use std::collections::BTreeSet;

use super::human;
use crate::plan::{Action, Blocker, Node, NodeId, NodeKind, Plan};

/// The picture's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Graphviz: `dot -Tsvg plan.dot > plan.svg`.
    Dot,
    /// Mermaid `flowchart`: GitHub renders it in a ```` ```mermaid ```` code block.
    Mermaid,
}

mod dot;
mod mermaid;

pub use dot::dot_quote;
pub use mermaid::mermaid_text;

/// Renders the plans of one run (one per stack) as one graph.
pub fn render(format: Format, plans: &[&Plan]) -> String {
    match format {
        Format::Dot => dot::render(plans),
        Format::Mermaid => mermaid::render(plans),
    }
}

/// How a node is drawn: its colour class and shape follow from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Look {
    Create,
    Update,
    Replace,
    Delete,
    Adopt,
    Gate,
}

impl Look {
    fn name(self) -> &'static str {
        match self {
            Look::Create => "create",
            Look::Update => "update",
            Look::Replace => "replace",
            Look::Delete => "delete",
            Look::Adopt => "adopt",
            Look::Gate => "gate",
        }
    }

    /// Fill and stroke colours.
    fn colors(self) -> (&'static str, &'static str) {
        match self {
            Look::Create => ("#e6f4ea", "#1e8e3e"),
            Look::Update => ("#fef7e0", "#b06000"),
            Look::Replace => ("#f3e8fd", "#8430ce"),
            Look::Delete => ("#fce8e6", "#d93025"),
            Look::Adopt => ("#e0f7fa", "#00838f"),
            Look::Gate => ("#e8f0fe", "#1a73e8"),
        }
    }

    const ALL: [Look; 6] = [
        Look::Create,
        Look::Update,
        Look::Replace,
        Look::Delete,
        Look::Adopt,
        Look::Gate,
    ];
}

const BLOCKED: (&str, &str) = ("#fce8e6", "#d93025");

/// Gate labels wrap at this many characters.
const WRAP: usize = 32;

/// A node's label (lines), look and tooltip.
struct Shown {
    label: String,
    look: Look,
    tooltip: String,
}

fn shown(n: &Node) -> Shown {
    match &n.kind {
        NodeKind::Change(c) => {
            let mut lines = vec![
                format!("{} {}", c.action.symbol(), c.resource.kind),
                c.resource.name.clone(),
            ];
            let note = human::step_note(c);
            if !note.is_empty() {
                lines.push(note);
            }
            let look = match c.action {
                Action::Create => Look::Create,
                Action::Update => Look::Update,
                Action::Replace => Look::Replace,
                Action::Delete => Look::Delete,
                Action::Adopt => Look::Adopt,
            };
            Shown {
                label: lines.join("\n"),
                look,
                tooltip: c.reason.clone(),
            }
        }
        NodeKind::Gate(g) => Shown {
            label: wrap(&human::gate_line(g), WRAP),
            look: Look::Gate,
            tooltip: n.id.to_string(),
        },
    }
}

fn blocker_label(b: &Blocker) -> String {
    wrap(&format!("blocked: {}: {}", b.subject, b.message), WRAP)
}

/// Breaks `text` into lines of at most `width` characters at spaces (a longer word keeps
/// its own line).
fn wrap(text: &str, width: usize) -> String {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    lines.push(line);
    lines.join("\n")
}

/// The edges to draw, as indices into `p.nodes`: the plan's edges between its nodes, less
/// every edge `a → c` for which another path from `a` reaches `c`. Sorted.
fn drawn_edges(p: &Plan) -> Vec<(usize, usize)> {
    let index = |id: &NodeId| p.nodes.iter().position(|n| &n.id == id);
    let edges: BTreeSet<(usize, usize)> = p
        .edges
        .iter()
        .filter_map(|(from, to)| Some((index(from)?, index(to)?)))
        .filter(|(f, t)| f != t)
        .collect();
    let reaches_otherwise = |from: usize, to: usize| {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<usize> = edges
            .iter()
            .filter(|(f, t)| *f == from && *t != to)
            .map(|(_, t)| *t)
            .collect();
        while let Some(n) = todo.pop() {
            if n == to {
                return true;
            }
            if seen.insert(n) {
                todo.extend(edges.iter().filter(|(f, _)| *f == n).map(|(_, t)| *t));
            }
        }
        false
    };
    edges
        .iter()
        .copied()
        .filter(|(f, t)| !reaches_otherwise(*f, *t))
        .collect()
}

/// `stack www-example: 10 to add, …`, or `No changes` when there are none.
fn title(p: &Plan) -> String {
    if p.has_changes() {
        format!("stack {}: {}", p.stack, human::totals(p))
    } else {
        format!("stack {}: no changes", p.stack)
    }
}

fn document_title(plans: &[&Plan]) -> String {
    match plans {
        [one] => title(one),
        _ => {
            let names: Vec<&str> = plans.iter().map(|p| p.stack.as_str()).collect();
            format!("{} stacks: {}", plans.len(), names.join(", "))
        }
    }
}

/// Nodes grouped by step, in the plan's order (which is by step).
fn by_step(p: &Plan) -> Vec<(usize, Vec<(usize, &Node)>)> {
    let mut steps: Vec<(usize, Vec<(usize, &Node)>)> = Vec::new();
    for (i, n) in p.nodes.iter().enumerate() {
        match steps.last_mut() {
            Some((s, nodes)) if *s == n.step => nodes.push((i, n)),
            _ => steps.push((n.step, vec![(i, n)])),
        }
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_keeps_words_and_width() {
        assert_eq!(wrap("a b c", 3), "a b\nc");
        assert_eq!(wrap("averyverylongword b", 4), "averyverylongword\nb");
        assert_eq!(wrap("", 4), "");
        for line in wrap(
            "wait 1h for www.example.com: answers given before the TTL was lowered",
            WRAP,
        )
        .lines()
        {
            assert!(line.chars().count() <= WRAP, "{line}");
        }
    }
}
