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
//!
//! Before all of them, what the manifest adopts is tagged with the stack (`adopt_first`).

use std::collections::{BTreeMap, BTreeSet};

use petgraph::algo::{tarjan_scc, toposort};
use petgraph::graph::{DiGraph, NodeIndex};

use super::diff::{Decided, SwitchedRecord};
use super::id::{CertPart, DnsWait, GateId, GroupPart, LbPart, ListenerPart, TgPart};
use super::{
    CertRef, Change, DnsStep, Gate, HealthStep, LbRef, Node, NodeId, NodeKind, Op, Pace, Plan,
    Probe, SgRef, TgRef, Watch,
};
use crate::model::{Desired, Protocol, RuleKey, Source};

/// The graph could not be built: a bug in reconcile, never the user's fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    #[error("bug: the plan's ordering rules form a cycle through {}; please report this with the manifest", join(.nodes))]
    Cycle { nodes: Vec<NodeId> },
    #[error("bug: {node} refers to {missing}, which the plan does not hold; please report this with the manifest")]
    Dangling { node: NodeId, missing: NodeId },
}

fn join(ids: &[NodeId]) -> String {
    ids.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" → ")
}

/// What a change does to the paths to the site, which decides where the ordering rules
/// put it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Build,
    Dns(DnsStep),
    Removal,
    /// Changes no path to the site (tags, response headers): nothing to verify, nothing to
    /// wait for.
    Label,
    /// Removes what serves nothing to free its name for a build, which waits for it.
    Clear,
    /// Takes over a resource made by hand (tags it): before every other change.
    Adopt,
    /// Returns a setting to its resting value once the move is over (a health check's
    /// interval and thresholds after the faster transition): after every gate that counted
    /// on the transition, the switch's old answers and the direct path's removal.
    Rest,
}

impl Op {
    /// Where the ordering rules put this change.
    pub fn class(&self) -> Class {
        match self {
            Op::DeleteTargetGroup {
                frees_name: true, ..
            } => Class::Clear,
            Op::RevokeIngress { .. }
            | Op::DeregisterTargets { .. }
            | Op::DeleteListener { .. }
            | Op::DetachStandby { .. }
            | Op::DeleteTargetGroup { .. }
            | Op::DeleteLoadBalancer { .. }
            | Op::DeleteSecurityGroup { .. }
            | Op::DeleteCertificate { .. }
            | Op::ClearMarker { .. } => Class::Removal,
            Op::SetRecord { step, .. } => Class::Dns(*step),
            Op::SetTags { .. } | Op::SetListenerHeaders { .. } | Op::SetLbAttributes { .. } => {
                Class::Label
            }
            // Right before the delete it allows (an edge of `unprotect_before_delete`), so
            // a removal like it: the load balancer stays protected while it may serve.
            Op::Unprotect { .. } => Class::Removal,
            Op::Adopt { .. } => Class::Adopt,
            Op::ModifyHealthCheck {
                step: HealthStep::Rest,
                ..
            } => Class::Rest,
            Op::CreateSecurityGroup { .. }
            | Op::AuthorizeIngress { .. }
            | Op::UpdateRuleDescriptions { .. }
            | Op::CreateTargetGroup { .. }
            | Op::ModifyHealthCheck { .. }
            | Op::RegisterTargets { .. }
            | Op::CreateLoadBalancer { .. }
            | Op::SetSubnets { .. }
            | Op::SetSecurityGroups { .. }
            | Op::CreateListener { .. }
            | Op::AttachStandby { .. }
            | Op::ModifyListener { .. }
            | Op::RequestCertificate { .. }
            | Op::WriteValidation { .. } => Class::Build,
        }
    }

