//! The plan's linter: proves a plan keeps the guarantees whatever order the executor (and
//! AWS) finishes its nodes in. An execution of the graph passes through states that are
//! sets of finished nodes, each closed under the graph's dependencies; the checker visits
//! every such set reachable from the start, carrying the model of AWS of [`super::sim`]
//! along (so DNS answers stay cached until the waits that expire them have finished), and
//! checks in each: every answer a client may still hold leads to a serving path, and no
//! change touches what the stack does not own. Exploring sets rather than orders keeps it
//! small: two orders that finish the same nodes reach the same set once.
//!
//! The model's clock only moves at TTL waits, so the state of a set is the same whichever
//! way it was reached, but for the cached answers of a record whose change interleaves with
//! another record's wait; the first way found stands for the others.

use std::collections::HashSet;

use super::sim::World;
use super::{NodeId, Plan};
use crate::model::{Desired, Observed};

/// The most states a check visits before it stops and says so (the example's migration
/// has a few thousand).
pub const MAX_STATES: usize = 200_000;

/// A plan that keeps the guarantees in every state it can pass through.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Checked {
    /// Sets of finished nodes visited.
    pub states: usize,
    /// Every reachable set was visited (false when [`MAX_STATES`] was reached first).
    pub complete: bool,
}

/// The first state found that breaks a guarantee: the nodes finished before it, and the
/// node whose finishing broke it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[error("after {node} (with {} finished before it): {message}", finished_text(.finished))]
pub struct Counterexample {
    pub finished: Vec<String>,
    pub node: String,
    pub message: String,
}

fn finished_text(finished: &[String]) -> String {
    match finished.len() {
        0 => "nothing".to_owned(),
        n if n <= 6 => finished.join(", "),
        n => format!("{} and {} more", finished[..6].join(", "), n - 6),
    }
}

/// A set of nodes, by index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Set(Vec<u64>);

impl Set {
    fn new(n: usize) -> Set {
        Set(vec![0; n.div_ceil(64)])
    }
    fn has(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }
    fn with(&self, i: usize) -> Set {
        let mut s = self.clone();
        s.0[i / 64] |= 1 << (i % 64);
        s
    }
    fn covers(&self, other: &Set) -> bool {
        self.0.iter().zip(&other.0).all(|(a, b)| a & b == *b)
    }
}

/// Checks `plan` from `observed` (see the module's documentation).
pub fn check(
    desired: &Desired,
    observed: &Observed,
    plan: &Plan,
) -> Result<Checked, Counterexample> {
    let n = plan.nodes.len();
    let index = |id: &NodeId| plan.nodes.iter().position(|x| &x.id == id);
    let mut deps = vec![Set::new(n); n];
    for (from, to) in &plan.edges {
        match (index(from), index(to)) {
            (Some(f), Some(t)) => deps[t] = deps[t].with(f),
            _ => {
                return Err(Counterexample {
                    finished: vec![],
                    node: format!("{from} → {to}"),
                    message: "the edge names a node the plan does not have".to_owned(),
                })
            }
        }
    }
    let start = World::new(desired, observed.clone());
    let serving = start.reachable().is_ok();
    // A state is the set of finished nodes and what of the world depends on their order.
    let mut seen: HashSet<(Set, u64)> = HashSet::new();
    let first = Set::new(n);
    seen.insert((first.clone(), start.order_key()));
    let mut stack: Vec<(Set, World, bool, Vec<usize>)> = vec![(first, start, serving, vec![])];
    while let Some((set, world, serving, path)) = stack.pop() {
        for (i, node) in plan.nodes.iter().enumerate() {
            if set.has(i) || !set.covers(&deps[i]) {
                continue;
            }
            let next = set.with(i);
            if seen.len() >= MAX_STATES {
                return Ok(Checked {
                    states: seen.len(),
                    complete: false,
                });
            }
            let broken = |message: String| Counterexample {
                finished: path.iter().map(|&j| plan.nodes[j].id.to_string()).collect(),
                node: node.id.to_string(),
                message,
            };
            let mut w = world.clone();
            w.run(node).map_err(|v| broken(v.message))?;
            if seen.contains(&(next.clone(), w.order_key())) {
                continue;
            }
            let still = match w.reachable() {
                Ok(()) => true,
                // The site was not served before either: not this plan's doing.
                Err(_) if !serving => false,
                Err(message) => return Err(broken(message)),
            };
            seen.insert((next.clone(), w.order_key()));
            let mut p = path.clone();
            p.push(i);
            stack.push((next, w, still, p));
        }
    }
    Ok(Checked {
        states: seen.len(),
        complete: true,
    })
}
