//! The plan file of `plan --out`, and the rule that runs it: a saved plan is carried out
//! only while the manifest and the live state are the ones it was made from, and only if
//! it is the plan reconcile makes from them (an edited plan may drop the edges that keep
//! the site up, or touch what the stack does not own).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{fingerprint, Connections, Error, Loaded, Planned};
use crate::plan::{NodeId, NodeKind, Plan};

/// A plan saved by `plan --out`, to be carried out by `apply PLANFILE` only while the
/// manifest and the live state are still the ones it was made from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedPlan {
    pub format_version: String,
    pub stacks: Vec<SavedStack>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedStack {
    pub manifest: PathBuf,
    /// SHA-256 of the manifest file when the plan was made.
    pub manifest_digest: String,
    pub region: String,
    /// SHA-256 of the observed state the plan was made from.
    pub observed_fingerprint: String,
    pub plan: Plan,
}

impl SavedPlan {
    pub fn new(planned: &[Planned]) -> SavedPlan {
        SavedPlan {
            format_version: crate::render::json::FORMAT_VERSION.to_owned(),
            stacks: planned
                .iter()
                .map(|p| SavedStack {
                    // Absolute, so that the plan can be applied from another folder.
                    manifest: std::fs::canonicalize(&p.loaded.path)
                        .unwrap_or_else(|_| p.loaded.path.clone()),
                    manifest_digest: p.loaded.digest.clone(),
                    region: p.region.clone(),
                    observed_fingerprint: fingerprint(&p.observed),
                    plan: p.plan.clone(),
                })
                .collect(),
        }
    }

    /// The manifests the plan was made from, in its order.
    pub fn manifests(&self) -> Vec<PathBuf> {
        self.stacks.iter().map(|s| s.manifest.clone()).collect()
    }

    /// Writes the plan to `path` (pretty JSON).
    pub fn write(&self, path: &Path) -> Result<(), Error> {
        let failed = |message: String| Error::Files {
            path: path.display().to_string(),
            message,
        };
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| failed(format!("cannot write the plan: {e}")))?;
        std::fs::write(path, text + "\n").map_err(|e| failed(format!("cannot write the plan: {e}")))
    }

    /// Reads a plan file. Its `format_version` is read first, so that a plan of another
    /// version is named as such rather than as broken.
    pub fn read(path: &Path) -> Result<SavedPlan, Error> {
        let failed = |message: String| Error::Files {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| failed(format!("cannot read the plan: {e}")))?;
        #[derive(Deserialize)]
        struct Version {
            format_version: String,
        }
        let version: Version = serde_json::from_str(&text)
            .map_err(|e| failed(format!("not a plan saved by `reconcile plan --out`: {e}")))?;
        let ours = crate::render::json::FORMAT_VERSION;
        if version.format_version != ours {
            return Err(failed(format!(
                "format_version \"{}\" is not one this reconcile reads (it reads \"{ours}\"); make the plan again with this version's `reconcile plan --out`",
                version.format_version
            )));
        }
        serde_json::from_str(&text).map_err(|e| {
            failed(format!(
                "cannot be read as a saved plan ({e}): it was edited, or made by another build of reconcile; make the plan again with `reconcile plan --out`"
            ))
        })
    }
}

/// Why a saved plan is not carried out: one sentence per stack or file at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub Vec<String>);

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join("\n"))
    }
}

/// Reads the stacks of a saved plan again and plans them afresh; the fresh plans are what
/// runs, and only when the manifests, the live state and the plans equal the saved ones.
pub async fn verify(
    saved: &SavedPlan,
    loaded: Vec<Loaded>,
    conns: &mut Connections,
) -> Result<Result<Vec<Planned>, Refusal>, Error> {
    let mut problems = Vec::new();
    for (l, s) in loaded.iter().zip(&saved.stacks) {
        if l.digest != s.manifest_digest {
            problems.push(format!(
                "{} changed since the plan was made",
                l.path.display()
            ));
        }
    }
    if !problems.is_empty() {
        return Ok(Err(Refusal(problems)));
    }
    let fresh = super::observe_and_plan(loaded, conns).await?.stacks;
    for (f, s) in fresh.iter().zip(&saved.stacks) {
        if fingerprint(&f.observed) != s.observed_fingerprint {
            let what = what_changed(&s.plan, &f.plan);
            problems.push(format!(
                "stack {}: the live state changed since the plan was made ({what})",
                f.plan.stack
            ));
        }
    }
    if !problems.is_empty() {
        return Ok(Err(Refusal(problems)));
    }
    // The planner is deterministic: from the same manifest and state it makes the same
    // plan. A saved plan that differs was edited after it was made.
    for (f, s) in fresh.iter().zip(&saved.stacks) {
        if f.plan == s.plan {
            continue;
        }
        let mut what = vec![];
        if f.plan.nodes != s.plan.nodes {
            what.push(what_changed(&s.plan, &f.plan));
        }
        let edges = |p: &Plan| -> BTreeSet<(NodeId, NodeId)> { p.edges.iter().cloned().collect() };
        let (saved_edges, fresh_edges) = (edges(&s.plan), edges(&f.plan));
        let missing = fresh_edges.difference(&saved_edges).count();
        let added = saved_edges.difference(&fresh_edges).count();
        if missing + added > 0 {
            what.push(format!(
                "its ordering differs: {missing} edge(s) missing, {added} added"
            ));
        }
        if f.plan.blockers != s.plan.blockers {
            what.push("its blockers differ".to_owned());
        }
        problems.push(format!(
            "stack {}: the saved plan is not the plan reconcile makes from this manifest and this state; it was edited after `plan --out` ({}). Make a new one with `reconcile plan --out`",
            f.plan.stack,
            what.join("; ")
        ));
    }
    if !problems.is_empty() {
        return Ok(Err(Refusal(problems)));
    }
    Ok(Ok(fresh))
}

/// A short account of what differs between the plan saved and the plan made now: the
/// changes that appeared or went away, by id.
pub fn what_changed(saved: &Plan, fresh: &Plan) -> String {
    let changes = |p: &Plan| -> std::collections::BTreeMap<String, NodeKind> {
        p.nodes
            .iter()
            .filter(|n| matches!(n.kind, NodeKind::Change(_)))
            .map(|n| (n.id.to_string(), n.kind.clone()))
            .collect()
    };
    let (a, b) = (changes(saved), changes(fresh));
    let list = |ids: Vec<&String>| {
        ids.iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let gone: Vec<&String> = a.keys().filter(|k| !b.contains_key(*k)).collect();
    let new: Vec<&String> = b.keys().filter(|k| !a.contains_key(*k)).collect();
    let changed: Vec<&String> = a
        .iter()
        .filter(|(k, v)| b.get(*k).is_some_and(|w| w != *v))
        .map(|(k, _)| k)
        .collect();
    let mut parts: Vec<String> = Vec::new();
    if !gone.is_empty() {
        parts.push(format!("no longer needed: {}", list(gone)));
    }
    if !new.is_empty() {
        parts.push(format!("now also needed: {}", list(new)));
    }
    if !changed.is_empty() {
        parts.push(format!("changed: {}", list(changed)));
    }
    if parts.is_empty() {
        "resources the plan reads differ, e.g. target health or tags".to_owned()
    } else {
        parts.join("; ")
    }
}
