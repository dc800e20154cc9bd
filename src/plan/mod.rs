//! The plan: typed changes and gates in a dependency graph, decided purely from the
//! desired and observed models (no AWS call, no clock). The executor carries out what is
//! written here and decides nothing; the renderers show it.
//!
//! - [`diff`] decides the changes (what, why, with attribute-level before/after).
//! - [`graph`] adds the gates and the ordering edges, checks for cycles and orders nodes.

mod balancer;
pub mod carry;
pub mod check;
pub mod diff;
pub mod dns;
pub mod graph;
mod groups;
pub mod id;
mod targets;
pub mod wait;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use id::NodeId;

use crate::model::{
    Desired, Headers, HealthCheck, LbAttr, Observed, ObservedRecord, Protocol, RecordKind,
    ResponseHeader, RuleKey, Tags, ValidationRecord,
};

/// What a change does to its resource. Reasons only explain; they decide nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Update,
    Replace,
    Delete,
    /// A resource made by hand, taken over: tagged with the stack, then owned.
    Adopt,
}

impl Action {
    pub fn symbol(self) -> &'static str {
        match self {
            Action::Create => "+",
            Action::Update => "~",
            Action::Replace => "-/+",
            Action::Delete => "-",
            Action::Adopt => "⇐",
        }
    }
}

/// One attribute's value before and after (JSON values, absent when none).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttrDiff {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<serde_json::Value>,
}

/// The resource a change is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resource {
    /// `security_group`, `security_group_rules`, `target_group`, `targets`,
    /// `load_balancer`, `listener`, `dns_record`.
    pub kind: String,
    /// The AWS name or id, or the manifest key when it has none yet.
    pub name: String,
    /// Whether the stack owns the resource (false for an `existing` group's rules and DNS
    /// records, the two declared exceptions).
    pub owned: bool,
}

/// A reference to a security group: by id, or by manifest key for one created by this plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SgRef {
    Id(String),
    New(String),
}

/// A reference to a target group: by ARN, or by key and name for one created by this plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TgRef {
    Arn(String),
    New { key: String, name: String },
}

/// A reference to a load balancer: by ARN, or by name for one created by this plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LbRef {
    Arn(String),
    New(String),
}

/// The certificate a listener change uses: one that is ISSUED, by ARN, or one ACM issues
/// during the run (requested by this plan, `arn: None`, or earlier and still awaiting its
/// validation): the change then waits for the `gate.cert.<key>.issued` gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CertRef {
    Arn(String),
    Issuing { key: String, arn: Option<String> },
}

impl CertRef {
    /// Its ARN when the plan knows it.
    pub fn arn(&self) -> Option<&str> {
        match self {
            CertRef::Arn(a) => Some(a),
            CertRef::Issuing { arn, .. } => arn.as_deref(),
        }
    }
}

/// What a DNS record is set to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordValue {
    /// The load balancer: its DNS name for a CNAME, an alias for A/AAAA.
    LoadBalancer(LbRef),
    /// Literal values (kept as they are while only the TTL changes).
    Values(Vec<String>),
    /// An alias target kept as it is while only the TTL changes.
    Alias { dns_name: String, zone_id: String },
}

impl RecordValue {
    /// The record's values and alias target. `lb` gives a load balancer's DNS name and
    /// hosted zone id; a CNAME takes the name as its value, an A/AAAA record is an alias.
    pub fn contents<E>(
        &self,
        kind: &RecordKind,
        lb: impl FnOnce(&LbRef) -> Result<(String, String), E>,
    ) -> Result<(Vec<String>, Option<crate::model::AliasTarget>), E> {
        let alias = |dns_name: String, zone_id: String| {
            Some(crate::model::AliasTarget { dns_name, zone_id })
        };
        Ok(match self {
            RecordValue::Values(v) => (v.clone(), None),
            RecordValue::Alias { dns_name, zone_id } => {
                (vec![], alias(dns_name.clone(), zone_id.clone()))
            }
            RecordValue::LoadBalancer(l) => {
                let (dns_name, zone_id) = lb(l)?;
                if *kind == RecordKind::Cname {
                    (vec![dns_name], None)
                } else {
                    (vec![], alias(dns_name, zone_id))
                }
            }
        })
    }
}

