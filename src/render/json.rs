//! The plan for machines: a versioned JSON document (`format_version`) with changes, gates,
//! edges, blockers, a summary and read statistics per stack. Also deserializable, so that
//! tests (and users) read it into typed structs.

use serde::{Deserialize, Serialize};

use crate::plan::{Action, Blocker, Change, Gate, NodeKind, Plan, Warning};

pub const FORMAT_VERSION: &str = "1";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlanDocument {
    pub format_version: String,
    /// What reading every stack cost the run: `requests` (each once), `rounds`,
    /// `by_operation`, and `stacks`, how many were read.
    #[serde(default)]
    pub stats: serde_json::Value,
    pub stacks: Vec<StackPlan>,
}

impl PlanDocument {
    /// The document of a run's plans: the run's read statistics, and each stack's plan
    /// with its manifest's path and its own statistics.
    pub fn new<'a>(
        run: &crate::aws::ReadStats,
        stacks: impl IntoIterator<Item = (&'a Plan, String, serde_json::Value)>,
    ) -> PlanDocument {
        let stacks: Vec<StackPlan> = stacks
            .into_iter()
            .map(|(plan, path, stats)| StackPlan::new(plan, &path, stats))
            .collect();
        PlanDocument {
            format_version: FORMAT_VERSION.to_owned(),
            stats: run_stats(run, stacks.len()),
            stacks,
        }
    }
}

impl PlanDocument {
    /// The document of a saved plan (`reconcile show PLANFILE --json`): the plans as they
    /// were made, without read statistics (no read is made).
    pub fn of_saved<'a>(stacks: impl IntoIterator<Item = (&'a Plan, String)>) -> PlanDocument {
        PlanDocument {
            format_version: FORMAT_VERSION.to_owned(),
            stats: serde_json::Value::Null,
            stacks: stacks
                .into_iter()
                .map(|(plan, path)| StackPlan::new(plan, &path, serde_json::Value::Null))
                .collect(),
        }
    }
}

/// The run's read statistics with the number of stacks read.
pub fn run_stats(stats: &crate::aws::ReadStats, stacks: usize) -> serde_json::Value {
    let mut v = serde_json::to_value(stats).unwrap_or_default();
    if let Some(map) = v.as_object_mut() {
        map.remove("shared");
        map.insert("stacks".into(), stacks.into());
    }
    v
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StackPlan {
    pub stack: String,
    pub manifest: String,
    pub changes: Vec<ChangeDoc>,
    pub gates: Vec<GateDoc>,
    /// `[from, to]`: `to` waits for `from`.
    pub edges: Vec<(String, String)>,
    pub blockers: Vec<Blocker>,
    /// What applying the plan affects beyond the stack; absent when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<Warning>,
    pub summary: Summary,
    /// The checker's verdict: every state the run can pass through keeps the site served
    /// and touches only what the stack owns; `states`, how many the reduced search explored
    /// (each standing for the orders that lead to the same outcome); `complete`, always
    /// true (a search that reaches its bound blocks the plan instead). Absent when the plan
    /// is blocked (then a blocker says why).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked: Option<crate::plan::check::Checked>,
    /// AWS requests made to read this stack's live state: `requests`, `rounds`,
    /// `by_operation`, and `shared`, how many of those requests also served other stacks
    /// of the run (counted in full here, once in the run's figures).
    pub stats: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChangeDoc {
    pub id: String,
    pub step: usize,
    #[serde(flatten)]
    pub change: Change,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GateDoc {
    pub id: String,
    pub step: usize,
    #[serde(flatten)]
    pub gate: Gate,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_seconds: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub replace: usize,
    pub delete: usize,
    /// Resources made by hand that the plan takes over (absent when none).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub adopt: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl StackPlan {
    pub fn new(p: &Plan, manifest: &str, stats: serde_json::Value) -> StackPlan {
        let mut changes = Vec::new();
        let mut gates = Vec::new();
        for n in &p.nodes {
            match &n.kind {
                NodeKind::Change(c) => changes.push(ChangeDoc {
                    id: n.id.to_string(),
                    step: n.step,
                    change: c.clone(),
                }),
                NodeKind::Gate(g) => gates.push(GateDoc {
                    id: n.id.to_string(),
                    step: n.step,
                    gate: g.clone(),
                    expected_seconds: g.expected_seconds(),
                }),
            }
        }
        let counts = p.summary();
        let n = |a: Action| counts.get(&a).copied().unwrap_or(0);
        StackPlan {
            stack: p.stack.clone(),
            manifest: manifest.to_owned(),
            changes,
            gates,
            edges: p
                .edges
                .iter()
                .map(|(f, t)| (f.to_string(), t.to_string()))
                .collect(),
            blockers: p.blockers.clone(),
            warnings: p.warnings.clone(),
            summary: Summary {
                create: n(Action::Create),
                update: n(Action::Update),
                replace: n(Action::Replace),
                delete: n(Action::Delete),
                adopt: n(Action::Adopt),
            },
            checked: p.checked.clone(),
            stats,
        }
    }
}
