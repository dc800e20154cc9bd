//! `plan --graph`: the starting point's plan as Graphviz and Mermaid text, compared byte for
//! byte with golden files under tests/output (UPDATE_GOLDEN=1 rewrites them), checked with a
//! real Graphviz when `dot` is installed, and kept in step with docs/migration.md.

use std::io::Write as _;
use std::process::{Command, Stdio};

use reconcile::plan::{Blocker, Plan};
use reconcile::render::graph::{self, Format};

use crate::fixtures::*;
use crate::support::{reconcile, repo_file, stderr};

fn starting_point_plan() -> Plan {
    plan_of(&desired(), &starting_point())
}

fn golden(file: &str, text: &str) {
    let path = repo_file(&format!("tests/output/{file}"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, text).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        want == text,
        "{} differs from the rendering (UPDATE_GOLDEN=1 rewrites it):\n{text}",
        path.display()
    );
}

/// Runs `dot -Tsvg` on `text`; `None` when Graphviz is not installed and
/// `RECONCILE_REQUIRE_GRAPHVIZ` is not 1 (CI sets it, so there a missing `dot` fails).
fn dot_svg(text: &str) -> Option<std::process::Output> {
    let child = Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            assert!(
                std::env::var("RECONCILE_REQUIRE_GRAPHVIZ").as_deref() != Ok("1"),
                "RECONCILE_REQUIRE_GRAPHVIZ=1 but `dot` is not on PATH: install it (apt-get install graphviz)"
            );
            eprintln!("notice: `dot` is not on PATH: the Graphviz check is skipped (apt-get install graphviz; RECONCILE_REQUIRE_GRAPHVIZ=1 makes this a failure)");
            return None;
        }
        Err(e) => panic!("cannot run dot: {e}"),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    Some(child.wait_with_output().unwrap())
}