/// The step of the DNS choreography a record change belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DnsStep {
    /// Same value, shorter TTL, so that the switch propagates quickly.
    LowerTtl,
    /// The new value, at the transition TTL.
    Switch,
    /// The TTL at rest, once the switch has propagated.
    RestoreTtl,
    /// A TTL-only correction (the value is already right).
    SetTtl,
    /// A step of a staged cutover: this share of answers (percent) for the new value.
    Weigh(u8),
}

/// What one change of a staged cutover writes: the old value and the new one as two
/// weighted records of the record's name and type (Route53 refuses a weighted record beside
/// a simple one of that name and type, so each change is one atomic batch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CutoverStep {
    /// The value answered before the cutover, as it stands when the cutover starts (its
    /// TTL lowered), without weight.
    pub old: ObservedRecord,
    /// The new value's share before this change; none while the simple old record stands.
    pub from: Option<u8>,
    /// Its share after it; 100: one simple record of the new value again.
    pub to: u8,
}

/// The article's test of the new path: `https://<record><path>` asked through the load
/// balancer (TLS checked against the name) answers one of `expect`, and
/// `http://<record><path>` redirects to https.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    pub record: String,
    pub lb: LbRef,
    pub path: String,
    pub expect: Vec<u16>,
    /// The HTTPS listener's port, when the load balancer has one.
    pub https: Option<u16>,
    /// The HTTP listener's port, when it has one: with `https` it must redirect there,
    /// without it it answers the page.
    pub http: Option<u16>,
}

/// What a bake watches and the thresholds it holds the new path to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watch {
    /// The load balancer whose CloudWatch metrics are read.
    pub lb: LbRef,
    /// The target groups it forwards to: their targets' health and 5xx answers.
    pub target_groups: Vec<(String, TgRef)>,
    /// The highest share of 5xx answers among requests, in hundredths of a percent.
    pub max_5xx_basis_points: u32,
    /// The most unhealthy targets allowed.
    pub max_unhealthy: u32,
    /// The record's probe, asked again at the end of the bake, before the next step: a
    /// wrong answer is a breach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<Probe>,
}

/// The start of a DNS wait, recorded in the TXT record [`names::marker_record`] next to
/// the managed record, in the same change batch as the change that starts the wait.
///
/// [`names::marker_record`]: crate::names::marker_record
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    /// The marker record's name.
    pub record: String,
    pub stack: String,
    /// `lowered` or `switched`.
    pub step: String,
    /// How long answers given before this change may be cached.
    pub ttl: u32,
}

/// A resource whose tags a change sets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Tagged {
    LoadBalancer { arn: String },
    TargetGroup { arn: String },
    SecurityGroup { id: String },
}