    /// The nodes this change refers to by reference (what this plan creates): they must be
    /// done before it runs.
    pub fn references(&self) -> Vec<NodeId> {
        let sg = |g: &SgRef| match g {
            SgRef::New(k) => Some(NodeId::group(k, GroupPart::Create)),
            SgRef::Id(_) => None,
        };
        let tg = |t: &TgRef| match t {
            TgRef::New { key, .. } => Some(NodeId::tg(key, TgPart::Create)),
            TgRef::Arn(_) => None,
        };
        let lb = |l: &LbRef| match l {
            LbRef::New(_) => Some(NodeId::Balancer(LbPart::Create)),
            LbRef::Arn(_) => None,
        };
        // A certificate being issued: the listener waits until ACM has issued it.
        let cert = |c: &CertRef| match c {
            CertRef::Issuing { key, .. } => {
                Some(NodeId::Gate(GateId::CertIssued { key: key.clone() }))
            }
            CertRef::Arn(_) => None,
        };
        let rule_sources = |rules: &[(crate::model::RuleKey, Option<String>)]| {
            rules
                .iter()
                .filter_map(|(k, _)| match &k.source {
                    Source::Key(key) => Some(NodeId::group(key, GroupPart::Create)),
                    Source::Cidr(_) | Source::Group(_) => None,
                })
                .collect::<Vec<_>>()
        };
        match self {
            Op::AuthorizeIngress { group, rules } | Op::UpdateRuleDescriptions { group, rules } => {
                let mut v = rule_sources(rules);
                v.extend(sg(group));
                v
            }
            Op::RevokeIngress { group, .. } => sg(group).into_iter().collect(),
            Op::CreateLoadBalancer {
                security_groups, ..
            } => security_groups.iter().filter_map(sg).collect(),
            Op::SetSecurityGroups { lb: l, groups } => {
                let mut v: Vec<NodeId> = groups.iter().filter_map(sg).collect();
                v.extend(lb(l));
                v
            }
            Op::SetSubnets { lb: l, .. } | Op::SetLbAttributes { lb: l, .. } => {
                lb(l).into_iter().collect()
            }
            Op::ModifyHealthCheck { tg: t, .. }
            | Op::RegisterTargets { tg: t, .. }
            | Op::DeregisterTargets { tg: t, .. } => tg(t).into_iter().collect(),
            Op::CreateListener {
                lb: l,
                serve,
                certificate,
                ..
            } => lb(l)
                .into_iter()
                .chain(serve.target_group().and_then(tg))
                .chain(certificate.as_ref().and_then(cert))
                .collect(),
            Op::ModifyListener {
                serve, certificate, ..
            } => serve
                .target_group()
                .and_then(tg)
                .into_iter()
                .chain(certificate.as_ref().and_then(cert))
                .collect(),
            Op::WriteValidation {
                cert: CertRef::Issuing { key, arn: None },
                ..
            } => vec![NodeId::Certificate {
                key: key.clone(),
                part: CertPart::Request,
            }],
            Op::WriteValidation { .. } | Op::RequestCertificate { .. } => vec![],
            Op::AttachStandby { tg: t, .. } => tg(t).into_iter().collect(),
            Op::SetRecord { value, .. } => match value {
                super::RecordValue::LoadBalancer(l) => lb(l).into_iter().collect(),
                super::RecordValue::Values(_) | super::RecordValue::Alias { .. } => vec![],
            },
            Op::CreateTargetGroup {
                after_deleting: Some(name),
                ..
            } => vec![NodeId::TargetGroupDelete { name: name.clone() }],
            Op::CreateSecurityGroup { .. }
            | Op::DeleteSecurityGroup { .. }
            | Op::CreateTargetGroup { .. }
            | Op::SetTags { .. }
            | Op::Adopt { .. }
            | Op::DeleteTargetGroup { .. }
            | Op::DeleteLoadBalancer { .. }
            | Op::DeleteListener { .. }
            | Op::DetachStandby { .. }
            | Op::SetListenerHeaders { .. }
            | Op::Unprotect { .. }
            | Op::DeleteCertificate { .. }
            | Op::ClearMarker { .. } => vec![],
        }
    }

    /// The target group a listener change forwards to.
    fn forwards_to(&self) -> Option<&TgRef> {
        match self {
            Op::CreateListener { serve, .. } | Op::ModifyListener { serve, .. } => {
                serve.target_group()
            }
            Op::AttachStandby { tg, .. } => Some(tg),
            Op::CreateSecurityGroup { .. }
            | Op::AuthorizeIngress { .. }
            | Op::UpdateRuleDescriptions { .. }
            | Op::RevokeIngress { .. }
            | Op::DeleteSecurityGroup { .. }
            | Op::CreateTargetGroup { .. }
            | Op::ModifyHealthCheck { .. }
            | Op::SetTags { .. }
            | Op::Adopt { .. }
            | Op::RegisterTargets { .. }
            | Op::DeregisterTargets { .. }
            | Op::DeleteTargetGroup { .. }
            | Op::CreateLoadBalancer { .. }
            | Op::SetSubnets { .. }
            | Op::SetSecurityGroups { .. }
            | Op::DeleteLoadBalancer { .. }
            | Op::RequestCertificate { .. }
            | Op::DeleteCertificate { .. }
            | Op::WriteValidation { .. }
            | Op::SetLbAttributes { .. }
            | Op::Unprotect { .. }
            | Op::DetachStandby { .. }
            | Op::SetListenerHeaders { .. }
            | Op::DeleteListener { .. }
            | Op::SetRecord { .. }
            | Op::ClearMarker { .. } => None,
        }
    }
}

