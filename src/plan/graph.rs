//! The change graph: the diff's changes plus gates (load balancer active, targets healthy,
//! DNS in sync, a TTL to wait out), joined by ordering edges, checked for cycles, and put in
//! the order they may run. Building is apart from walking: the executor only walks this.
//!
//! The edges come from four rules:
//! 1. references: a node needs what it names (a listener its target group, a rule the group
//!    it admits, a registration its target group);
//! 2. verification: the gates wait for what they verify (the load balancer active after it
//!    is created, each serving target group healthy after its targets, listener and rules);
//! 3. the migration order: lower TTL → wait old TTL → switch (once everything is built and
//!    verified) → wait out the answers given before the switch → remove the backend's direct
//!    path → restore the TTL;
//! 4. add before remove: every removal waits for every addition and gate, and removals run
//!    in reverse dependency order (listeners and load balancers before the target groups
//!    and security groups they use).

use std::collections::{BTreeMap, BTreeSet};

use petgraph::algo::{tarjan_scc, toposort};
use petgraph::graph::{DiGraph, NodeIndex};

use super::diff::Decided;
use super::{Change, DnsStep, Gate, LbRef, Node, NodeKind, Op, Plan, SgRef, TgRef};
use crate::model::{Desired, Source};

/// The ordering rules produced a cycle: a bug in reconcile, never the user's fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bug: the plan's ordering rules form a cycle through {}; please report this with the manifest", .nodes.join(" → "))]
pub struct CycleError {
    pub nodes: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Build,
    Dns(DnsStep),
    Removal,
    /// Changes no path to the site (tags): nothing to verify, nothing to wait for.
    Label,
}

fn class(op: &Op) -> Class {
    match op {
        Op::RevokeIngress { .. }
        | Op::DeregisterTargets { .. }
        | Op::DeleteListener { .. }
        | Op::DeleteTargetGroup { .. }
        | Op::DeleteLoadBalancer { .. }
        | Op::DeleteSecurityGroup { .. }
        | Op::ClearMarker { .. } => Class::Removal,
        Op::SetRecord { step, .. } => Class::Dns(*step),
        Op::SetTags { .. } => Class::Label,
        _ => Class::Build,
    }
}