/// The executor's instruction for one change, with every parameter decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    CreateSecurityGroup {
        key: String,
        name: String,
        description: String,
        vpc: String,
        tags: Tags,
    },
    AuthorizeIngress {
        group: SgRef,
        rules: Vec<(RuleKey, Option<String>)>,
    },
    UpdateRuleDescriptions {
        group: SgRef,
        rules: Vec<(RuleKey, Option<String>)>,
    },
    RevokeIngress {
        group: SgRef,
        rules: Vec<RuleKey>,
        /// These rules may carry answers given before DNS moved (the backend's direct path,
        /// or, on the way back, the backend's rules admitting the load balancer): they go
        /// only once those answers have expired.
        direct_path: bool,
    },
    DeleteSecurityGroup {
        id: String,
        name: String,
    },
    CreateTargetGroup {
        key: String,
        name: String,
        port: u16,
        protocol: Protocol,
        vpc: String,
        health: HealthCheck,
        tags: Tags,
        /// A group of the stack that serves nothing and holds the name, deleted first (see
        /// `DeleteTargetGroup::frees_name`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after_deleting: Option<String>,
    },
    ModifyHealthCheck {
        tg: TgRef,
        health: HealthCheck,
        /// Which values these are in the move: the manifest's, set in place; the
        /// transition's, before a wait; or the resting ones again, once the move is over.
        #[serde(default, skip_serializing_if = "HealthStep::is_in_place")]
        step: HealthStep,
    },
    /// Sets the manifest's tags on a resource the stack owns (tags it does not name stay).
    SetTags {
        resource: Tagged,
        tags: Tags,
    },
    /// Takes over a resource made by hand that the manifest names by `adopt`: sets the
    /// manifest's tags (the stack's among them), from when on the stack owns it. The plan
    /// runs every adoption before any other change.
    Adopt {
        resource: Tagged,
        tags: Tags,
    },
    RegisterTargets {
        tg: TgRef,
        key: String,
        ids: Vec<String>,
    },
    DeregisterTargets {
        tg: TgRef,
        key: String,
        ids: Vec<String>,
    },
    DeleteTargetGroup {
        arn: String,
        name: String,
        /// The group serves nothing and is deleted to free its name for a group the plan
        /// creates: first, not after everything is verified like other removals.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        frees_name: bool,
    },
    CreateLoadBalancer {
        name: String,
        scheme: String,
        subnets: Vec<String>,
        security_groups: Vec<SgRef>,
        tags: Tags,
    },
    SetSubnets {
        lb: LbRef,
        subnets: Vec<String>,
    },
    SetSecurityGroups {
        lb: LbRef,
        groups: Vec<SgRef>,
    },
    DeleteLoadBalancer {
        arn: String,
        name: String,
    },
    /// Requests a DNS-validated certificate for `names` (the first its domain); `token`
    /// makes a repeated request within the hour return the same certificate.
    RequestCertificate {
        key: String,
        names: Vec<String>,
        token: String,
        /// The stack's tags and [`crate::names::CERTIFICATE_TAG`]: the request is the
        /// stack's own, deleted once the stack no longer uses it.
        #[serde(default)]
        tags: Tags,
    },
    /// Deletes a certificate the stack requested (for `certificates.<key>`) and uses no
    /// more, once no listener of the stack uses it.
    DeleteCertificate {
        arn: String,
        key: String,
    },
    /// UPSERTs a certificate's DNS validation records into the zone (the records known
    /// now, or, for one requested by this run, those ACM gives once it has made them).
    /// Never deleted after: ACM renews with them.
    WriteValidation {
        key: String,
        zone_id: String,
        cert: CertRef,
        records: Vec<ValidationRecord>,
    },
    /// Sets attributes of a load balancer, each to its value.
    SetLbAttributes {
        lb: LbRef,
        attributes: BTreeMap<LbAttr, String>,
    },
    /// Turns a load balancer's deletion protection off, right before it is deleted.
    Unprotect {
        arn: String,
        name: String,
    },
    CreateListener {
        lb: LbRef,
        port: u16,
        protocol: Protocol,
        certificate: Option<CertRef>,
        /// The TLS policy of an HTTPS listener.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ssl_policy: Option<String>,
        serve: Serve,
        /// Response headers set once it exists (its attributes).
        #[serde(default, skip_serializing_if = "Headers::is_empty")]
        headers: Headers,
    },
    /// Attaches a target group to a listener's default action with weight zero, beside the
    /// groups serving, so that the load balancer health-checks it before it takes traffic.
    AttachStandby {
        arn: String,
        port: u16,
        /// The listener's protocol and certificate now, kept as they are.
        protocol: Protocol,
        certificate: Option<String>,
        /// The groups serving now, kept at their weight.
        serving: Vec<String>,
        tg: TgRef,
    },
    ModifyListener {
        arn: String,
        port: u16,
        protocol: Protocol,
        certificate: Option<CertRef>,
        /// The TLS policy of an HTTPS listener.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ssl_policy: Option<String>,
        serve: Serve,
        /// Moves the listener's traffic to another group, one the load balancer already
        /// health-checks (attached by an earlier run, or by the plan first): the move waits
        /// until that group is verified healthy.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        moves_traffic: bool,
    },
    /// Sets a listener's default action to the groups serving, dropping the groups on
    /// standby (once nothing waits for them to be health-checked there).
    DetachStandby {
        arn: String,
        port: u16,
        protocol: Protocol,
        certificate: Option<String>,
        serving: Vec<String>,
    },
    /// Sets response-header attributes of a listener, each to its value (the unset value
    /// removes a header).
    SetListenerHeaders {
        arn: String,
        port: u16,
        headers: BTreeMap<ResponseHeader, String>,
    },
    DeleteListener {
        arn: String,
        port: u16,
    },
    SetRecord {
        zone_id: String,
        name: String,
        kind: RecordKind,
        ttl: Option<u32>,
        value: RecordValue,
        /// Records of other types at this name removed in the same atomic change batch
        /// (an A record giving way to a CNAME).
        replaces: Vec<ObservedRecord>,
        step: DnsStep,
        /// Records the start of the wait this change begins (lowering, switch).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mark: Option<Mark>,
        /// A step of a staged cutover: the weighted pair it writes, or (at 100) the pair
        /// it folds back into one simple record.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cutover: Option<CutoverStep>,
    },
    /// Removes a wait marker once its record's choreography is over.
    ClearMarker {
        zone_id: String,
        record: ObservedRecord,
    },
}