struct Builder {
    nodes: Vec<(NodeId, NodeKind)>,
    edges: BTreeSet<(NodeId, NodeId)>,
}

impl Builder {
    fn gate(&mut self, id: NodeId, gate: Gate) {
        self.nodes.push((id, NodeKind::Gate(gate)));
    }

    fn edge(&mut self, from: &NodeId, to: &NodeId) {
        if from != to {
            self.edges.insert((from.clone(), to.clone()));
        }
    }

    /// An edge from `from` when the plan holds it (an optional part: a target group whose
    /// health check needs no change has no `health` node).
    fn edge_if(&mut self, from: &NodeId, to: &NodeId) {
        if self.has(from) {
            self.edge(from, to);
        }
    }

    fn has(&self, id: &NodeId) -> bool {
        self.nodes.iter().any(|(n, _)| n == id)
    }

    fn ids_where(&self, f: impl Fn(&NodeKind) -> bool) -> Vec<NodeId> {
        self.nodes
            .iter()
            .filter(|(_, k)| f(k))
            .map(|(id, _)| id.clone())
            .collect()
    }

    fn ops_where(&self, f: impl Fn(&Op) -> bool) -> Vec<NodeId> {
        self.ids_where(|k| op_of(k).is_some_and(&f))
    }

    fn class_is(&self, class: Class) -> Vec<NodeId> {
        self.ops_where(|op| op.class() == class)
    }
}

fn op_of(k: &NodeKind) -> Option<&Op> {
    match k {
        NodeKind::Change(Change { op, .. }) => Some(op),
        NodeKind::Gate(_) => None,
    }
}

/// Builds the plan graph from the diff's decisions: the changes, then each ordering rule
/// in turn (each one small function over typed nodes), then the order.
pub fn build(desired: &Desired, mut decided: Decided) -> Result<Plan, GraphError> {
    let mut b = Builder {
        nodes: std::mem::take(&mut decided.changes)
            .into_iter()
            .map(|(id, c)| (id, NodeKind::Change(c)))
            .collect(),
        edges: BTreeSet::new(),
    };
    certificate_gates(&mut b, &decided);
    references(&mut b, !decided.blockers.is_empty())?;
    adopt_first(&mut b);
    rules_first(&mut b);
    headers_after_protocol(&mut b);
    unprotect_before_delete(&mut b);
    let verify = verification(&mut b, desired, &decided);
    let old_answers = dns_choreography(&mut b, desired, &decided, &verify);
    add_before_remove(&mut b, &verify, &old_answers);
    let mut plan = order(desired, b)?;
    plan.blockers = decided.blockers;
    plan.warnings = decided.warnings;
    Ok(plan)
}

/// A certificate ACM is to issue during the run: a gate waits for it, after its request and
/// its validation records (the listeners that use it wait for the gate, by reference).
fn certificate_gates(b: &mut Builder, decided: &Decided) {
    for (key, cert) in &decided.issuing {
        let gate = NodeId::Gate(GateId::CertIssued { key: key.clone() });
        b.gate(
            gate.clone(),
            Gate::CertIssued {
                key: key.clone(),
                cert: cert.clone(),
            },
        );
        for part in [CertPart::Request, CertPart::Validation] {
            let node = NodeId::Certificate {
                key: key.clone(),
                part,
            };
            b.edge_if(&node, &gate);
        }
    }
}