/// Ids of the nodes an operation refers to by reference (things created in this plan).
pub fn references(op: &Op) -> Vec<String> {
    let sg = |g: &SgRef| match g {
        SgRef::New(k) => Some(format!("sg.{k}.create")),
        SgRef::Id(_) => None,
    };
    let tg = |t: &TgRef| match t {
        TgRef::New { key, .. } => Some(format!("tg.{key}.create")),
        TgRef::Arn(_) => None,
    };
    let lb = |l: &LbRef| match l {
        LbRef::New(_) => Some("lb.create".to_owned()),
        LbRef::Arn(_) => None,
    };
    let rule_sources = |rules: &[(crate::model::RuleKey, Option<String>)]| {
        rules
            .iter()
            .filter_map(|(k, _)| match &k.source {
                Source::Key(key) => Some(format!("sg.{key}.create")),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    match op {
        Op::AuthorizeIngress { group, rules } | Op::UpdateRuleDescriptions { group, rules } => {
            let mut v = rule_sources(rules);
            v.extend(sg(group));
            v
        }
        Op::CreateLoadBalancer {
            security_groups, ..
        } => security_groups.iter().filter_map(sg).collect(),
        Op::SetSecurityGroups { lb: l, groups } => {
            let mut v: Vec<String> = groups.iter().filter_map(sg).collect();
            v.extend(lb(l));
            v
        }
        Op::SetSubnets { lb: l, .. } => lb(l).into_iter().collect(),
        Op::ModifyHealthCheck { tg: t, .. }
        | Op::RegisterTargets { tg: t, .. }
        | Op::DeregisterTargets { tg: t, .. } => tg(t).into_iter().collect(),
        Op::CreateListener { lb: l, tg: t, .. } => lb(l).into_iter().chain(tg(t)).collect(),
        Op::ModifyListener { tg: t, .. } | Op::AttachStandby { tg: t, .. } => {
            tg(t).into_iter().collect()
        }
        Op::SetRecord {
            value: super::RecordValue::LoadBalancer(l),
            ..
        } => lb(l).into_iter().collect(),
        _ => vec![],
    }
}

/// The target-group key a listener change forwards to.
fn forwards_to(op: &Op) -> Option<(&TgRef, Option<&str>)> {
    match op {
        Op::CreateListener { tg, .. }
        | Op::ModifyListener { tg, .. }
        | Op::AttachStandby { tg, .. } => {
            let key = match tg {
                TgRef::New { key, .. } => Some(key.as_str()),
                TgRef::Arn(_) => None,
            };
            Some((tg, key))
        }
        _ => None,
    }
}

struct Builder {
    nodes: Vec<(String, NodeKind)>,
    edges: BTreeSet<(String, String)>,
}

impl Builder {
    fn gate(&mut self, id: String, gate: Gate) {
        self.nodes.push((id, NodeKind::Gate(gate)));
    }

    fn edge(&mut self, from: &str, to: &str) {
        if from != to {
            self.edges.insert((from.to_owned(), to.to_owned()));
        }
    }

    fn has(&self, id: &str) -> bool {
        self.nodes.iter().any(|(n, _)| n == id)
    }

    fn ids_where(&self, f: impl Fn(&NodeKind) -> bool) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|(_, k)| f(k))
            .map(|(id, _)| id.clone())
            .collect()
    }
}

fn change_class(k: &NodeKind) -> Option<Class> {
    match k {
        NodeKind::Change(c) => Some(class(&c.op)),
        NodeKind::Gate(_) => None,
    }
}

fn op_of(k: &NodeKind) -> Option<&Op> {
    match k {
        NodeKind::Change(Change { op, .. }) => Some(op),
        NodeKind::Gate(_) => None,
    }
}

/// Builds the plan graph from the diff's decisions.
pub fn build(desired: &Desired, mut decided: Decided) -> Result<Plan, CycleError> {
    let mut b = Builder {
        nodes: std::mem::take(&mut decided.changes)
            .into_iter()
            .map(|(id, c)| (id, NodeKind::Change(c)))
            .collect(),
        edges: BTreeSet::new(),
    };

    // 1. References.
    let refs: Vec<(String, Vec<String>)> = b
        .nodes
        .iter()
        .filter_map(|(id, k)| Some((id.clone(), references(op_of(k)?))))
        .collect();
    for (id, deps) in refs {
        for dep in deps {
            if b.has(&dep) {
                b.edge(&dep, &id);
            }
        }
    }

    // A load balancer that serves moves to other groups only once every rule being added
    // is in place: its new groups' own rules (or it would stop answering on 80/443), and
    // the backend's rules admitting them (or its targets would stop answering it).
    let swaps = b.ids_where(|k| matches!(op_of(k), Some(Op::SetSecurityGroups { .. })));
    let rules_added = b.ids_where(|k| matches!(op_of(k), Some(Op::AuthorizeIngress { .. })));
    for swap in &swaps {
        for rule in &rules_added {
            b.edge(rule, swap);
        }
    }

    // 2. Verification gates, only when something is built or switched.
    let builds = b.ids_where(|k| change_class(k) == Some(Class::Build));
    let switches = b.ids_where(|k| change_class(k) == Some(Class::Dns(DnsStep::Switch)));
    let mut verify: Vec<String> = Vec::new();
    if !builds.is_empty() || !switches.is_empty() {
        if let Some(lb) = &decided.lb {
            if matches!(lb, LbRef::New(_)) || decided.lb_not_active {
                b.gate("gate.lb.active".into(), Gate::LbActive { lb: lb.clone() });
                for dep in ["lb.create", "lb.subnets", "lb.security_groups"] {
                    if b.has(dep) {
                        b.edge(dep, "gate.lb.active");
                    }
                }
                verify.push("gate.lb.active".into());
            }
        }
        let rules = b.ids_where(|k| {
            matches!(
                op_of(k),
                Some(Op::AuthorizeIngress { .. } | Op::UpdateRuleDescriptions { .. })
            )
        });
        for (key, tg) in &decided.traffic {
            let gate = format!("gate.tg.{key}.healthy");
            b.gate(
                gate.clone(),
                Gate::TargetsHealthy {
                    key: key.clone(),
                    tg: tg.clone(),
                },
            );
            let listeners =
                b.ids_where(|k| op_of(k).and_then(forwards_to).is_some_and(|(t, _)| t == tg));
            // A listener that attaches the group on standby first moves its traffic only
            // once the group is verified: the gate waits for the attachment, the move for
            // the gate.
            let (moves, listeners): (Vec<String>, Vec<String>) =
                listeners.into_iter().partition(|id| {
                    id.strip_suffix(".update")
                        .is_some_and(|base| b.has(&format!("{base}.attach")))
                });
            for m in &moves {
                b.edge(&gate, m);
            }
            let own = [
                format!("tg.{key}.create"),
                format!("tg.{key}.targets.add"),
                format!("tg.{key}.health"),
            ];
            let lb_gate = verify.iter().find(|v| *v == "gate.lb.active").cloned();
            for dep in own.iter().chain(&listeners).chain(&rules).chain(&lb_gate) {
                if b.has(dep) {
                    b.edge(dep, &gate);
                }
            }
            verify.push(gate);
        }
    }

    // 3. The DNS choreography, per record.
    let mut old_answers: Vec<String> = Vec::new();
    for rec in &decided.switched {
        let name = &rec.name;
        let of_record = |step: DnsStep| move |k: &NodeKind| matches!(op_of(k), Some(Op::SetRecord { name: n, step: s, .. }) if n == name && *s == step);
        let mark_of = |b: &Builder, id: &str| {
            b.nodes
                .iter()
                .find(|(n, _)| n == id)
                .and_then(|(_, k)| match op_of(k) {
                    Some(Op::SetRecord { mark, .. }) => mark.clone(),
                    _ => None,
                })
        };
        let lowers = b.ids_where(of_record(DnsStep::LowerTtl));
        let switch = b.ids_where(of_record(DnsStep::Switch));
        let mut before_switch: Vec<String> = builds.clone();
        before_switch.extend(verify.iter().cloned());
        if let Some((seconds, since)) = rec.old_ttl_wait {
            let wait = format!("gate.dns.{name}.old-ttl");
            b.gate(
                wait.clone(),
                Gate::WaitTtl {
                    record: name.clone(),
                    seconds,
                    why: "answers given before the TTL was lowered".into(),
                    since,
                },
            );
            if !lowers.is_empty() {
                let lowered = format!("gate.dns.{name}.lowered");
                let mark = lowers.first().and_then(|l| mark_of(&b, l));
                b.gate(
                    lowered.clone(),
                    Gate::DnsInSync {
                        record: name.clone(),
                        after: DnsStep::LowerTtl,
                        mark,
                    },
                );
                for l in &lowers {
                    b.edge(l, &lowered);
                }
                b.edge(&lowered, &wait);
            }
            before_switch.push(wait);
        }
        let mut after_switch: Option<String> = None;
        for s in &switch {
            for dep in &before_switch {
                b.edge(dep, s);
            }
            let synced = format!("gate.dns.{name}.switched");
            let mark = mark_of(&b, s);
            b.gate(
                synced.clone(),
                Gate::DnsInSync {
                    record: name.clone(),
                    after: DnsStep::Switch,
                    mark,
                },
            );
            b.edge(s, &synced);
            after_switch = Some(synced);
        }
        match rec.switch_wait {
            Some((seconds, since)) if seconds > 0 => {
                let wait = format!("gate.dns.{name}.old-answers");
                b.gate(
                    wait.clone(),
                    Gate::WaitTtl {
                        record: name.clone(),
                        seconds,
                        why: "answers given before the switch still point at the old path".into(),
                        since,
                    },
                );
                if let Some(synced) = &after_switch {
                    b.edge(synced, &wait);
                }
                old_answers.push(wait);
            }
            _ => old_answers.extend(after_switch),
        }
    }

    // 4. Add before remove, removals in reverse dependency order.
    let removals = b.ids_where(|k| change_class(k) == Some(Class::Removal));
    let direct_path = b.ids_where(|k| {
        matches!(
            op_of(k),
            Some(
                Op::RevokeIngress {
                    direct_path: true,
                    ..
                } | Op::DeleteLoadBalancer { .. }
            )
        )
    });
    let listener_deletes = b.ids_where(|k| matches!(op_of(k), Some(Op::DeleteListener { .. })));
    let lb_deletes = b.ids_where(|k| matches!(op_of(k), Some(Op::DeleteLoadBalancer { .. })));
    let revokes = b.ids_where(|k| matches!(op_of(k), Some(Op::RevokeIngress { .. })));
    let switch_nodes: Vec<String> =
        b.ids_where(|k| change_class(k) == Some(Class::Dns(DnsStep::Switch)));
    for r in &removals {
        for dep in builds.iter().chain(&verify).chain(&switch_nodes) {
            b.edge(dep, r);
        }
    }
    for r in &direct_path {
        for dep in &old_answers {
            b.edge(dep, r);
        }
    }
    let tg_deletes = b.ids_where(|k| matches!(op_of(k), Some(Op::DeleteTargetGroup { .. })));
    let sg_deletes = b.ids_where(|k| matches!(op_of(k), Some(Op::DeleteSecurityGroup { .. })));
    for t in &tg_deletes {
        for dep in listener_deletes.iter().chain(&lb_deletes) {
            b.edge(dep, t);
        }
    }
    for g in &sg_deletes {
        for dep in lb_deletes.iter().chain(&revokes) {
            b.edge(dep, g);
        }
    }
    let restores = b.ids_where(|k| change_class(k) == Some(Class::Dns(DnsStep::RestoreTtl)));
    for r in &restores {
        for dep in old_answers.iter().chain(&direct_path) {
            b.edge(dep, r);
        }
    }
    // A wait marker goes last, once everything its record's choreography gates is done.
    let markers = b.ids_where(|k| matches!(op_of(k), Some(Op::ClearMarker { .. })));
    let dns_nodes = b.ids_where(|k| matches!(change_class(k), Some(Class::Dns(_))));
    for m in &markers {
        for dep in old_answers.iter().chain(&direct_path).chain(&dns_nodes) {
            b.edge(dep, m);
        }
    }

    let mut plan = order(desired, b)?;
    plan.blockers = decided.blockers;
    Ok(plan)
}

/// Checks for cycles, computes each node's step and returns the plan in run order.
fn order(desired: &Desired, b: Builder) -> Result<Plan, CycleError> {
    let mut g: DiGraph<String, ()> = DiGraph::new();
    let index: BTreeMap<String, NodeIndex> = b
        .nodes
        .iter()
        .map(|(id, _)| (id.clone(), g.add_node(id.clone())))
        .collect();
    for (from, to) in &b.edges {
        if let (Some(f), Some(t)) = (index.get(from), index.get(to)) {
            g.add_edge(*f, *t, ());
        }
    }
    let topo = toposort(&g, None).map_err(|_| CycleError {
        nodes: tarjan_scc(&g)
            .into_iter()
            .find(|scc| scc.len() > 1)
            .unwrap_or_default()
            .into_iter()
            .map(|i| g[i].clone())
            .collect(),
    })?;
    let mut step: BTreeMap<NodeIndex, usize> = BTreeMap::new();
    for i in &topo {
        let s = g
            .neighbors_directed(*i, petgraph::Direction::Incoming)
            .filter_map(|p| step.get(&p))
            .max()
            .map_or(1, |m| m + 1);
        step.insert(*i, s);
    }
    let mut nodes: Vec<Node> = b
        .nodes
        .into_iter()
        .map(|(id, kind)| Node {
            step: index
                .get(&id)
                .and_then(|i| step.get(i))
                .copied()
                .unwrap_or(1),
            id,
            kind,
        })
        .collect();
    nodes.sort_by(|a, b| (a.step, &a.id).cmp(&(b.step, &b.id)));
    Ok(Plan {
        stack: desired.stack.clone(),
        nodes,
        edges: b.edges.into_iter().collect(),
        blockers: vec![],
        warnings: vec![],
        checked: None,
    })
}