/// Which health check a `ModifyHealthCheck` sets, as the move sees it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthStep {
    /// The manifest's values, set in place (verified by the group's health gate).
    #[default]
    InPlace,
    /// `health_check.transition`: faster checks, before the plan waits on the group.
    Transition,
    /// The resting values again, among the plan's last changes: after the switch's old
    /// answers have expired and the direct path is closed.
    Rest,
}

impl HealthStep {
    fn is_in_place(&self) -> bool {
        *self == HealthStep::InPlace
    }
}

/// How often a group is checked and how many passing checks make a target healthy: what a
/// health gate's wait depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pace {
    pub interval_seconds: i32,
    pub healthy_threshold: i32,
}

impl Pace {
    pub fn of(h: &HealthCheck) -> Pace {
        Pace {
            interval_seconds: h.interval_seconds,
            healthy_threshold: h.healthy_threshold,
        }
    }

    /// The longest a target takes to turn healthy: `healthy_threshold` passing checks, one
    /// every interval (a newly registered one may need only one).
    pub fn seconds(&self) -> u32 {
        u32::try_from(self.interval_seconds.saturating_mul(self.healthy_threshold)).unwrap_or(0)
    }
}

/// What a listener answers with once a change has run: the traffic forwarded to a target
/// group, or a redirect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Serve {
    Forward(TgRef),
    Redirect(crate::model::Redirect),
}

impl Serve {
    /// The target group it forwards to.
    pub fn target_group(&self) -> Option<&TgRef> {
        match self {
            Serve::Forward(t) => Some(t),
            Serve::Redirect(_) => None,
        }
    }
}

/// One change to one resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub resource: Resource,
    pub action: Action,
    pub reason: String,
    pub attrs: Vec<AttrDiff>,
    pub op: Op,
}

/// A wait under a deadline, between changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "gate", rename_all = "snake_case")]
pub enum Gate {
    /// The load balancer reports `active`.
    LbActive { lb: LbRef },
    /// Every registered target of the group is healthy.
    TargetsHealthy {
        key: String,
        tg: TgRef,
        /// The health check's timing in force when the gate runs (the transition's when
        /// the plan sets one before it): the checker proves it is, in every order.
        pace: Pace,
    },
    /// The group's rules read back with these rules in it: the direct path is open (EC2's
    /// API is eventually consistent) before a record moves back to the instances.
    RulesInPlace {
        key: String,
        group: SgRef,
        rules: Vec<RuleKey>,
    },
    /// Route53 reports the record's change INSYNC; the wait marker it started, if any, is
    /// then confirmed with the time of sync.
    DnsInSync {
        record: String,
        after: DnsStep,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mark: Option<Mark>,
    },
    /// ACM reports the certificate ISSUED (its DNS validation done).
    CertIssued { key: String, cert: CertRef },
    /// The site answers through the load balancer, by the record's name, as the manifest
    /// expects; the record does not switch otherwise.
    Probe(Probe),
    /// A cutover step held for its bake time while the new path is watched (CloudWatch's
    /// 5xx and request counts of the load balancer and its target groups, and target
    /// health); a breach takes the record back to its old value in one change, waits out
    /// the new value's answers and fails the run.
    Bake {
        record: String,
        /// The new value's share held.
        percent: u8,
        seconds: u32,
        /// When the step was written (seconds since the epoch), if an earlier run did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<i64>,
        watch: Watch,
        /// The change taken on a breach: the weighted pair as it stands, folded back into
        /// the old simple record.
        revert: Box<Op>,
    },
    /// Clients may cache the record's previous answer this long.
    WaitTtl {
        record: String,
        /// The change whose previous answers are waited out (lowering or switch).
        after: DnsStep,
        seconds: u32,
        why: String,
        /// When the wait started (seconds since the epoch), if an earlier run recorded it;
        /// otherwise it starts when this run reaches it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<i64>,
    },
}