/// Rule 1: a node needs what it names. A reference to a node the plan does not hold is a
/// bug, unless the plan is blocked: a blocker (a name taken by a resource the stack does
/// not own) keeps the diff from creating what later changes name, and such a plan is shown,
/// never carried out.
fn references(b: &mut Builder, blocked: bool) -> Result<(), GraphError> {
    let refs: Vec<(NodeId, Vec<NodeId>)> = b
        .nodes
        .iter()
        .filter_map(|(id, k)| Some((id.clone(), op_of(k)?.references())))
        .collect();
    for (id, deps) in refs {
        for dep in deps {
            if !b.has(&dep) {
                if blocked {
                    continue;
                }
                return Err(GraphError::Dangling {
                    node: id,
                    missing: dep,
                });
            }
            b.edge(&dep, &id);
        }
    }
    Ok(())
}

/// What the manifest adopts becomes the stack's before anything is changed: every other
/// change waits for every adoption (the stack may touch only what carries its tag, and a
/// change to a resource made by hand before its tag is on would be a change to something it
/// does not own).
fn adopt_first(b: &mut Builder) {
    let adoptions = b.class_is(Class::Adopt);
    let others = b.ops_where(|op| op.class() != Class::Adopt);
    for a in &adoptions {
        for o in &others {
            b.edge(a, o);
        }
    }
}

/// Rules are added before what needs them changes in place: a load balancer that serves
/// moves to other groups only once its new groups' own rules are in (or it would stop
/// answering on 80/443) and the backend's rules admitting them (or its targets would stop
/// answering it); a health check moves to another port only once the backend admits the
/// load balancer there (or every target turns unhealthy).
fn rules_first(b: &mut Builder) {
    let swaps = b.ops_where(|op| {
        matches!(
            op,
            Op::SetSecurityGroups { .. } | Op::ModifyHealthCheck { .. }
        )
    });
    let rules_added = b.ops_where(|op| matches!(op, Op::AuthorizeIngress { .. }));
    for swap in &swaps {
        for rule in &rules_added {
            b.edge(rule, swap);
        }
    }
}

/// A listener's headers are set once its protocol is the manifest's (HSTS belongs on an
/// HTTPS listener), and before the load balancer's tag of the listeners whose headers the
/// stack manages shrinks (were it to shrink first, a run that stopped in between would no
/// longer read, nor remove, a header left behind).
fn headers_after_protocol(b: &mut Builder) {
    let headers: Vec<u16> = b
        .nodes
        .iter()
        .filter_map(|(id, _)| {
            let NodeId::Listener {
                port,
                part: ListenerPart::Headers,
            } = id
            else {
                return None;
            };
            Some(*port)
        })
        .collect();
    for port in headers {
        let update = NodeId::Listener {
            port,
            part: ListenerPart::Update,
        };
        let set = NodeId::Listener {
            port,
            part: ListenerPart::Headers,
        };
        b.edge_if(&update, &set);
        let tags = NodeId::Balancer(LbPart::Tags);
        if b.has(&tags) {
            b.edge(&set, &tags);
        }
    }
}

/// A protected load balancer's protection goes just before it does.
fn unprotect_before_delete(b: &mut Builder) {
    let ids: Vec<String> = b
        .nodes
        .iter()
        .filter_map(|(id, _)| {
            let NodeId::BalancerUnprotect { id } = id else {
                return None;
            };
            Some(id.clone())
        })
        .collect();
    for id in ids {
        b.edge(
            &NodeId::BalancerUnprotect { id: id.clone() },
            &NodeId::BalancerDelete { id },
        );
    }
}