fn assert_dot_renders(text: &str, what: &str) {
    if let Some(out) = dot_svg(text) {
        let svg = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && svg.contains("<svg"),
            "dot -Tsvg failed on {what}: {}\n{text}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Graphviz warns on stderr about syntax it recovers from; there must be none.
        assert!(
            out.stderr.is_empty(),
            "dot -Tsvg warned on {what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn starting_point_as_dot_matches_the_golden_file() {
    let p = starting_point_plan();
    golden(
        "graph-starting-point.dot",
        &graph::render(Format::Dot, &[&p]),
    );
}

#[test]
fn starting_point_as_mermaid_matches_the_golden_file() {
    let p = starting_point_plan();
    golden(
        "graph-starting-point.mmd",
        &graph::render(Format::Mermaid, &[&p]),
    );
}

#[test]
fn every_node_and_step_is_drawn_once() {
    let p = starting_point_plan();
    let dot = graph::render(Format::Dot, &[&p]);
    for n in &p.nodes {
        let id = format!("\"1/{}\" [", n.id);
        assert_eq!(dot.matches(&id).count(), 1, "{id}");
    }
    let last = p.nodes.iter().map(|n| n.step).max().unwrap();
    for step in 1..=last {
        assert!(
            dot.contains(&format!("label=\"Step {step}\"")),
            "step {step}"
        );
    }
    let mmd = graph::render(Format::Mermaid, &[&p]);
    for i in 1..=p.nodes.len() {
        let node = format!("s1n{i}[");
        let gate = format!("s1n{i}{{{{");
        assert_eq!(
            mmd.matches(&node).count() + mmd.matches(&gate).count(),
            1,
            "node {i}"
        );
    }
}

#[test]
fn drawn_edges_keep_the_plans_order() {
    // Every drawn edge is one of the plan's, and every plan edge is still implied by a
    // drawn path: the picture leaves out only arrows that say nothing more.
    let p = starting_point_plan();
    let dot = graph::render(Format::Dot, &[&p]);
    let drawn: Vec<(String, String)> = dot
        .lines()
        .filter_map(|l| {
            let (from, to) = l.trim().strip_suffix(';')?.split_once(" -> ")?;
            let id = |s: &str| s.trim_matches('"').trim_start_matches("1/").to_owned();
            Some((id(from), id(to)))
        })
        .collect();
    assert!(!drawn.is_empty());
    assert!(drawn.len() < p.edges.len(), "implied edges are left out");
    for e in &drawn {
        assert!(
            p.edges
                .iter()
                .any(|(f, t)| (f.to_string(), t.to_string()) == *e),
            "{e:?} is not a plan edge"
        );
    }
    let reaches = |from: &str, to: &str| {
        let mut todo = vec![from.to_owned()];
        let mut seen = std::collections::BTreeSet::new();
        while let Some(n) = todo.pop() {
            if n == to {
                return true;
            }
            if seen.insert(n.clone()) {
                todo.extend(
                    drawn
                        .iter()
                        .filter(|(f, _)| *f == n)
                        .map(|(_, t)| t.clone()),
                );
            }
        }
        false
    };
    for (from, to) in &p.edges {
        assert!(
            reaches(&from.to_string(), &to.to_string()),
            "{from} → {to} is lost"
        );
    }
}

#[test]
fn dot_output_renders_with_graphviz() {
    let p = starting_point_plan();
    assert_dot_renders(&graph::render(Format::Dot, &[&p]), "the starting point");
}

/// A plan whose texts hold every character the two formats treat specially.
fn hostile_plan() -> Plan {
    let mut p = starting_point_plan();
    p.stack = "odd\"stack\\".into();
    for n in &mut p.nodes {
        if let reconcile::plan::NodeKind::Change(c) = &mut n.kind {
            c.resource.name = format!(
                "{} \"q\" <b>x</b> {{a|b}} \\l #quot; `m` %% ;\nend",
                c.resource.name
            );
            c.reason = "reason with \"quotes\" and \\N".into();
        }
    }
    p.blockers.push(Blocker {
        subject: "security_group \"x\" <y>".into(),
        message: "owned by someone else;\nline two".into(),
        hint: "tag it \\ or rename it".into(),
    });
    p
}

#[test]
fn hostile_labels_stay_inside_their_quotes() {
    let p = hostile_plan();
    let other = starting_point_plan();
    let dot = graph::render(Format::Dot, &[&p, &other]);
    assert_dot_renders(&dot, "labels with quotes, backslashes, newlines and <>");
    let mmd = graph::render(Format::Mermaid, &[&p, &other]);
    // Every Mermaid line is one statement: no raw newline, quote or angle bracket escaped
    // from a label.
    for line in mmd.lines().skip(3) {
        let quotes = line.matches('"').count();
        assert!(quotes == 0 || quotes == 2, "{line}");
        let inside = line.replace("<br>", "");
        assert!(
            !inside.contains(['<', '>']) || inside.contains("-->"),
            "{line}"
        );
    }
    assert!(mmd.contains("#lt;b#gt;x#lt;/b#gt;"));
    assert!(mmd.contains("<br>end"));
}

#[test]
fn several_stacks_make_one_document_with_a_box_per_stack() {
    let a = starting_point_plan();
    let mut b = plan_of(&desired(), &converged());
    b.stack = "other".into();
    let dot = graph::render(Format::Dot, &[&a, &b]);
    assert_eq!(dot.matches("digraph").count(), 1);
    assert!(dot.contains("subgraph cluster_1 {") && dot.contains("subgraph cluster_2 {"));
    assert!(dot.contains("stack other: no changes"));
    assert_dot_renders(&dot, "two stacks");
    let mmd = graph::render(Format::Mermaid, &[&a, &b]);
    assert_eq!(mmd.matches("flowchart").count(), 1);
    assert!(mmd.contains("subgraph s1[\"stack www-example: ") && mmd.contains("subgraph s2["));
    assert_eq!(
        mmd.lines().filter(|l| l.trim() == "end").count(),
        mmd.lines()
            .filter(|l| l.trim_start().starts_with("subgraph"))
            .count()
    );
}

#[test]
fn rendering_is_deterministic() {
    let p = starting_point_plan();
    for format in [Format::Dot, Format::Mermaid] {
        assert_eq!(
            graph::render(format, &[&p]),
            graph::render(format, &[&starting_point_plan()])
        );
    }
}

#[test]
fn the_migration_page_embeds_the_golden_mermaid() {
    let page = std::fs::read_to_string(repo_file("docs/migration.md")).unwrap_or_default();
    let mmd = std::fs::read_to_string(repo_file("tests/output/graph-starting-point.mmd"))
        .unwrap_or_default();
    assert!(
        page.contains(&format!("```mermaid\n{mmd}```\n")),
        "docs/migration.md is stale: run scripts/render-graph"
    );
    assert!(repo_file("docs/migration.svg").exists());
}

#[test]
fn graph_conflicts_with_json_and_names_its_formats() {
    let out = reconcile(&[
        "plan",
        "-f",
        "manifests/site.example.json",
        "--json",
        "--graph",
        "dot",
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a usage error is an error (2 means changes present)"
    );
    assert!(
        stderr(&out).contains("cannot be used with"),
        "{}",
        stderr(&out)
    );
    let out = reconcile(&[
        "plan",
        "-f",
        "manifests/site.example.json",
        "--graph",
        "png",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("dot") && err.contains("mermaid"), "{err}");
}

#[test]
fn plan_graph_through_the_binary_keeps_plans_exit_codes() {
    let emu = crate::emulator::Emulator::start();
    let seeded = emu.seed(&[]);
    let manifest = seeded.manifest.to_str().unwrap();
    let out = emu.reconcile(&[
        "plan",
        "-f",
        manifest,
        "--graph",
        "dot",
        "--detailed-exitcode",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let dot = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        dot.starts_with("digraph plan {") && dot.ends_with("}\n"),
        "{dot}"
    );
    assert!(
        dot.contains("wait 1h for www.example.com:\\nanswers"),
        "{dot}"
    );
    assert_dot_renders(&dot, "the seeded starting point");
    let out = emu.reconcile(&["plan", "-f", manifest, "--graph", "mermaid"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mmd = String::from_utf8_lossy(&out.stdout);
    assert!(
        mmd.starts_with("---\ntitle: \"stack www-example: 10 to add"),
        "{mmd}"
    );
    assert!(mmd.contains("\nflowchart TB\n"), "{mmd}");

    // A name taken by an untagged group blocks the plan: still drawn, still exit 1.
    let vpc = seeded.ids["vpc"].as_str().unwrap();
    emu.boto(&format!(
        "ec2.create_security_group(GroupName='www-example-lb', Description='someone else', VpcId='{vpc}')"
    ));
    let out = emu.reconcile(&[
        "plan",
        "-f",
        manifest,
        "--graph",
        "dot",
        "--detailed-exitcode",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let dot = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        dot.contains("shape=octagon") && dot.contains("www-example-lb"),
        "{dot}"
    );
    assert!(
        stderr(&out).contains("blocked: stack www-example"),
        "{}",
        stderr(&out)
    );
    assert_dot_renders(&dot, "a blocked plan");
}
