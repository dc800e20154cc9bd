//! The plan's linter: proves a plan keeps the guarantees whatever order the executor (and
//! AWS) finishes its nodes in. An execution of the graph passes through states that are
//! sets of finished nodes, each closed under the graph's dependencies; the checker visits
//! every such set reachable from the start, carrying the model of AWS of [`model`]
//! along (so DNS answers stay cached until the waits that expire them have finished), and
//! checks in each: every answer a client may still hold leads to a serving path, and no
//! change touches what the stack does not own. Exploring sets rather than orders keeps it
//! small: two orders that finish the same nodes reach the same set once.
//!
//! The model's clock only moves at TTL waits, so the state of a set is the same whichever
//! way it was reached, but for the cached answers of a record whose change interleaves with
//! another record's wait; the first way found stands for the others.

use std::collections::{BTreeSet, HashSet};

pub mod footprint;
pub mod model;

use crate::model::{Desired, Observed, RecordKind};
use crate::plan::{NodeId, NodeKind, Op, Plan, RecordValue};
use footprint::{Footprint, Footprints, Part};
use model::{Violation, World};

/// The most states a check visits before it stops and says so (the example's migration
/// has a few thousand).
pub const MAX_STATES: usize = 200_000;

/// A plan that keeps the guarantees in every state it can pass through.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Checked {
    /// States visited: sets of finished nodes with the world they left.
    pub states: usize,
    /// Every state the run can pass through was covered: always true for a verdict (a
    /// search that reaches its bound is [`Unproven::Bound`], never a partial verdict); kept
    /// in the JSON document for the tools that read it.
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
    fn add(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn union(&mut self, other: &Set) {
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a |= b;
        }
    }
    fn covers(&self, other: &Set) -> bool {
        self.0.iter().zip(&other.0).all(|(a, b)| a & b == *b)
    }
    fn len(&self) -> usize {
        self.0.iter().map(|w| w.count_ones() as usize).sum()
    }
    fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter().enumerate().flat_map(|(k, &w)| {
            (0..64)
                .filter(move |b| w & (1u64 << b) != 0)
                .map(move |b| k * 64 + b)
        })
    }
}

/// Why a plan is not proven: a state that breaks a guarantee, or a search that stopped at
/// its bound before it had seen every state it must (never taken for a proof).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unproven {
    #[error(transparent)]
    Broken(Counterexample),
    #[error("the check stopped at its bound of {bound} states before it had covered every state the run can pass through")]
    Bound { bound: usize },
}

impl Unproven {
    /// The state that breaks a guarantee, if that is why.
    pub fn counterexample(&self) -> Option<&Counterexample> {
        match self {
            Unproven::Broken(c) => Some(c),
            Unproven::Bound { .. } => None,
        }
    }
}

/// Checks `plan` from `observed` (see the module's documentation): the reduced search,
/// which is complete for the guarantees (docs/architecture.md says why) and visits a
/// handful of states per node instead of every set of finished nodes.
///
/// The invariant is one condition per managed record (its answers serve); when the run
/// starts served, it holds everywhere exactly when each record's does, so each record is
/// proven by a search of its own, in which the other records' changes are invisible.
pub fn check(desired: &Desired, observed: &Observed, plan: &Plan) -> Result<Checked, Unproven> {
    let names = model::record_names(desired);
    let served = World::new(desired, observed.clone()).reachable().is_ok();
    if names.len() < 2 || !served {
        return search(desired, observed, plan, true, MAX_STATES, names);
    }
    let mut states = 0;
    for name in names {
        states += search(desired, observed, plan, true, MAX_STATES, vec![name])?.states;
    }
    Ok(Checked {
        states,
        complete: true,
    })
}

/// The exhaustive explorer: every set of finished nodes an execution can pass through,
/// each with every world it can hold. Exponential in the plan's width; the tests' oracle
/// for [`check`], on plans small enough to enumerate.
pub fn check_exhaustive(
    desired: &Desired,
    observed: &Observed,
    plan: &Plan,
    bound: usize,
) -> Result<Checked, Unproven> {
    let names = model::record_names(desired);
    search(desired, observed, plan, false, bound, names)
}

/// The plan's order and footprints, as sets of node positions.
struct Graph {
    deps: Vec<Set>,
    /// Every node that runs after each node (its descendants).
    after: Vec<Set>,
    /// The nodes whose order relative to each node may matter.
    conflicts: Vec<Set>,
    footprints: Vec<Footprint>,
    /// The record changes that may make an answer lead to a load balancer.
    to_lb: Set,
    /// The records whose answers the invariant checks (with the clock, the load balancers
    /// seen and the security groups, what it reads whatever the answers).
    records: BTreeSet<String>,
}