/// Rule 2: verification gates, only when something is built or switched: the load balancer
/// active, then each serving target group healthy once its targets, health check,
/// listeners and rules are in place. Returns the gates.
fn verification(b: &mut Builder, desired: &Desired, decided: &Decided) -> Vec<NodeId> {
    let mut verify: Vec<NodeId> = Vec::new();
    if b.class_is(Class::Build).is_empty() && b.class_is(Class::Dns(DnsStep::Switch)).is_empty() {
        return verify;
    }
    let lb_gate = NodeId::Gate(GateId::LbActive);
    if let Some(lb) = &decided.lb {
        if matches!(lb, LbRef::New(_)) || decided.lb_not_active {
            b.gate(lb_gate.clone(), Gate::LbActive { lb: lb.clone() });
            for part in [LbPart::Create, LbPart::Subnets, LbPart::SecurityGroups] {
                b.edge_if(&NodeId::Balancer(part), &lb_gate);
            }
            verify.push(lb_gate.clone());
        }
    }
    let rules = b.ops_where(|op| {
        matches!(
            op,
            Op::AuthorizeIngress { .. } | Op::UpdateRuleDescriptions { .. }
        )
    });
    for (key, tg) in &decided.traffic {
        let gate = NodeId::healthy(key);
        let pace = decided
            .pace
            .get(key)
            .copied()
            .or_else(|| desired.target_groups.get(key).map(|t| Pace::of(&t.health)));
        let Some(pace) = pace else { continue };
        b.gate(
            gate.clone(),
            Gate::TargetsHealthy {
                key: key.clone(),
                tg: tg.clone(),
                pace,
            },
        );
        let listeners = b.ops_where(|op| op.forwards_to() == Some(tg));
        // A listener change that moves traffic to a group the load balancer health-checks
        // (attached on standby first, by this plan or an earlier run) waits for the gate; any
        // other listener change is what lets the group be checked: the gate waits for it.
        let moving = b.ops_where(
            |op| matches!(op, Op::ModifyListener { moves_traffic: true, serve, .. } if serve.target_group() == Some(tg)),
        );
        let (moves, listeners): (Vec<NodeId>, Vec<NodeId>) =
            listeners.into_iter().partition(|id| moving.contains(id));
        for m in &moves {
            b.edge(&gate, m);
        }
        for part in [
            TgPart::Create,
            TgPart::TargetsAdd,
            TgPart::Health,
            TgPart::HealthTransition,
        ] {
            b.edge_if(&NodeId::tg(key, part), &gate);
        }
        for dep in listeners.iter().chain(&rules) {
            b.edge(dep, &gate);
        }
        if verify.contains(&lb_gate) {
            b.edge(&lb_gate, &gate);
        }
        verify.push(gate);
    }
    // On the way back, the rules that open the direct path are read back before a record
    // moves to the instances.
    if decided.switched.iter().any(|r| r.to_values) {
        let opening: Vec<(NodeId, SgRef, Vec<RuleKey>)> = b
            .nodes
            .iter()
            .filter_map(|(id, k)| {
                let Op::AuthorizeIngress { group, rules } = op_of(k)? else {
                    return None;
                };
                let public: Vec<RuleKey> = rules
                    .iter()
                    .map(|(r, _)| r.clone())
                    .filter(RuleKey::is_from_internet)
                    .collect();
                (!public.is_empty()).then(|| (id.clone(), group.clone(), public))
            })
            .collect();
        for (id, group, rules) in opening {
            let NodeId::Group { key, .. } = &id else {
                continue;
            };
            let gate = NodeId::Gate(GateId::Rules { key: key.clone() });
            b.gate(
                gate.clone(),
                Gate::RulesInPlace {
                    key: key.clone(),
                    group,
                    rules,
                },
            );
            b.edge(&id, &gate);
            verify.push(gate);
        }
    }
    verify
}