impl Gate {
    /// The expected wait in seconds, when known in advance.
    pub fn expected_seconds(&self) -> Option<u32> {
        match self {
            Gate::WaitTtl { seconds, .. } | Gate::Bake { seconds, .. } => Some(*seconds),
            Gate::TargetsHealthy { pace, .. } => Some(pace.seconds()),
            Gate::LbActive { .. }
            | Gate::RulesInPlace { .. }
            | Gate::DnsInSync { .. }
            | Gate::CertIssued { .. }
            | Gate::Probe(_) => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
// Plans hold tens of nodes; boxing the change would only add indirection.
#[allow(clippy::large_enum_variant)]
pub enum NodeKind {
    Change(Change),
    Gate(Gate),
}

/// A node of the plan graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Stable id; its text is e.g. `tg.app.create`, `gate.lb.active`.
    pub id: NodeId,
    /// Which step of the run it belongs to: one more than the latest of its dependencies.
    pub step: usize,
    #[serde(flatten)]
    pub kind: NodeKind,
}

/// Something that stops the plan: the tool will not act until a person resolves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blocker {
    /// The resource or manifest path concerned.
    pub subject: String,
    pub message: String,
    pub hint: String,
}

/// Something the plan does not stop for but a person should know before applying it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    /// The resource concerned.
    pub subject: String,
    pub message: String,
    pub hint: String,
    /// The stack is not as it should be though no change of the plan repairs it (a
    /// certificate that expires, fails its renewal or its validation): drift all the same,
    /// so `plan --detailed-exitcode` exits 2 on it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub drift: bool,
}

impl Plan {
    /// Does the plan change anything, or find drift that no change repairs?
    pub fn drifted(&self) -> bool {
        self.has_changes() || self.warnings.iter().any(|w| w.drift)
    }
}

/// The whole plan of one stack.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub stack: String,
    /// Nodes in the order they may run (a topological order, by step then id).
    pub nodes: Vec<Node>,
    /// `(from, to)`: `to` waits for `from`. Ids of `nodes`.
    pub edges: Vec<(NodeId, NodeId)>,
    /// Conflicts and missing prerequisites; a plan with blockers is not applied.
    pub blockers: Vec<Blocker>,
    /// What applying it affects beyond the stack (see [`neighbour_warnings`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<Warning>,
    /// The checker's verdict ([`check`]): every state the run can pass through keeps the
    /// guarantees. Absent when the plan is blocked (by the diff, unchecked; or by the
    /// checker, which found a state that does not keep them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked: Option<check::Checked>,
}

impl Plan {
    pub fn changes(&self) -> impl Iterator<Item = &Change> {
        self.nodes.iter().filter_map(|n| match &n.kind {
            NodeKind::Change(c) => Some(c),
            NodeKind::Gate(_) => None,
        })
    }

    pub fn has_changes(&self) -> bool {
        self.changes().next().is_some()
    }

    /// Count of changes by action.
    pub fn summary(&self) -> BTreeMap<Action, usize> {
        let mut counts = BTreeMap::new();
        for c in self.changes() {
            *counts.entry(c.action).or_insert(0) += 1;
        }
        counts
    }
}

/// Plans `desired` against `observed`. Pure and deterministic.
pub fn plan(desired: &Desired, observed: &Observed) -> Result<Plan, graph::GraphError> {
    let decided = diff::diff(desired, observed);
    let mut plan = graph::build(desired, decided)?;
    let neighbours = neighbour_warnings(observed, &plan);
    plan.warnings.extend(neighbours);
    let (blockers, warnings) = placement(desired, observed, &plan);
    plan.blockers.extend(blockers);
    plan.warnings.extend(warnings);
    // A plan that breaks a guarantee in some order is a bug in the planner: it is never
    // carried out, and says which state broke what. A blocked plan is not carried out
    // either, and may have holes where the diff stopped: it is shown, not proven.
    if !plan.blockers.is_empty() {
        return Ok(plan);
    }
    match check::check(desired, observed, &plan) {
        Ok(checked) => plan.checked = Some(checked),
        Err(check::Unproven::Broken(c)) => match check::model::end_serves(desired, observed, &plan.nodes) {
            // The end the manifest asks for does not serve: the manifest's doing.
            Err(why) => plan.blockers.push(Blocker {
                subject: "manifest".to_owned(),
                message: format!("the front door the manifest describes would not serve the site: {why}"),
                hint: "check that the backend's groups admit the load balancer's group on every target group's port and health-check port, and that every listener visitors use forwards to a group with targets; nothing will be changed".to_owned(),
            }),
            Ok(()) => plan.blockers.push(Blocker {
                subject: "plan".to_owned(),
                message: format!("the checker found a state of the run that breaks a guarantee: {c}"),
                hint: "this is a bug in reconcile, not in the manifest; nothing will be changed. Please report it with the manifest and `plan --json`".to_owned(),
            }),
        },
        Err(e @ check::Unproven::Bound { .. }) => plan.blockers.push(Blocker {
            subject: "plan".to_owned(),
            message: format!("the plan is not proven: {e}"),
            hint: "nothing will be changed; apply the change in smaller steps (a few target groups or listeners at a time), and please report it with the manifest and `plan --json`".to_owned(),
        }),
    }
    Ok(plan)
}