impl Graph {
    fn new(observed: &Observed, plan: &Plan, watched: &[String]) -> Result<Graph, Counterexample> {
        let n = plan.nodes.len();
        let index = |id: &NodeId| plan.nodes.iter().position(|x| &x.id == id);
        let mut deps = vec![Set::new(n); n];
        let mut next: Vec<Vec<usize>> = vec![vec![]; n];
        for (from, to) in &plan.edges {
            match (index(from), index(to)) {
                (Some(f), Some(t)) => {
                    deps[t].add(f);
                    next[f].push(t);
                }
                _ => {
                    return Err(Counterexample {
                        finished: vec![],
                        node: format!("{from} → {to}"),
                        message: "the edge names a node the plan does not have".to_owned(),
                    })
                }
            }
        }
        // Descendants, in reverse topological order (Kahn's).
        let mut indegree: Vec<usize> = deps.iter().map(Set::len).collect();
        let mut ready: Vec<usize> = (0..n).filter(|i| indegree[*i] == 0).collect();
        let mut order = Vec::with_capacity(n);
        while let Some(i) = ready.pop() {
            order.push(i);
            for &t in &next[i] {
                indegree[t] -= 1;
                if indegree[t] == 0 {
                    ready.push(t);
                }
            }
        }
        if order.len() != n {
            return Err(Counterexample {
                finished: vec![],
                node: "plan".to_owned(),
                message: "the plan's edges form a cycle".to_owned(),
            });
        }
        let mut after = vec![Set::new(n); n];
        for &i in order.iter().rev() {
            let mut a = Set::new(n);
            for &t in &next[i] {
                a.add(t);
                a.union(&after[t]);
            }
            after[i] = a;
        }
        let footprints = Footprints::new(observed, &plan.nodes, watched).of;
        let mut conflicts = vec![Set::new(n); n];
        for i in 0..n {
            for j in (i + 1)..n {
                if footprints[i].conflicts(&footprints[j]) {
                    conflicts[i].add(j);
                    conflicts[j].add(i);
                }
            }
        }
        let mut to_lb = Set::new(n);
        for (i, node) in plan.nodes.iter().enumerate() {
            if let NodeKind::Change(c) = &node.kind {
                if let Op::SetRecord {
                    name,
                    kind,
                    value,
                    cutover,
                    ..
                } = &c.op
                {
                    let direct = matches!(value, RecordValue::Values(_))
                        && *kind != RecordKind::Cname
                        && cutover.is_none();
                    if !direct && watched.contains(name) {
                        to_lb.add(i);
                    }
                }
            }
        }
        let records = watched.iter().cloned().collect();
        Ok(Graph {
            deps,
            after,
            conflicts,
            footprints,
            to_lb,
            records,
        })
    }

    /// Nodes that may run before `t` from the state `set`: not finished, not after it.
    fn before<'s>(&'s self, t: usize, set: &'s Set) -> impl Fn(usize) -> bool + 's {
        move |u: usize| u != t && !set.has(u) && !self.after[t].has(u)
    }

    /// Is `t` independent of every node that may run before it?
    fn independent(&self, t: usize, set: &Set) -> bool {
        !self.footprints[t].global && !self.conflicts[t].iter().any(self.before(t, set))
    }

    /// Is `t` invisible to the invariant in every state the run can reach from here before
    /// `t` runs: does it change nothing the invariant reads there?
    fn invisible(&self, t: usize, set: &Set, world: &World) -> bool {
        let f = &self.footprints[t];
        let base = |p: &Part| match p {
            Part::Dns(n) => self.records.contains(n),
            Part::Clock | Part::SeenLbs | Part::Sg(_) => true,
            _ => false,
        };
        if f.changes_served(base) {
            return false;
        }
        // Can an answer that leads to a load balancer be live before `t` runs? One live
        // now stays until a wait expires it; a new one comes only from a record change
        // that may run before `t`.
        let lb = world.answers_lead_to_lb() || self.to_lb.iter().any(self.before(t, set));
        let path = |p: &Part| {
            matches!(
                p,
                Part::Lb(_)
                    | Part::LbState(_)
                    | Part::LbGroups(_)
                    | Part::Listener(..)
                    | Part::Tg(_)
                    | Part::TgTargets(_)
            )
        };
        !(lb && f.changes_served(path))
    }

    /// A node whose run from this state stands for every order (see docs/architecture.md):
    /// enabled, independent of every node that may run before it, and invisible.
    fn representative(&self, set: &Set, enabled: &[usize], world: &World) -> Option<usize> {
        enabled
            .iter()
            .copied()
            .find(|&t| self.independent(t, set) && self.invisible(t, set, world))
    }
}

/// Tests the footprints the reduction relies on, in every state of the exhaustive search
/// (up to `bound` states): any two enabled nodes it calls independent commute (the same
/// world in either order, and the same failure), and a node it calls invisible leaves the
/// invariant as it was. The first exception found, described.
#[doc(hidden)]
pub fn audit(
    desired: &Desired,
    observed: &Observed,
    plan: &Plan,
    bound: usize,
) -> Result<usize, String> {
    let names = model::record_names(desired);
    let mut states = 0;
    let singles = names.iter().map(|n| vec![n.clone()]);
    for watched in std::iter::once(names.clone()).chain(singles) {
        states += audit_watching(desired, observed, plan, bound, watched)?;
    }
    Ok(states)
}