/// Rule 3: the DNS choreography, per record: lower the TTL, wait for Route53, wait out the old
/// TTL, switch once everything is built and verified, wait for Route53, wait out the
/// answers given before the switch. Returns the last wait of each record.
fn dns_choreography(
    b: &mut Builder,
    desired: &Desired,
    decided: &Decided,
    verify: &[NodeId],
) -> Vec<NodeId> {
    let builds = b.class_is(Class::Build);
    let mut old_answers: Vec<NodeId> = Vec::new();
    for rec in &decided.switched {
        let name = &rec.name;
        let of_record = |step: DnsStep| move |op: &Op| matches!(op, Op::SetRecord { name: n, step: s, .. } if n == name && *s == step);
        let mark_of = |b: &Builder, id: &NodeId| {
            b.nodes.iter().find(|(n, _)| n == id).and_then(|(_, k)| {
                let Some(Op::SetRecord { mark, .. }) = op_of(k) else {
                    return None;
                };
                mark.clone()
            })
        };
        let lowers = b.ops_where(of_record(DnsStep::LowerTtl));
        let switch = b.ops_where(of_record(DnsStep::Switch));
        let mut before_switch: Vec<NodeId> = builds.clone();
        before_switch.extend(verify.iter().cloned());
        if let Some((seconds, since)) = rec.old_ttl_wait {
            let wait = NodeId::dns_gate(name, DnsWait::OldTtl);
            b.gate(
                wait.clone(),
                Gate::WaitTtl {
                    record: name.clone(),
                    after: DnsStep::LowerTtl,
                    seconds,
                    why: "answers given before the TTL was lowered".into(),
                    since,
                },
            );
            if !lowers.is_empty() {
                let lowered = NodeId::dns_gate(name, DnsWait::Lowered);
                let mark = lowers.first().and_then(|l| mark_of(b, l));
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
        // The article's test before the switch: the site asked through the load balancer
        // by the record's name, once everything else before the switch is done.
        let probe = probe_of(desired, decided, rec);
        if let Some(p) = &probe {
            let id = NodeId::dns_gate(name, DnsWait::Probe);
            b.gate(id.clone(), Gate::Probe(p.clone()));
            for dep in &before_switch {
                b.edge(dep, &id);
            }
            before_switch.push(id);
        }
        // A staged switch: each share written, confirmed in sync, held and watched, then
        // the next; the last step (the switch proper) waits for the last bake.
        if let Some(staged) = &rec.cutover {
            let weighs = b.ops_where(|op| matches!(op, Op::SetRecord { name: n, step: DnsStep::Weigh(_), .. } if n == name));
            let share_of = |b: &Builder, id: &NodeId| {
                b.nodes.iter().find(|(n, _)| n == id).and_then(|(_, k)| {
                    let Some(Op::SetRecord {
                        step: DnsStep::Weigh(p),
                        ..
                    }) = op_of(k)
                    else {
                        return None;
                    };
                    Some(*p)
                })
            };
            let mut prev = before_switch.clone();
            for (share, since, revert) in &staged.bakes {
                let weigh = weighs
                    .iter()
                    .find(|w| share_of(b, w) == Some(*share))
                    .cloned();
                if let Some(w) = &weigh {
                    for dep in &prev {
                        b.edge(dep, w);
                    }
                    let synced = NodeId::dns_gate(name, DnsWait::Weighed(*share));
                    let mark = mark_of(b, w);
                    b.gate(
                        synced.clone(),
                        Gate::DnsInSync {
                            record: name.clone(),
                            after: DnsStep::Weigh(*share),
                            mark,
                        },
                    );
                    b.edge(w, &synced);
                    prev = vec![synced];
                }
                let Some(lb) = decided.lb.clone() else {
                    continue;
                };
                let bake = NodeId::dns_gate(name, DnsWait::Bake(*share));
                b.gate(
                    bake.clone(),
                    Gate::Bake {
                        record: name.clone(),
                        percent: *share,
                        seconds: staged.seconds,
                        since: *since,
                        watch: Watch {
                            lb,
                            target_groups: decided.traffic.clone(),
                            max_5xx_basis_points: staged.max_5xx_basis_points,
                            max_unhealthy: staged.max_unhealthy,
                            probe: probe.clone(),
                        },
                        revert: Box::new(revert.clone()),
                    },
                );
                for dep in &prev {
                    b.edge(dep, &bake);
                }
                prev = vec![bake];
            }
            before_switch = prev;
        }
        let mut after_switch: Option<NodeId> = None;
        for s in &switch {
            for dep in &before_switch {
                b.edge(dep, s);
            }
            let synced = NodeId::dns_gate(name, DnsWait::Switched);
            let mark = mark_of(b, s);
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
                let wait = NodeId::dns_gate(name, DnsWait::OldAnswers);
                b.gate(
                    wait.clone(),
                    Gate::WaitTtl {
                        record: name.clone(),
                        after: DnsStep::Switch,
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
    old_answers
}

/// The probe of a record that switches to the load balancer, when the manifest asks for
/// one: over HTTPS when the load balancer has an HTTPS listener (its HTTP one must then
/// redirect), else over HTTP.
fn probe_of(desired: &Desired, decided: &Decided, rec: &SwitchedRecord) -> Option<Probe> {
    if rec.to_values {
        return None;
    }
    let probe = desired
        .dns
        .as_ref()?
        .records
        .iter()
        .find(|r| r.name == rec.name)?
        .probe
        .clone()?;
    let lb = decided.lb.clone()?;
    let listeners = &desired.load_balancer.as_ref()?.listeners;
    let port_of = |protocol: Protocol| {
        listeners
            .values()
            .filter(|l| l.protocol == protocol)
            .map(|l| l.port)
            .min()
    };
    Some(Probe {
        record: rec.name.clone(),
        lb,
        path: probe.path,
        expect: probe.expect,
        https: port_of(Protocol::Https),
        http: port_of(Protocol::Http),
    })
}

/// Rule 4: add before remove: every removal waits for every addition, gate and switch; the
/// backend's direct path (and a load balancer that goes) for the old answers to expire;
/// removals in reverse dependency order (listeners and load balancers before the target
/// groups and security groups they use); the TTL restored and the wait marker cleared last.
fn add_before_remove(b: &mut Builder, verify: &[NodeId], old_answers: &[NodeId]) {
    let builds = b.class_is(Class::Build);
    let removals = b.class_is(Class::Removal);
    let direct_path = b.ops_where(|op| {
        matches!(
            op,
            Op::RevokeIngress {
                direct_path: true,
                ..
            } | Op::DeleteLoadBalancer { .. }
        )
    });
    let listener_deletes =
        b.ops_where(|op| matches!(op, Op::DeleteListener { .. } | Op::DetachStandby { .. }));
    let lb_deletes = b.ops_where(|op| matches!(op, Op::DeleteLoadBalancer { .. }));
    let revokes = b.ops_where(|op| matches!(op, Op::RevokeIngress { .. }));
    let switch_nodes = b.class_is(Class::Dns(DnsStep::Switch));
    for r in &removals {
        for dep in builds.iter().chain(verify).chain(&switch_nodes) {
            b.edge(dep, r);
        }
    }
    for r in &direct_path {
        for dep in old_answers {
            b.edge(dep, r);
        }
    }
    let tg_deletes = b.ops_where(|op| matches!(op, Op::DeleteTargetGroup { .. }));
    let sg_deletes = b.ops_where(|op| matches!(op, Op::DeleteSecurityGroup { .. }));
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
    // ACM refuses to delete a certificate a listener still uses.
    let cert_deletes = b.ops_where(|op| matches!(op, Op::DeleteCertificate { .. }));
    for c in &cert_deletes {
        for dep in listener_deletes.iter().chain(&lb_deletes) {
            b.edge(dep, c);
        }
    }
    // Resting values come back once nothing of the move needs the faster ones: after every
    // build, gate and switch, the old answers and the direct path.
    for r in &b.class_is(Class::Rest) {
        for dep in builds
            .iter()
            .chain(verify)
            .chain(&switch_nodes)
            .chain(old_answers)
            .chain(&direct_path)
        {
            b.edge(dep, r);
        }
    }
    let restores = b.class_is(Class::Dns(DnsStep::RestoreTtl));
    for r in &restores {
        for dep in old_answers.iter().chain(&direct_path) {
            b.edge(dep, r);
        }
    }
    // A wait marker goes last, once everything its record's choreography gates is done.
    let markers = b.ops_where(|op| matches!(op, Op::ClearMarker { .. }));
    let dns_nodes = b.ids_where(|k| op_of(k).is_some_and(|op| matches!(op.class(), Class::Dns(_))));
    for m in &markers {
        for dep in old_answers.iter().chain(&direct_path).chain(&dns_nodes) {
            b.edge(dep, m);
        }
    }
}

/// Checks for cycles, computes each node's step and returns the plan in run order.
fn order(desired: &Desired, b: Builder) -> Result<Plan, GraphError> {
    let mut g: DiGraph<NodeId, ()> = DiGraph::new();
    let index: BTreeMap<NodeId, NodeIndex> = b
        .nodes
        .iter()
        .map(|(id, _)| (id.clone(), g.add_node(id.clone())))
        .collect();
    for (from, to) in &b.edges {
        if let (Some(f), Some(t)) = (index.get(from), index.get(to)) {
            g.add_edge(*f, *t, ());
        }
    }
    let topo = toposort(&g, None).map_err(|_| GraphError::Cycle {
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
    // Ordered by the ids' text, so that what people and golden files read is stable.
    nodes.sort_by_cached_key(|n| (n.step, n.id.to_string()));
    let mut edges: Vec<(NodeId, NodeId)> = b.edges.into_iter().collect();
    edges.sort_by_cached_key(|(f, t)| (f.to_string(), t.to_string()));
    Ok(Plan {
        stack: desired.stack.clone(),
        nodes,
        edges,
        blockers: vec![],
        warnings: vec![],
        checked: None,
    })
}