/// Where the plan puts the load balancer and what it sends traffic to, checked against what
/// the read found: a subnet that does not exist or lies in another VPC stops the plan
/// (`CreateLoadBalancer` would fail half-way); subnets sharing one availability zone, and
/// targets that do not exist or are not running, are warned about (AWS refuses the first
/// and never finds the others healthy; the apply would stop at that call or at the health
/// gate, before DNS moves).
pub fn placement(
    desired: &Desired,
    observed: &Observed,
    plan: &Plan,
) -> (Vec<Blocker>, Vec<Warning>) {
    let (mut blockers, mut warnings) = (Vec::new(), Vec::new());
    let region = desired.region.as_deref().unwrap_or("the stack's region");
    // A load balancer of the stack already in these subnets vouches for them (and the read
    // asks for subnets only otherwise).
    let placed_already = desired.load_balancer.as_ref().is_none_or(|dlb| {
        observed
            .load_balancers
            .iter()
            .any(|l| l.subnets == dlb.subnets)
    });
    let placed: Option<&Vec<String>> = plan
        .changes()
        .find_map(|c| {
            if let Op::CreateLoadBalancer { subnets, .. } | Op::SetSubnets { subnets, .. } = &c.op {
                Some(subnets)
            } else {
                None
            }
        })
        .filter(|_| !placed_already);
    if let Some(subnets) = placed {
        let mut zones: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for id in subnets {
            match observed.subnets.iter().find(|s| &s.id == id) {
                None => blockers.push(Blocker {
                    subject: "load_balancer.subnets".to_owned(),
                    message: format!("subnet {id} does not exist in {region}"),
                    hint: "check the id and the region (`aws ec2 describe-subnets`)".to_owned(),
                }),
                Some(s) if !s.vpc.is_empty() && s.vpc != desired.vpc => blockers.push(Blocker {
                    subject: "load_balancer.subnets".to_owned(),
                    message: format!(
                        "subnet {id} is in {}, not in the manifest's vpc {}",
                        s.vpc, desired.vpc
                    ),
                    hint: "name subnets of the manifest's VPC, or correct `vpc`".to_owned(),
                }),
                Some(s) => zones.entry(s.zone.as_str()).or_default().push(id),
            }
        }
        if zones.len() == 1 && subnets.len() > 1 {
            let (zone, ids) = zones
                .iter()
                .next()
                .map(|(z, i)| (*z, i.join(", ")))
                .unwrap_or_default();
            warnings.push(Warning {
                drift: false,
                subject: "load_balancer.subnets".to_owned(),
                message: format!("subnets {ids} are all in {zone}; AWS refuses an Application Load Balancer without subnets in two availability zones"),
                hint: "name a subnet of another availability zone of the VPC".to_owned(),
            });
        }
    }
    // The rules admitting the load balancer reach the targets only through a group the
    // instances carry.
    let found: Vec<&crate::model::ObservedInstance> = desired
        .target_groups
        .values()
        .flat_map(|t| &t.targets)
        .filter_map(|t| observed.instances.iter().find(|i| &i.id == t))
        .collect();
    if !found.is_empty() {
        for g in check::model::declared_backends(desired, observed) {
            if !found.iter().any(|i| i.groups.contains(&g.id)) {
                let ids: std::collections::BTreeSet<&str> =
                    found.iter().map(|i| i.id.as_str()).collect();
                let ids: Vec<&str> = ids.into_iter().collect();
                warnings.push(Warning {
                    drift: false,
                    subject: format!("security group {} ({})", g.name, g.id),
                    message: format!(
                        "none of the targets ({}) is in {}, so its rules admitting the load balancer do not reach them; on AWS they would stay unhealthy and the apply would stop at the health gate",
                        ids.join(", "),
                        g.id
                    ),
                    hint: "name the group the instances carry as the backend's (`existing`), or attach this one to them".to_owned(),
                });
            }
        }
    }
    // A record moved back to its own values must lead to instances the read can check:
    // the checker proves the direct path on their security groups.
    for c in plan.changes() {
        let Op::SetRecord {
            name,
            kind,
            value: RecordValue::Values(values),
            step: DnsStep::Switch,
            ..
        } = &c.op
        else {
            continue;
        };
        for v in values {
            let known = observed.instances.iter().any(|i| i.holds(v));
            if !known {
                let what = if *kind == RecordKind::Cname {
                    "public DNS name"
                } else {
                    "public address"
                };
                blockers.push(Blocker {
                    subject: format!("dns record {name} {kind}"),
                    message: format!("{v} is not the {what} of any instance in {region}: reconcile cannot check that it serves before moving {name} to it"),
                    hint: "use the instances' elastic IPs (or public DNS names); `reconcile init --direct` writes them".to_owned(),
                });
            }
        }
    }
    let builds = plan
        .changes()
        .any(|c| matches!(c.op, Op::RegisterTargets { .. }));
    if builds {
        for t in desired.target_groups.values().flat_map(|t| &t.targets) {
            match observed.instances.iter().find(|i| &i.id == t) {
                None => warnings.push(Warning {
                    drift: false,
                    subject: format!("target {t}"),
                    message: format!("instance {t} was not found in {region}; AWS refuses to register it"),
                    hint: "check the instance id and the region".to_owned(),
                }),
                Some(i) if i.state != crate::model::InstanceState::Running => warnings.push(Warning {
                    drift: false,
                    subject: format!("target {t}"),
                    message: format!("instance {t} is {}: it will not turn healthy, and the apply stops at the health gate, before DNS moves", i.state),
                    hint: "start it, or take it out of the target group".to_owned(),
                }),
                Some(_) => {}
            }
        }
    }
    (blockers, warnings)
}