fn audit_watching(
    desired: &Desired,
    observed: &Observed,
    plan: &Plan,
    bound: usize,
    watched: Vec<String>,
) -> Result<usize, String> {
    let n = plan.nodes.len();
    let graph = Graph::new(observed, plan, &watched).map_err(|c| c.to_string())?;
    let start = World::watching(desired, observed.clone(), watched);
    let mut seen: HashSet<(Set, u64)> = HashSet::new();
    let mut stack = vec![(Set::new(n), start)];
    while let Some((set, world)) = stack.pop() {
        if seen.len() >= bound {
            break;
        }
        if !seen.insert((set.clone(), world.fingerprint())) {
            continue;
        }
        let enabled: Vec<usize> = (0..n)
            .filter(|&i| !set.has(i) && set.covers(&graph.deps[i]))
            .collect();
        fn run<'a>(w: &World<'a>, node: &crate::plan::Node) -> Result<World<'a>, Violation> {
            let mut w = w.clone();
            w.run(node).map(|()| w)
        }
        let after: Vec<_> = enabled
            .iter()
            .map(|&i| run(&world, &plan.nodes[i]))
            .collect();
        let id = |i: usize| plan.nodes[i].id.to_string();
        for (x, &a) in enabled.iter().enumerate() {
            if graph.invisible(a, &set, &world) {
                if let Ok(w) = &after[x] {
                    if w.reachable().is_ok() != world.reachable().is_ok() {
                        return Err(format!("{} is not invisible after {set:?}", id(a)));
                    }
                }
            }
            for (y, &b) in enabled.iter().enumerate().skip(x + 1) {
                let (fa, fb) = (&graph.footprints[a], &graph.footprints[b]);
                if fa.conflicts(fb) {
                    continue;
                }
                let ab = after[x].as_ref().ok().map(|w| run(w, &plan.nodes[b]));
                let ba = after[y].as_ref().ok().map(|w| run(w, &plan.nodes[a]));
                let same = match (&ab, &ba) {
                    (Some(Ok(p)), Some(Ok(q))) => p.fingerprint() == q.fingerprint(),
                    (Some(Ok(_)), _) | (_, Some(Ok(_))) => false,
                    _ => true,
                };
                if !same {
                    return Err(format!("{} and {} do not commute", id(a), id(b)));
                }
            }
        }
        for (x, &i) in enabled.iter().enumerate() {
            if let Ok(w) = &after[x] {
                stack.push((set.with(i), w.clone()));
            }
        }
    }
    Ok(seen.len())
}

/// The search from `observed` for the invariant on the records `watched`, reduced or not.
fn search(
    desired: &Desired,
    observed: &Observed,
    plan: &Plan,
    reduce: bool,
    bound: usize,
    watched: Vec<String>,
) -> Result<Checked, Unproven> {
    let n = plan.nodes.len();
    let graph = Graph::new(observed, plan, &watched).map_err(Unproven::Broken)?;
    let start = World::watching(desired, observed.clone(), watched);
    let serving = start.reachable().is_ok();
    // A state: the finished nodes, the world they left, and whether the site has served
    // on the way here (a run that starts broken is blamed only once it served).
    let mut seen: HashSet<(Set, u64, bool)> = HashSet::new();
    let first = Set::new(n);
    seen.insert((first.clone(), start.fingerprint(), serving));
    let mut stack: Vec<(Set, World, bool, Vec<usize>)> = vec![(first, start, serving, vec![])];
    while let Some((set, world, serving, path)) = stack.pop() {
        let enabled: Vec<usize> = (0..n)
            .filter(|&i| !set.has(i) && set.covers(&graph.deps[i]))
            .collect();
        let only = if reduce {
            graph.representative(&set, &enabled, &world)
        } else {
            None
        };
        for i in only.map_or(enabled.clone(), |t| vec![t]) {
            let node = &plan.nodes[i];
            let next = set.with(i);
            if seen.len() >= bound {
                return Err(Unproven::Bound { bound });
            }
            let broken = |message: String| {
                Unproven::Broken(Counterexample {
                    finished: path.iter().map(|&j| plan.nodes[j].id.to_string()).collect(),
                    node: node.id.to_string(),
                    message,
                })
            };
            let mut w = world.clone();
            w.run(node).map_err(|v| broken(v.message))?;
            let still = match w.reachable() {
                Ok(()) => true,
                // The site was not served before either: not this plan's doing.
                Err(_) if !serving => false,
                Err(message) => return Err(broken(message)),
            };
            if !seen.insert((next.clone(), w.fingerprint(), still)) {
                continue;
            }
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