/// When the plan closes an existing group's rules (the backend's direct path), every
/// other record of the zone that leads where a managed record leads now (the same address
/// or name, say `api` beside `www` on the instance's elastic IP) is cut off too: the
/// manifest does not move it to the load balancer, and the tool does not touch it.
pub fn neighbour_warnings(observed: &Observed, plan: &Plan) -> Vec<Warning> {
    let closes_direct_path = plan.changes().any(|c| {
        matches!(
            &c.op,
            Op::RevokeIngress {
                direct_path: true,
                rules,
                ..
            } if rules.iter().any(RuleKey::is_from_internet)
        )
    });
    let Some(zone) = observed.zone.as_ref().filter(|_| closes_direct_path) else {
        return Vec::new();
    };
    zone.neighbours
        .iter()
        .filter_map(|n| {
            let shared: Vec<&str> = zone
                .records
                .iter()
                .filter(|r| r.values.iter().any(|v| n.values.contains(v)))
                .map(|r| r.name.as_str())
                .collect();
            let first = *shared.first()?;
            Some(Warning {
                drift: false,
                subject: format!("dns record {} {}", n.name, n.kind),
                message: format!(
                    "{} ({}) is not in the manifest and leads where {first} leads now; once the backend's public rules are removed it no longer reaches the site",
                    n.name,
                    n.values.join(", "),
                ),
                hint: format!("add {} under dns.records to move it to the load balancer too, or point it elsewhere first", n.name),
            })
        })
        .collect()
}

/// What a stack asks for once it is destroyed: nothing of its own (no load balancer, target
/// groups or groups, so that every one the read finds by name or tag goes), the `existing`
/// groups it names kept with their rules as they are but those naming a group that goes,
/// and its records as they are now (left alone: kept only so that answers an earlier run's
/// switch left in caches are waited out, from its marker, before what they lead to goes).
pub fn destroy_desired(d: &Desired, o: &Observed) -> Desired {
    let dns = d
        .dns
        .as_ref()
        .filter(|_| o.zone.is_some())
        .map(|dns| crate::model::DesiredDns {
            zone: dns.zone.clone(),
            records: dns
                .records
                .iter()
                .filter_map(|r| {
                    let now = o.zone.as_ref()?.records.iter().find(|x| {
                        x.name == r.name
                            && x.alias.is_none()
                            && !x.values.is_empty()
                            && x.kind.leads_to_site()
                    })?;
                    Some(crate::model::DesiredRecord {
                        name: r.name.clone(),
                        kind: now.kind.clone(),
                        to: crate::model::RecordTo::Values(crate::model::normal_values(
                            &now.kind,
                            &now.values,
                        )),
                        ttl: now.ttl,
                        transition_ttl: now.ttl.unwrap_or(0),
                        probe: None,
                        cutover: None,
                    })
                })
                .collect(),
        });
    let security_groups = d
        .security_groups
        .iter()
        .filter(|(_, g)| g.existing.is_some())
        .map(|(k, g)| {
            let kept = crate::model::DesiredSg {
                exclusive: false,
                rules: BTreeMap::new(),
                ..g.clone()
            };
            (k.clone(), kept)
        })
        .collect();
    Desired {
        certificates: BTreeMap::new(),
        security_groups,
        target_groups: BTreeMap::new(),
        load_balancer: None,
        dns,
        ..d.clone()
    }
}

/// A destroy is refused while a record the manifest manages still leads to one of the
/// stack's load balancers: deleting it would take the site down.
pub fn destroy_blockers(d: &Desired, o: &Observed) -> Vec<Blocker> {
    let Some((dns, zone)) = d.dns.as_ref().zip(o.zone.as_ref()) else {
        return Vec::new();
    };
    let normal = crate::manifest::net::normalize_dns;
    let mut out = Vec::new();
    for r in &dns.records {
        for rec in zone.records.iter().filter(|x| x.name == r.name) {
            let leads = o
                .load_balancers
                .iter()
                .find(|l| rec.leads_to(&normal(&l.dns_name)));
            if let Some(lb) = leads {
                out.push(Blocker {
                    subject: format!("dns record {} {}", rec.name, rec.kind),
                    message: format!(
                        "{} still leads to the stack's load balancer {}: destroying it would take the site down",
                        rec.name, lb.name
                    ),
                    hint: format!("move {} away first, with the reverse migration: `reconcile init --direct --name {} -o direct.json`, then `reconcile apply -f direct.json`; then destroy with that manifest", rec.name, rec.name),
                });
            }
        }
    }
    out
}

/// The reasons of a destroy's changes, which the diff wrote for a manifest that leaves
/// things out: only the explanation changes, never a decision.
pub fn destroy_reasons(plan: &mut Plan) {
    for n in &mut plan.nodes {
        let NodeKind::Change(c) = &mut n.kind else {
            continue;
        };
        let reason = match &c.op {
            Op::DeleteLoadBalancer { .. } => "destroy: owned by the stack (its listeners go with it)",
            Op::DeleteTargetGroup { .. } => "destroy: owned by the stack, once the load balancer that used it is gone",
            Op::DeleteSecurityGroup { .. } => "destroy: owned by the stack, once nothing uses or names it",
            Op::RevokeIngress { .. } => "destroy: these rules name a group the stack deletes (AWS keeps a group that a rule names)",
            Op::ClearMarker { .. } => "destroy: the stack's wait marker",
            Op::CreateSecurityGroup { .. }
            | Op::AuthorizeIngress { .. }
            | Op::UpdateRuleDescriptions { .. }
            | Op::CreateTargetGroup { .. }
            | Op::ModifyHealthCheck { .. }
            | Op::SetTags { .. }
            | Op::Adopt { .. }
            | Op::RegisterTargets { .. }
            | Op::DeregisterTargets { .. }
            | Op::CreateLoadBalancer { .. }
            | Op::SetSubnets { .. }
            | Op::SetSecurityGroups { .. }
            | Op::RequestCertificate { .. }
            | Op::DeleteCertificate { .. }
            | Op::WriteValidation { .. }
            | Op::SetLbAttributes { .. }
            | Op::Unprotect { .. }
            | Op::CreateListener { .. }
            | Op::AttachStandby { .. }
            | Op::ModifyListener { .. }
            | Op::DetachStandby { .. }
            | Op::SetListenerHeaders { .. }
            | Op::DeleteListener { .. }
            | Op::SetRecord { .. } => continue,
        };
        c.reason = reason.to_owned();
    }
}
