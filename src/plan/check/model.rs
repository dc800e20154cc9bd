//! A model of what carrying out a plan does to the observed state, node by node, with a
//! clock for the TTL waits and the history of every DNS answer served. With it a plan can
//! be checked before anything runs (and tests check every order the executor may choose):
//!
//! - **always reachable**: after each change, every answer a client may still hold leads to
//!   a serving path (the spec's availability invariant);
//! - **never touches what it does not own**: each change modifies or deletes only resources
//!   tagged with the stack, except an `existing` group's rules and the managed records.
//!
//! Resources the plan creates get made-up ids; new targets are `initial` until their
//! gate, and a new load balancer is `provisioning` until its gate, as in AWS.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use crate::aws::elbv2::ListenerAction;
use crate::aws::route53::{ChangeAction, RecordSet};

use crate::model::{
    owned_by, Desired, ObservedLb, ObservedListener, ObservedRecord, ObservedRule, ObservedSg,
    ObservedTg, Protocol, RecordKind, Redirect, RuleKey, Source, TargetHealth, TargetReason,
};

use crate::aws::Operation;
use crate::plan::carry::{self, Cloud, LbAddress, Refs, Unresolved};
use crate::plan::wait;
use crate::plan::{Gate, LbRef, Node, NodeKind, Op, Pace, SgRef, Tagged, TgRef};

/// A broken guarantee, or an operation the model cannot carry out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("after {node}: {message}")]
pub struct Violation {
    pub node: String,
    pub message: String,
}

/// An answer served for a name during a period, with the TTL it was served with.
#[derive(Debug, Clone)]
struct Served {
    name: String,
    answer: Answer,
    ttl: u64,
    end: Option<u64>,
}

/// The world as a plan runs through it.
#[derive(Clone)]
pub struct World<'a> {
    desired: &'a Desired,
    pub observed: crate::model::Observed,
    /// Seconds since the run started.
    pub clock: u64,
    history: Vec<Served>,
    /// What the run created, as the interpreter resolves references ([`carry`]).
    refs: Refs,
    /// The AWS calls the interpreter made, when they are recorded ([`trace`]).
    calls: Option<Vec<Operation>>,
    /// Certificates that ACM said were in use though no listener read used them: something
    /// outside the stacks read uses them, and ACM refuses to delete them.
    used_elsewhere: BTreeSet<String>,
    /// Every load balancer DNS name seen so far: an answer naming one that is gone serves
    /// nothing.
    seen_lbs: BTreeSet<String>,
    /// The records whose answers are followed and checked: all the manifest's, or one
    /// when the checker proves the invariant name by name.
    watched: Vec<String>,
}

/// What a record answers a client with.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Answer {
    /// An alias (to a load balancer): its DNS name.
    Alias(String),
    /// A CNAME's target.
    Cname(String),
    /// The addresses of an A or AAAA record.
    Addresses {
        kind: RecordKind,
        values: Vec<String>,
    },
}

impl Answer {
    /// Can it lead to a load balancer (an alias, or a CNAME that may name one)? Otherwise
    /// it leads to the instances directly.
    pub fn may_lead_to_lb(&self) -> bool {
        matches!(self, Answer::Alias(_) | Answer::Cname(_))
    }
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Answer::Alias(dns) => write!(f, "lb:{dns}"),
            Answer::Cname(name) => write!(f, "CNAME:{name}"),
            Answer::Addresses { kind, values } => write!(f, "{kind}:{}", values.join(",")),
        }
    }
}

/// The answers the records give for `name`, each with the TTL it is served with.
pub fn answer_of(records: &[ObservedRecord], name: &str) -> Vec<(Answer, u64)> {
    records
        .iter()
        .filter(|r| r.name == name && r.kind.leads_to_site())
        .map(|r| {
            let answer = match &r.alias {
                Some(a) => Answer::Alias(a.dns_name.clone()),
                None if r.kind == RecordKind::Cname => {
                    Answer::Cname(r.values.first().cloned().unwrap_or_default())
                }
                None => Answer::Addresses {
                    kind: r.kind.clone(),
                    values: r.values.clone(),
                },
            };
            (answer, u64::from(r.ttl.unwrap_or(60)))
        })
        .collect()
}

impl<'a> World<'a> {
    /// Starts from `observed`, whose records have been served for a long time.
    pub fn new(desired: &'a Desired, observed: crate::model::Observed) -> World<'a> {
        let all = record_names(desired);
        World::watching(desired, observed, all)
    }

    /// The same, following and checking the answers of `watched` only (the invariant is
    /// one condition per name: see [`super`]).
    pub fn watching(
        desired: &'a Desired,
        observed: crate::model::Observed,
        watched: Vec<String>,
    ) -> World<'a> {
        let mut w = World {
            watched,
            desired,
            observed,
            clock: 0,
            history: vec![],
            refs: Refs::default(),
            calls: None,
            used_elsewhere: BTreeSet::new(),
            seen_lbs: BTreeSet::new(),
        };
        w.seen_lbs = load_balancer_names(&w.observed);
        w.refs = Refs::with_load_balancers(w.observed.load_balancers.iter().map(|l| LbAddress {
            arn: l.arn.clone(),
            dns_name: crate::manifest::net::normalize_dns(&l.dns_name),
            zone_id: l.hosted_zone_id.clone(),
        }));
        // As AWS reports them: the targets of a group no load balancer uses are `unused`.
        for t in &mut w.observed.target_groups {
            if t.load_balancers.is_empty() {
                for h in &mut t.targets {
                    h.state = crate::model::TargetState::Unused;
                    h.reason = Some(TargetReason::NotInUse);
                }
            }
        }
        let on_listeners: BTreeSet<&String> = w
            .observed
            .load_balancers
            .iter()
            .chain(&w.observed.foreign_load_balancers)
            .flat_map(|l| &l.listeners)
            .flat_map(|l| &l.certificates)
            .collect();
        w.used_elsewhere = w
            .observed
            .certificates
            .iter()
            .filter(|c| c.in_use == Some(true) && !on_listeners.contains(&c.arn))
            .map(|c| c.arn.clone())
            .collect();
        for name in w.watched.clone() {
            let records = w.records();
            for (answer, ttl) in answer_of(&records, &name) {
                w.history.push(Served {
                    name: name.clone(),
                    answer,
                    ttl,
                    end: None,
                });
            }
        }
        w
    }

    fn record_names(&self) -> Vec<String> {
        record_names(self.desired)
    }

    fn records(&self) -> Vec<ObservedRecord> {
        self.observed
            .zone
            .as_ref()
            .map(|z| z.records.clone())
            .unwrap_or_default()
    }

    fn tg_arn(&self, t: &TgRef) -> Option<String> {
        self.refs.target_group(t).ok()
    }

    fn lb_arn(&self, l: &LbRef) -> Option<String> {
        self.refs.load_balancer(l).ok().map(|a| a.arn)
    }

    /// A digest of the whole world: two states of a run with the same finished nodes and
    /// the same digest are the same state (the checker explores each once). Besides the
    /// finished set, a world can depend on the order nodes ran in: the targets' health (a
    /// group detached before the listener that needs it moves to it is health-checked
    /// again from `initial`) and when each DNS answer stopped being served.
    pub fn fingerprint(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        // In a normal form: what two changes add to a list in either order is the same.
        let mut o = self.observed.clone();
        o.load_balancers.sort_by(|a, b| a.arn.cmp(&b.arn));
        for l in &mut o.load_balancers {
            l.listeners.sort_by(|a, b| a.arn.cmp(&b.arn));
        }
        o.target_groups.sort_by(|a, b| a.arn.cmp(&b.arn));
        for t in &mut o.target_groups {
            t.targets.sort_by(|a, b| a.id.cmp(&b.id));
            t.load_balancers.sort();
        }
        o.security_groups.sort_by(|a, b| a.id.cmp(&b.id));
        for g in &mut o.security_groups {
            g.rules.sort_by(|a, b| a.key.cmp(&b.key));
        }
        o.certificates.sort_by(|a, b| a.arn.cmp(&b.arn));
        if let Some(z) = o.zone.as_mut() {
            z.records.sort_by_key(|r| format!("{r:?}"));
        }
        let mut history: Vec<_> = self
            .history
            .iter()
            .map(|s| (&s.name, &s.answer, s.ttl, s.end))
            .collect();
        history.sort();
        let mut h = std::collections::hash_map::DefaultHasher::new();
        format!("{o:?}").hash(&mut h);
        (
            history,
            self.clock,
            &self.refs.groups,
            &self.refs.target_groups,
            self.refs
                .load_balancers
                .iter()
                .map(|(k, a)| (k, &a.arn))
                .collect::<Vec<_>>(),
            &self.refs.certificates,
            &self.seen_lbs,
        )
            .hash(&mut h);
        h.finish()
    }

    /// May a client hold an answer that leads to a load balancer now?
    pub fn answers_lead_to_lb(&self) -> bool {
        self.watched
            .iter()
            .any(|n| self.live_answers(n).iter().any(|a| a.may_lead_to_lb()))
    }

    /// Carries out one node of a plan, checking that it touches only what the stack owns.
    pub fn run(&mut self, node: &Node) -> Result<(), Violation> {
        let fail = |message: String| Violation {
            node: node.id.to_string(),
            message,
        };
        match &node.kind {
            NodeKind::Gate(g) => self.gate(g).map_err(fail)?,
            NodeKind::Change(c) => self.apply(&c.op).map_err(fail)?,
        }
        self.seen_lbs.extend(load_balancer_names(&self.observed));
        Ok(())
    }

    /// Runs a gate: AWS gets where the gate waits for it to be, where it would (the
    /// checker's own demands on the plan first), and then the condition `apply` waits
    /// for ([`wait::look`]) must hold: the model answers at once, so what does not hold
    /// now never will.
    fn gate(&mut self, g: &Gate) -> Result<(), String> {
        self.converge(g)?;
        let Some(condition) = wait::Condition::of(g) else {
            return Ok(());
        };
        let model = Model(RefCell::new(self));
        let waited = wait::at_once(wait::until(
            &model,
            wait::Patience::none(),
            |waited| wait::look(&model, &condition, waited),
            |_, _| {},
        ))
        .ok_or("bug: the model of AWS waited")?
        .map_err(|e| e.to_string())?;
        match waited {
            wait::Waited::Met(()) => Ok(()),
            wait::Waited::Never(why) => Err(unmet(&condition, &why)),
            wait::Waited::TimedOut { .. } | wait::Waited::Paused => {
                Err(format!("{} never holds", describe(&condition)))
            }
        }
    }

    /// What AWS does while a gate waits, in the model; an error where the plan asks a
    /// gate the checker finds it cannot count on.
    fn converge(&mut self, g: &Gate) -> Result<(), String> {
        match g {
            Gate::LbActive { lb } => {
                let arn = self.lb_arn(lb).ok_or("the load balancer does not exist")?;
                for l in self
                    .observed
                    .load_balancers
                    .iter_mut()
                    .filter(|l| l.arn == arn)
                {
                    l.state = crate::model::LbState::Active;
                }
            }
            Gate::TargetsHealthy { tg, pace, .. } => {
                let arn = self.tg_arn(tg).ok_or("the target group does not exist")?;
                let t = self.tg_mut(&arn)?;
                // The wait the plan announces is the one AWS makes: the gate runs on the
                // timing the plan says (the transition set before it, not yet restored).
                if Pace::of(&t.health) != *pace {
                    return Err(format!(
                        "{} is checked every {}s, healthy after {}, where the plan counts on every {}s, healthy after {}: a change of its health check is not ordered against its gate",
                        t.name,
                        t.health.interval_seconds,
                        t.health.healthy_threshold,
                        pace.interval_seconds,
                        pace.healthy_threshold
                    ));
                }
                if t.load_balancers.is_empty() {
                    return Err(format!(
                        "{} never turns healthy: no load balancer health-checks it",
                        t.name
                    ));
                }
                for t in self
                    .observed
                    .target_groups
                    .iter_mut()
                    .filter(|t| t.arn == arn)
                {
                    for h in &mut t.targets {
                        h.state = crate::model::TargetState::Healthy;
                    }
                }
            }
            // EC2 reads back what it was told: the condition judges.
            Gate::RulesInPlace { .. } => {}
            // ACM issues a certificate once every validation record it asks for is in
            // the zone, and not before.
            Gate::CertIssued { cert, .. } => {
                let arn = self.cert_arn(cert)?;
                let records = self.records();
                let c = self
                    .observed
                    .certificates
                    .iter_mut()
                    .find(|c| c.arn == arn)
                    .ok_or("the certificate does not exist")?;
                let validated = !c.validation.is_empty()
                    && c.validation.iter().all(|v| records.iter().any(|r| v.is(r)));
                if !validated {
                    return Err(format!(
                        "{arn} is never issued: its validation records are not in the zone"
                    ));
                }
                c.status = crate::model::CertStatus::Issued;
            }
            // The probe passes when the load balancer serves the site, and not before.
            Gate::Probe(probe) => self.lb_serves(&probe.lb).map_err(|e| {
                format!(
                    "the probe of {} through the load balancer fails: {e}",
                    probe.record
                )
            })?,
            Gate::DnsInSync { .. } => {}
            Gate::WaitTtl { seconds, .. } => self.clock += u64::from(*seconds),
            // A bake holds while the load balancer serves; its breach path (the revert) is
            // checked here, in every state a bake can be in.
            Gate::Bake {
                watch,
                record,
                seconds,
                revert,
                ..
            } => {
                self.lb_serves(&watch.lb).map_err(|e| {
                    format!("the cutover of {record} holds a share on a load balancer that does not serve: {e}")
                })?;
                // The breach path: the revert must leave every answer serving too.
                let mut reverted = self.clone();
                reverted.apply(revert)?;
                reverted
                    .reachable()
                    .map_err(|e| format!("reverting the cutover of {record} would leave {e}"))?;
                self.clock += u64::from(*seconds);
            }
        }
        Ok(())
    }

    /// Does the load balancer serve the site (by its DNS name, as a visitor reaches it)?
    fn lb_serves(&self, lb: &LbRef) -> Result<(), String> {
        let arn = self.lb_arn(lb).ok_or("the load balancer does not exist")?;
        let dns = self
            .observed
            .load_balancers
            .iter()
            .find(|l| l.arn == arn)
            .map(|l| crate::manifest::net::normalize_dns(&l.dns_name))
            .ok_or("the load balancer does not exist")?;
        lb_path(self.desired, &self.observed, &dns)
    }

    fn cert_arn(&self, c: &crate::plan::CertRef) -> Result<String, String> {
        self.refs.certificate(c).map_err(|e| e.to_string())
    }

    /// Carries out one change through the plan's interpreter ([`carry`]), the world as the
    /// [`Cloud`]: the same code `apply` runs against AWS.
    pub(crate) fn apply(&mut self, op: &Op) -> Result<(), String> {
        let model = Model(RefCell::new(self));
        // The model answers every call at once.
        wait::at_once(carry::carry(&model, op))
            .ok_or("bug: the model of AWS waited")?
            .map_err(|e| e.to_string())
    }

    /// An `existing` group of the manifest: the stack's to edit rules on, not to tag.
    fn existing_group(&self, id: &str) -> bool {
        self.desired
            .security_groups
            .values()
            .any(|g| g.existing.as_deref() == Some(id))
    }

    fn owned(&self, tags: &crate::model::Tags) -> bool {
        owned_by(tags, &self.desired.stack)
    }

    fn own_group(&self, id: &str) -> Result<(), String> {
        let owned = self
            .observed
            .sg_by_id(id)
            .is_some_and(|g| self.owned(&g.tags));
        allowed(owned, || format!("security group {id}"))
    }

    fn own_target_group(&self, arn: &str) -> Result<(), String> {
        let owned = self
            .observed
            .tg_by_arn(arn)
            .is_some_and(|t| self.owned(&t.tags));
        allowed(owned, || format!("target group {arn}"))
    }

    fn own_load_balancer(&self, arn: &str) -> Result<(), String> {
        let owned = self
            .observed
            .load_balancers
            .iter()
            .any(|l| l.arn == arn && self.owned(&l.tags));
        allowed(owned, || format!("load balancer {arn}"))
    }

    fn own_listener(&self, arn: &str) -> Result<(), String> {
        let owned = self
            .observed
            .load_balancers
            .iter()
            .any(|l| self.owned(&l.tags) && l.listeners.iter().any(|x| x.arn == arn));
        allowed(owned, || format!("listener {arn}"))
    }

    /// A record the stack may write: one the manifest manages, its wait marker, or a
    /// validation record ACM asks for a certificate.
    fn own_record(&self, name: &str) -> Result<(), String> {
        let names = self.record_names();
        let owned = names.iter().any(|n| n == name)
            || names.iter().any(|n| crate::names::marker_record(n) == name)
            || self
                .observed
                .certificates
                .iter()
                .any(|c| c.validation.iter().any(|v| v.name == name));
        allowed(owned, || format!("record {name}"))
    }

    fn rules_editable(&self, id: &str) -> Result<(), String> {
        if self.existing_group(id) {
            return Ok(());
        }
        self.own_group(id)
    }

    fn create_security_group(
        &mut self,
        name: &str,
        description: &str,
        vpc: &str,
        tags: &crate::model::Tags,
    ) -> Result<String, String> {
        // EC2 refuses a second group of a name in a VPC.
        if self
            .observed
            .security_groups
            .iter()
            .any(|g| g.name == name && g.vpc == vpc)
        {
            return Err(format!(
                "InvalidGroup.Duplicate: a group named {name} exists in {vpc}"
            ));
        }
        // Ids the model makes up come from what the plan names, never from a counter: two
        // changes that commute make the same world in either order.
        let id = format!("sg-sim-{name}");
        self.observed.security_groups.push(ObservedSg {
            id: id.clone(),
            name: name.to_owned(),
            vpc: vpc.to_owned(),
            description: description.to_owned(),
            tags: tags.clone(),
            rules: vec![],
        });
        Ok(id)
    }

    fn set_rules(&mut self, id: &str, rules: &[(RuleKey, Option<String>)]) -> Result<(), String> {
        self.rules_editable(id)?;
        let g = self.sg_mut(id)?;
        for (key, description) in rules {
            match g.rules.iter_mut().find(|r| &r.key == key) {
                Some(r) => r.description = description.clone(),
                None => g.rules.push(ObservedRule {
                    id: None,
                    key: key.clone(),
                    description: description.clone(),
                }),
            }
        }
        Ok(())
    }

    fn revoke_ingress(&mut self, id: &str, rules: &[RuleKey]) -> Result<(), String> {
        self.rules_editable(id)?;
        self.sg_mut(id)?.rules.retain(|r| !rules.contains(&r.key));
        Ok(())
    }

    fn delete_security_group(&mut self, id: &str) -> Result<(), String> {
        self.own_group(id)?;
        let used = self
            .observed
            .load_balancers
            .iter()
            .any(|l| l.security_groups.iter().any(|g| g == id));
        if used {
            return Err(format!("group {id} is still used by a load balancer"));
        }
        // AWS refuses (DependencyViolation) while a rule of another group names it.
        if let Some(g) = self.observed.security_groups.iter().find(|g| {
            g.id != id
                && g.rules
                    .iter()
                    .any(|r| matches!(&r.key.source, Source::Group(s) if s == id))
        }) {
            return Err(format!(
                "DependencyViolation: group {id} is still named by a rule of {}",
                g.name
            ));
        }
        self.observed.security_groups.retain(|g| g.id != id);
        Ok(())
    }

    /// Tags a resource the stack owns, or one the manifest adopts that no other stack
    /// owns: from then on it is the stack's.
    fn tag(&mut self, resource: &Tagged, tags: &crate::model::Tags) -> Result<(), String> {
        let o = &self.observed;
        let (id, live) = match resource {
            Tagged::LoadBalancer { arn } => (
                arn,
                o.load_balancers
                    .iter()
                    .find(|l| &l.arn == arn)
                    .map(|l| &l.tags),
            ),
            Tagged::TargetGroup { arn } => (arn, o.tg_by_arn(arn).map(|t| &t.tags)),
            Tagged::SecurityGroup { id } => (id, o.sg_by_id(id).map(|g| &g.tags)),
        };
        let stack = &self.desired.stack;
        let owned = live.is_some_and(|t| {
            owned_by(t, stack)
                || (self.desired.adopts(id)
                    && t.get(crate::names::STACK_TAG).is_none_or(|s| s == stack))
        });
        allowed(owned, || format!("{resource:?}"))?;
        let on = match resource {
            Tagged::LoadBalancer { arn } => &mut self.lb_mut(arn)?.tags,
            Tagged::TargetGroup { arn } => &mut self.tg_mut(arn)?.tags,
            Tagged::SecurityGroup { id } => &mut self.sg_mut(id)?.tags,
        };
        on.extend(tags.iter().map(|(k, v)| (k.clone(), v.clone())));
        Ok(())
    }

    fn create_target_group(
        &mut self,
        name: &str,
        port: u16,
        protocol: &Protocol,
        vpc: &str,
        health: &crate::model::HealthCheck,
        tags: &crate::model::Tags,
    ) -> Result<String, String> {
        if self.observed.target_groups.iter().any(|t| t.name == name) {
            return Err(format!("DuplicateTargetGroupName: {name} exists"));
        }
        let arn = format!("arn:sim:targetgroup/{name}/sim");
        self.observed.target_groups.push(ObservedTg {
            arn: arn.clone(),
            name: name.to_owned(),
            port,
            protocol: protocol.to_owned(),
            vpc: vpc.to_owned(),
            health: health.clone(),
            tags: tags.clone(),
            load_balancers: vec![],
            targets: vec![],
        });
        Ok(arn)
    }

    fn modify_health_check(
        &mut self,
        arn: &str,
        health: &crate::model::HealthCheck,
    ) -> Result<(), String> {
        self.own_target_group(arn)?;
        self.tg_mut(arn)?.health = health.clone();
        Ok(())
    }

    fn register_targets(&mut self, arn: &str, ids: &[String]) -> Result<(), String> {
        self.own_target_group(arn)?;
        let t = self.tg_mut(arn)?;
        // AWS health-checks only a group a load balancer uses: a target registered in any
        // other is `unused` until the group is attached.
        let (state, reason) = if t.load_balancers.is_empty() {
            (crate::model::TargetState::Unused, "Target.NotInUse")
        } else {
            (
                crate::model::TargetState::Initial,
                "Elb.RegistrationInProgress",
            )
        };
        for id in ids {
            if !t.targets.iter().any(|h| &h.id == id) {
                t.targets.push(TargetHealth {
                    id: id.clone(),
                    state: state.clone(),
                    reason: Some(reason.into()),
                    description: None,
                });
            }
        }
        Ok(())
    }

    fn deregister_targets(&mut self, arn: &str, ids: &[String]) -> Result<(), String> {
        self.own_target_group(arn)?;
        self.tg_mut(arn)?.targets.retain(|h| !ids.contains(&h.id));
        Ok(())
    }

    fn delete_target_group(&mut self, arn: &str) -> Result<(), String> {
        self.own_target_group(arn)?;
        let in_use = self
            .observed
            .load_balancers
            .iter()
            .flat_map(|l| &l.listeners)
            .any(|l| l.forward.iter().any(|t| t == arn));
        if in_use {
            return Err(format!(
                "ResourceInUse: target group {arn} is used by a listener"
            ));
        }
        self.observed.target_groups.retain(|t| t.arn != arn);
        Ok(())
    }

    fn create_load_balancer(
        &mut self,
        name: &str,
        scheme: &str,
        subnets: &[String],
        groups: &[String],
        tags: &crate::model::Tags,
    ) -> Result<LbAddress, String> {
        if self.observed.load_balancers.iter().any(|l| l.name == name) {
            return Err(format!("DuplicateLoadBalancerName: {name} exists"));
        }
        if let Some(g) = groups.iter().find(|g| self.observed.sg_by_id(g).is_none()) {
            return Err(format!("InvalidSecurityGroup: {g} does not exist"));
        }
        let address = LbAddress {
            arn: format!("arn:sim:loadbalancer/app/{name}/sim"),
            dns_name: format!("{name}-sim.us-east-1.elb.amazonaws.com"),
            zone_id: "Z35SXDOTRQ7X7K".into(),
        };
        self.observed.load_balancers.push(ObservedLb {
            arn: address.arn.clone(),
            name: name.to_owned(),
            dns_name: address.dns_name.clone(),
            hosted_zone_id: address.zone_id.clone(),
            scheme: scheme.to_owned(),
            state: crate::model::LbState::Provisioning,
            vpc: self.desired.vpc.clone(),
            subnets: subnets.iter().cloned().collect(),
            security_groups: groups.iter().cloned().collect(),
            tags: tags.clone(),
            listeners: vec![],
            attributes: Some(crate::model::LbAttr::from_aws([])),
        });
        Ok(address)
    }

    fn set_subnets(&mut self, arn: &str, subnets: &[String]) -> Result<(), String> {
        self.own_load_balancer(arn)?;
        self.lb_mut(arn)?.subnets = subnets.iter().cloned().collect();
        Ok(())
    }

    fn set_security_groups(&mut self, arn: &str, groups: &[String]) -> Result<(), String> {
        self.own_load_balancer(arn)?;
        if let Some(g) = groups.iter().find(|g| self.observed.sg_by_id(g).is_none()) {
            return Err(format!("InvalidSecurityGroup: {g} does not exist"));
        }
        self.lb_mut(arn)?.security_groups = groups.iter().cloned().collect();
        Ok(())
    }

    fn set_lb_attributes(
        &mut self,
        arn: &str,
        attributes: &[(crate::model::LbAttr, String)],
    ) -> Result<(), String> {
        self.own_load_balancer(arn)?;
        let live = self
            .lb_mut(arn)?
            .attributes
            .get_or_insert_with(Default::default);
        live.extend(attributes.iter().map(|(a, v)| (*a, v.clone())));
        Ok(())
    }

    fn delete_load_balancer(&mut self, arn: &str) -> Result<(), String> {
        self.own_load_balancer(arn)?;
        // AWS refuses to delete a protected load balancer (OperationNotPermitted).
        let protected = self
            .observed
            .load_balancers
            .iter()
            .find(|l| l.arn == arn)
            .and_then(|l| l.attributes.as_ref())
            .and_then(|a| a.get(&crate::model::LbAttr::DeletionProtection))
            .is_some_and(|v| v == "true");
        if protected {
            return Err(format!(
                "OperationNotPermitted: {arn} has deletion protection on"
            ));
        }
        let touched = self
            .observed
            .target_groups
            .iter()
            .filter(|t| t.load_balancers.iter().any(|l| l == arn))
            .map(|t| t.arn.clone())
            .collect();
        self.observed.load_balancers.retain(|l| l.arn != arn);
        self.refresh_attachments(&touched);
        Ok(())
    }

    fn request_certificate(
        &mut self,
        names: &[String],
        token: &str,
        tags: &crate::model::Tags,
    ) -> Result<String, String> {
        let arn = format!("arn:sim:acm:certificate/{token}");
        // A repeated request with the same token is the same certificate.
        if self.observed.certificates.iter().any(|c| c.arn == arn) {
            return Ok(arn);
        }
        self.observed.certificates.push(crate::model::ObservedCert {
            tags: tags.clone(),
            arn: arn.clone(),
            domain: names.first().cloned().unwrap_or_default(),
            names: names.to_vec(),
            status: crate::model::CertStatus::PendingValidation,
            not_after: None,
            expiring: false,
            renewal: None,
            validation: requested_validation(names),
            store: crate::manifest::net::CertStore::Acm,
            ..Default::default()
        });
        Ok(arn)
    }

    fn validation_records(&self, arn: &str) -> Result<Vec<crate::model::ValidationRecord>, String> {
        self.observed
            .certificates
            .iter()
            .find(|c| c.arn == arn)
            .map(|c| c.validation.clone())
            .ok_or_else(|| format!("certificate {arn} does not exist"))
    }

    fn delete_certificate(&mut self, arn: &str) -> Result<(), String> {
        let owned = self
            .observed
            .certificates
            .iter()
            .any(|c| c.arn == arn && self.owned(&c.tags));
        allowed(owned, || format!("certificate {arn}"))?;
        // ACM refuses to delete a certificate in use (ResourceInUseException).
        let on_listener = self
            .observed
            .load_balancers
            .iter()
            .chain(&self.observed.foreign_load_balancers)
            .flat_map(|l| &l.listeners)
            .any(|l| l.certificates.iter().any(|c| c == arn));
        if on_listener || self.used_elsewhere.contains(arn) {
            return Err(format!(
                "ResourceInUseException: certificate {arn} is in use"
            ));
        }
        self.observed.certificates.retain(|c| c.arn != arn);
        Ok(())
    }

    /// A listener may use only an ISSUED certificate (AWS refuses others).
    fn usable(&self, certificate: Option<&str>) -> Result<(), String> {
        let Some(arn) = certificate else {
            return Ok(());
        };
        match self.observed.certificates.iter().find(|x| x.arn == arn) {
            Some(x) if x.status != crate::model::CertStatus::Issued => Err(format!(
                "UnsupportedCertificate: {arn} is {}, not ISSUED",
                x.status
            )),
            _ => Ok(()),
        }
    }

    /// What a default action makes a listener do: the groups sent traffic, those attached
    /// at weight zero (health-checked, sent nothing), or the redirect.
    fn routes(to: ListenerAction<'_>) -> (Vec<String>, Vec<String>, Option<Redirect>) {
        match to {
            ListenerAction::Forward(groups) => (
                groups
                    .iter()
                    .filter(|(_, w)| *w > 0)
                    .map(|(t, _)| t.clone())
                    .collect(),
                groups
                    .iter()
                    .filter(|(_, w)| *w == 0)
                    .map(|(t, _)| t.clone())
                    .collect(),
                None,
            ),
            ListenerAction::Redirect(r) => (vec![], vec![], Some(r.clone())),
        }
    }

    fn create_listener(
        &mut self,
        lb: &str,
        port: u16,
        protocol: &Protocol,
        certificate: Option<&str>,
        ssl_policy: Option<&str>,
        to: ListenerAction<'_>,
    ) -> Result<String, String> {
        self.own_load_balancer(lb)?;
        self.usable(certificate)?;
        let (forward, standby, redirect) = World::routes(to);
        if let Some(t) = forward
            .iter()
            .chain(&standby)
            .find(|t| self.observed.tg_by_arn(t).is_none())
        {
            return Err(format!("TargetGroupNotFound: {t}"));
        }
        let l = self.lb_mut(lb)?;
        if l.listeners.iter().any(|x| x.port == port) {
            return Err(format!("DuplicateListener: port {port}"));
        }
        let arn = format!("{lb}/listener-sim-{port}");
        l.listeners.push(ObservedListener {
            arn: arn.clone(),
            port,
            protocol: protocol.to_owned(),
            certificates: certificate.map(str::to_owned).into_iter().collect(),
            forward: forward.clone(),
            standby: standby.clone(),
            redirect,
            ssl_policy: ssl_policy.map(str::to_owned),
            headers: Some(Default::default()),
        });
        for t in forward.iter().chain(&standby) {
            self.attach(lb, t)?;
        }
        Ok(arn)
    }

    fn modify_listener(
        &mut self,
        arn: &str,
        protocol: &Protocol,
        certificate: Option<&str>,
        ssl_policy: Option<&str>,
        to: ListenerAction<'_>,
    ) -> Result<(), String> {
        self.own_listener(arn)?;
        // The certificate it has is kept as it is; a new one must be issued.
        let kept = certificate.is_some_and(|c| {
            self.observed
                .load_balancers
                .iter()
                .flat_map(|l| &l.listeners)
                .any(|l| l.arn == arn && l.certificates.iter().any(|x| x == c))
        });
        if !kept {
            self.usable(certificate)?;
        }
        let (forward, standby, redirect) = World::routes(to);
        if let Some(t) = forward
            .iter()
            .chain(&standby)
            .find(|t| self.observed.tg_by_arn(t).is_none())
        {
            return Err(format!("TargetGroupNotFound: {t}"));
        }
        let lb = self.lb_of_listener(arn)?;
        let mut touched = self.listener_groups(arn);
        touched.extend(forward.iter().chain(&standby).cloned());
        for t in forward.iter().chain(&standby) {
            self.attach(&lb, t)?;
        }
        let l = self.listener_mut(arn)?;
        l.protocol = protocol.to_owned();
        l.certificates = certificate.map(str::to_owned).into_iter().collect();
        l.forward = forward;
        l.standby = standby;
        l.redirect = redirect;
        if let Some(p) = ssl_policy {
            l.ssl_policy = Some(p.to_owned());
        }
        self.refresh_attachments(&touched);
        Ok(())
    }

    /// Headers change no path to the site; the model keeps them for convergence.
    fn set_listener_headers(
        &mut self,
        arn: &str,
        headers: &[(crate::model::ResponseHeader, String)],
    ) -> Result<(), String> {
        self.own_listener(arn)?;
        let l = self.listener_mut(arn)?;
        let live = l.headers.get_or_insert_with(Default::default);
        for (h, v) in headers {
            if *v == h.unset() {
                live.remove(h);
            } else {
                live.insert(*h, v.clone());
            }
        }
        Ok(())
    }

    fn delete_listener(&mut self, arn: &str) -> Result<(), String> {
        self.own_listener(arn)?;
        let touched = self.listener_groups(arn);
        for l in &mut self.observed.load_balancers {
            l.listeners.retain(|x| x.arn != arn);
        }
        self.refresh_attachments(&touched);
        Ok(())
    }

    /// One atomic Route53 batch, as Route53 takes it: a DELETE names a set that is there
    /// (by name, type and set identifier), an UPSERT replaces the set of its name, type
    /// and identifier; a simple set and weighted sets of one name and type do not mix.
    /// Nothing changes when any change is refused. Every answer for a name the batch
    /// changes ends now; the new ones start.
    fn change_records(&mut self, changes: &[(ChangeAction, RecordSet)]) -> Result<String, Refused> {
        for (_, set) in changes {
            self.own_record(&set.name).map_err(Refused::Other)?;
        }
        let zone = self
            .observed
            .zone
            .as_mut()
            .ok_or_else(|| Refused::Other("there is no hosted zone".to_owned()))?;
        let mut records = zone.records.clone();
        let same = |r: &ObservedRecord, s: &RecordSet| {
            r.name == s.name
                && r.kind == s.kind
                && r.weighted.as_ref().map(|w| &w.id) == s.weighted.as_ref().map(|(id, _)| id)
        };
        for (action, set) in changes {
            let at = records.iter().position(|r| same(r, set));
            match (action, at) {
                (ChangeAction::Delete, Some(i)) => {
                    records.remove(i);
                }
                (ChangeAction::Delete, None) => {
                    return Err(Refused::StaleBatch(format!(
                        "InvalidChangeBatch: no {} set {} to delete",
                        set.kind, set.name
                    )))
                }
                (ChangeAction::Upsert, at) => {
                    let mixed = records.iter().any(|r| {
                        r.name == set.name
                            && r.kind == set.kind
                            && r.weighted.is_some() != set.weighted.is_some()
                    });
                    if mixed {
                        return Err(Refused::Other(format!(
                            "InvalidChangeBatch: {} {} mixes a simple set with weighted ones",
                            set.kind, set.name
                        )));
                    }
                    let mut new = ObservedRecord::from(set);
                    if let Some(a) = new.alias.as_mut() {
                        a.dns_name = crate::manifest::net::normalize_dns(&a.dns_name);
                    }
                    match at {
                        Some(i) => records[i] = new,
                        None => records.push(new),
                    }
                }
            }
        }
        zone.records = records;
        let mut names: Vec<&String> = changes.iter().map(|(_, s)| &s.name).collect();
        names.sort();
        names.dedup();
        let now = self.clock;
        for name in names {
            if !self.watched.iter().any(|w| w == name) {
                continue;
            }
            for s in self
                .history
                .iter_mut()
                .filter(|s| &s.name == name && s.end.is_none())
            {
                s.end = Some(now);
            }
            let records = self.records();
            for (answer, ttl) in answer_of(&records, name) {
                self.history.push(Served {
                    name: name.clone(),
                    answer,
                    ttl,
                    end: None,
                });
            }
        }
        Ok(format!("sim-change-{now}"))
    }

    /// A group serves one load balancer only (AWS refuses a second).
    fn attach(&mut self, lb: &str, tg: &str) -> Result<(), String> {
        let t = self.tg_mut(tg)?;
        if t.load_balancers.iter().any(|a| a != lb) {
            return Err(format!(
                "target group {} already serves another load balancer",
                t.name
            ));
        }
        if !t.load_balancers.iter().any(|a| a == lb) {
            t.load_balancers.push(lb.to_owned());
            for h in t
                .targets
                .iter_mut()
                .filter(|h| h.state == crate::model::TargetState::Unused)
            {
                h.state = crate::model::TargetState::Initial;
                h.reason = Some(TargetReason::RegistrationInProgress);
            }
        }
        Ok(())
    }

    /// Recomputes which load balancers the groups in `touched` serve, from the listeners.
    /// Only those: a change reaches the groups its listener forwarded to or held on
    /// standby before, and those it uses after, so that changes to other listeners commute
    /// with it (the checker's reduction relies on it, see [`super::footprint`]).
    fn refresh_attachments(&mut self, touched: &BTreeSet<String>) {
        let mut by_tg: BTreeMap<&String, Vec<String>> = BTreeMap::new();
        for l in &self.observed.load_balancers {
            for x in &l.listeners {
                for t in x.forward.iter().chain(&x.standby) {
                    let v = by_tg.entry(t).or_default();
                    if !v.contains(&l.arn) {
                        v.push(l.arn.clone());
                    }
                }
            }
        }
        let mut by_tg: BTreeMap<String, Vec<String>> =
            by_tg.into_iter().map(|(k, v)| (k.clone(), v)).collect();
        for t in self
            .observed
            .target_groups
            .iter_mut()
            .filter(|t| touched.contains(&t.arn))
        {
            t.load_balancers = by_tg.remove(&t.arn).unwrap_or_default();
            // AWS health-checks only groups in use: a group no listener uses any more has
            // its targets `unused`, and checked again from `initial` once attached.
            if t.load_balancers.is_empty() {
                for h in &mut t.targets {
                    h.state = crate::model::TargetState::Unused;
                    h.reason = Some(TargetReason::NotInUse);
                }
            }
        }
    }

    /// The groups a listener forwards to or holds on standby now.
    fn listener_groups(&self, arn: &str) -> BTreeSet<String> {
        self.observed
            .load_balancers
            .iter()
            .flat_map(|l| &l.listeners)
            .filter(|l| l.arn == arn)
            .flat_map(|l| l.forward.iter().chain(&l.standby).cloned())
            .collect()
    }

    fn lb_of_listener(&self, arn: &str) -> Result<String, String> {
        self.observed
            .load_balancers
            .iter()
            .find(|l| l.listeners.iter().any(|x| x.arn == arn))
            .map(|l| l.arn.clone())
            .ok_or_else(|| format!("listener {arn} does not exist"))
    }

    fn listener_mut(&mut self, arn: &str) -> Result<&mut ObservedListener, String> {
        self.observed
            .load_balancers
            .iter_mut()
            .flat_map(|l| l.listeners.iter_mut())
            .find(|l| l.arn == arn)
            .ok_or_else(|| format!("listener {arn} does not exist"))
    }

    fn sg_mut(&mut self, id: &str) -> Result<&mut ObservedSg, String> {
        self.observed
            .security_groups
            .iter_mut()
            .find(|g| g.id == id)
            .ok_or_else(|| format!("group {id} does not exist"))
    }

    fn tg_mut(&mut self, arn: &str) -> Result<&mut ObservedTg, String> {
        self.observed
            .target_groups
            .iter_mut()
            .find(|t| t.arn == arn)
            .ok_or_else(|| format!("target group {arn} does not exist"))
    }

    fn lb_mut(&mut self, arn: &str) -> Result<&mut ObservedLb, String> {
        self.observed
            .load_balancers
            .iter_mut()
            .find(|l| l.arn == arn)
            .ok_or_else(|| format!("load balancer {arn} does not exist"))
    }

    /// Answers a client may hold now for `name`: current ones, and earlier ones whose TTL
    /// has not run out since they stopped being served.
    fn live_answers(&self, name: &str) -> Vec<&Answer> {
        let mut out: Vec<&Answer> = self
            .history
            .iter()
            .filter(|s| s.name == name)
            .filter(|s| s.end.is_none_or(|end| end + s.ttl > self.clock))
            .map(|s| &s.answer)
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The availability invariant: every answer a client may hold leads to a serving path.
    pub fn reachable(&self) -> Result<(), String> {
        for name in &self.watched {
            for answer in self.live_answers(name) {
                if let Err(why) = serving(self.desired, &self.observed, answer, &self.seen_lbs) {
                    return Err(format!(
                        "{name} may still answer {answer}, which does not serve: {why}"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Does `answer` lead to a serving path in `observed`?
///
/// A load balancer's name serves when the load balancer is active, its groups admit 80
/// and 443 from the internet, every listener visitors use is there with a healthy target
/// behind it, and the backend admits the load balancer's group on each target group's
/// traffic and health-check ports. An alias answer, or a name in `load_balancers` (every
/// load balancer's DNS name seen so far), leads to a load balancer, and serves nothing
/// once it is gone. Any other answer is the direct path: the instances it names (by
/// public address or DNS name) must be running and admit 443 from the internet; an answer
/// that names no instance the read knows serves while some instance of the manifest does.
pub fn serving(
    desired: &Desired,
    observed: &crate::model::Observed,
    answer: &Answer,
    load_balancers: &BTreeSet<String>,
) -> Result<(), String> {
    let normal = crate::manifest::net::normalize_dns;
    let live = |d: &str| {
        observed
            .load_balancers
            .iter()
            .any(|l| normal(&l.dns_name) == d)
    };
    match answer {
        Answer::Alias(dns) => lb_path(desired, observed, dns),
        Answer::Cname(name) if live(name) || load_balancers.contains(name) => {
            lb_path(desired, observed, name)
        }
        Answer::Cname(name) => direct_path(desired, observed, std::slice::from_ref(name)),
        Answer::Addresses { values, .. } => direct_path(desired, observed, values),
    }
}

/// The DNS names of the load balancers in `observed`, in normal form.
pub fn load_balancer_names(observed: &crate::model::Observed) -> BTreeSet<String> {
    observed
        .load_balancers
        .iter()
        .map(|l| crate::manifest::net::normalize_dns(&l.dns_name))
        .collect()
}

/// Backend groups as the manifest declares them: those with a rule admitting a load
/// balancer's group, found by id (existing) or by name (created).
pub fn declared_backends<'o>(
    desired: &Desired,
    observed: &'o crate::model::Observed,
) -> Vec<&'o ObservedSg> {
    let lb_keys: Vec<String> = desired
        .load_balancer
        .iter()
        .flat_map(|lb| &lb.security_groups)
        .map(|g| match g {
            crate::model::GroupRef::Key(k) | crate::model::GroupRef::Id(k) => k.clone(),
        })
        .collect();
    desired
        .security_groups
        .values()
        .filter(|g| {
            g.rules.keys().any(
                |r| matches!(&r.source, Source::Key(k) | Source::Group(k) if lb_keys.contains(k)),
            )
        })
        .filter_map(|g| match &g.existing {
            Some(id) => observed.sg_by_id(id),
            None => observed
                .security_groups
                .iter()
                .find(|o| o.name == g.name && o.vpc == desired.vpc),
        })
        .collect()
}

/// The security groups that guard instance `target`: its own, as read (AWS admits a
/// connection when any of them does), so that a rule the manifest does not declare still
/// counts; and the groups the manifest declares as the backend's. On AWS those guard the
/// instances (a declared backend group attached to none fails the health gate before DNS
/// moves, and the plan warns of it); counting them also keeps the model whole for an
/// instance the read did not see.
fn guards<'o>(
    desired: &Desired,
    observed: &'o crate::model::Observed,
    target: &str,
) -> Vec<&'o ObservedSg> {
    let mut groups = declared_backends(desired, observed);
    if let Some(i) = observed.instances.iter().find(|i| i.id == target) {
        for g in i.groups.iter().filter_map(|g| observed.sg_by_id(g)) {
            if !groups.iter().any(|k| k.id == g.id) {
                groups.push(g);
            }
        }
    }
    groups
}

/// Every instance the manifest's target groups list.
fn targets(desired: &Desired) -> BTreeSet<&str> {
    desired
        .target_groups
        .values()
        .flat_map(|t| t.targets.iter().map(String::as_str))
        .collect()
}

fn direct_path(
    desired: &Desired,
    observed: &crate::model::Observed,
    values: &[String],
) -> Result<(), String> {
    let open = |t: &str| {
        guards(desired, observed, t).iter().any(|g| {
            g.rules
                .iter()
                .any(|r| r.key.is_from_internet() && r.key.admits_tcp(443))
        })
    };
    let named: Vec<&crate::model::ObservedInstance> = observed
        .instances
        .iter()
        .filter(|i| values.iter().any(|v| i.holds(v)))
        .collect();
    // A client may pick any address of the answer: each instance it names must serve.
    if !named.is_empty() {
        for i in named {
            if i.state != crate::model::InstanceState::Running {
                return Err(format!("instance {} is {}", i.id, i.state));
            }
            if !open(&i.id) {
                return Err(format!(
                    "instance {} no longer admits 443 from the internet",
                    i.id
                ));
            }
        }
        return Ok(());
    }
    let mut known = targets(desired);
    known.extend(observed.instances.iter().map(|i| i.id.as_str()));
    if known.into_iter().any(open) {
        Ok(())
    } else {
        Err("the backend no longer admits 443 from the internet on any of its instances".into())
    }
}

fn lb_path(desired: &Desired, observed: &crate::model::Observed, dns: &str) -> Result<(), String> {
    let lb = observed
        .load_balancers
        .iter()
        .find(|l| crate::manifest::net::normalize_dns(&l.dns_name) == dns)
        .ok_or("the load balancer is gone")?;
    if lb.state != crate::model::LbState::Active {
        return Err(format!("the load balancer is {}", lb.state));
    }
    let groups: Vec<&ObservedSg> = lb
        .security_groups
        .iter()
        .filter_map(|id| observed.sg_by_id(id))
        .collect();
    for port in [80, 443] {
        let open = groups.iter().any(|g| {
            g.rules
                .iter()
                .any(|r| r.key.is_from_internet() && r.key.admits_tcp(port))
        });
        if !open {
            return Err(format!("its group does not admit {port} from the internet"));
        }
    }
    for port in &desired.lb_ports() {
        let l = lb
            .listeners
            .iter()
            .find(|l| l.port == *port)
            .ok_or(format!("listener {port} is missing"))?;
        // A redirect to https answers by itself: the visitor comes back on 443, which is
        // checked on its own.
        if l.redirect.as_ref().is_some_and(Redirect::is_to_https) {
            continue;
        }
        let tg = l
            .forward
            .first()
            .and_then(|a| observed.tg_by_arn(a))
            .ok_or(format!("listener {port} forwards to no target group"))?;
        let healthy: Vec<&str> = tg
            .targets
            .iter()
            .filter(|t| t.state == crate::model::TargetState::Healthy)
            .map(|t| t.id.as_str())
            .collect();
        if healthy.is_empty() {
            return Err(format!("listener {port}: no healthy target in {}", tg.name));
        }
        // A healthy target serves only if its own groups let the load balancer in, on the
        // traffic port and the health-check port.
        let ports = [tg.port, tg.health.probed_port(tg.port)];
        let admitted = |t: &str, p: u16| {
            guards(desired, observed, t).iter().any(|g| {
                g.rules.iter().any(|r| {
                    r.key.admits_tcp(p)
                        && matches!(&r.key.source, Source::Group(id) if lb.security_groups.contains(id))
                })
            })
        };
        if !healthy
            .iter()
            .any(|t| ports.iter().all(|p| admitted(t, *p)))
        {
            let p = ports
                .iter()
                .find(|p| !healthy.iter().any(|t| admitted(t, **p)))
                .unwrap_or(&tg.port);
            return Err(format!(
                "listener {port}: no healthy target of {} admits the load balancer's group on {p}",
                tg.name
            ));
        }
    }
    Ok(())
}

/// Does the state the plan ends in serve? The plan's nodes run in their own order through
/// the model, then every answer a client may hold is checked. A plan whose end does not
/// serve is the manifest's doing (say, a backend that does not admit the load balancer on
/// a target group's port), not an order the planner chose.
pub fn end_serves(
    desired: &Desired,
    observed: &crate::model::Observed,
    nodes: &[Node],
) -> Result<(), String> {
    let mut world = World::new(desired, observed.clone());
    for n in nodes {
        world.run(n).map_err(|v| v.to_string())?;
    }
    // Every wait is over: only the answers given now remain.
    world.clock += world.history.iter().map(|s| s.ttl).max().unwrap_or(0);
    world.reachable()
}

/// Runs the nodes at positions `order` through the model from `observed`, checking after
/// each that only owned resources were touched and, from the first moment the site serves
/// (at once, unless the run starts from a broken state), that it keeps serving.
pub fn check_order(
    desired: &Desired,
    observed: &crate::model::Observed,
    nodes: &[Node],
    order: &[usize],
) -> Result<crate::model::Observed, Violation> {
    let mut world = World::new(desired, observed.clone());
    let mut serving = world.reachable().is_ok();
    for i in order {
        let Some(n) = nodes.get(*i) else { continue };
        world.run(n)?;
        match world.reachable() {
            Ok(()) => serving = true,
            Err(message) if serving => {
                return Err(Violation {
                    node: n.id.to_string(),
                    message,
                })
            }
            Err(_) => {}
        }
    }
    Ok(world.observed)
}

/// The names of the records the manifest manages.
pub fn record_names(desired: &Desired) -> Vec<String> {
    desired
        .dns
        .iter()
        .flat_map(|d| d.records.iter().map(|r| r.name.clone()))
        .collect()
}

/// The validation records the model's ACM asks for a certificate requested for `names`.
pub fn requested_validation(names: &[String]) -> Vec<crate::model::ValidationRecord> {
    names
        .iter()
        .map(|n| crate::model::ValidationRecord {
            name: format!("_sim.{}", n.strip_prefix("*.").unwrap_or(n)),
            value: "_sim.acm-validations.aws".into(),
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// A change the model refuses, as AWS would.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Route53 refused a batch: a set it deletes is not there as given.
    #[error("{0}")]
    StaleBatch(String),
    #[error("{0}")]
    Other(String),
}

impl From<Unresolved> for Refused {
    fn from(e: Unresolved) -> Refused {
        Refused::Other(e.to_string())
    }
}

/// A write to `what` is allowed when the stack owns it.
fn allowed(owned: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if owned {
        Ok(())
    } else {
        Err(format!(
            "touches a resource the stack does not own: {}",
            what()
        ))
    }
}

/// The world as the interpreter's [`Cloud`]: each call carried out on the model at once,
/// refused where AWS would refuse it or where the stack does not own what it touches.
struct Model<'w, 'a>(RefCell<&'w mut World<'a>>);

impl<'a> Model<'_, 'a> {
    /// One call of `operation`, carried out by `f`.
    fn on<T>(
        &self,
        operation: Operation,
        f: impl FnOnce(&mut World<'a>) -> Result<T, String>,
    ) -> Result<T, Refused> {
        let mut world = self.0.borrow_mut();
        if let Some(calls) = world.calls.as_mut() {
            calls.push(operation);
        }
        f(&mut world).map_err(Refused::Other)
    }
}

/// The model's clock: its TTLs' time.
impl wait::Clock for Model<'_, '_> {
    fn epoch(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.0.borrow().clock)
    }

    /// Time passes in the model by the plan's own waits only: a wait on AWS is no
    /// evidence that any did.
    async fn sleep(&self, _: std::time::Duration) {}
}

impl Cloud for Model<'_, '_> {
    type Error = Refused;

    fn with_refs<T>(&self, f: impl FnOnce(&mut Refs) -> T) -> T {
        f(&mut self.0.borrow_mut().refs)
    }

    fn may_not_know(&self, _: &str, _: std::time::Duration) -> bool {
        false
    }

    async fn load_balancer_state(
        &self,
        arn: &str,
    ) -> Result<Option<crate::model::LbState>, Refused> {
        let w = self.0.borrow();
        Ok(w.observed
            .load_balancers
            .iter()
            .find(|l| l.arn == arn)
            .map(|l| l.state.clone()))
    }

    async fn target_health(
        &self,
        arn: &str,
    ) -> Result<Option<Vec<crate::model::TargetHealth>>, Refused> {
        let w = self.0.borrow();
        Ok(w.observed
            .target_groups
            .iter()
            .find(|t| t.arn == arn)
            .map(|t| t.targets.clone()))
    }

    async fn group_rules(&self, id: &str) -> Result<Option<Vec<RuleKey>>, Refused> {
        let w = self.0.borrow();
        Ok(w.observed
            .security_groups
            .iter()
            .find(|g| g.id == id)
            .map(|g| g.rules.iter().map(|r| r.key.clone()).collect()))
    }

    async fn certificate_status(
        &self,
        arn: &str,
    ) -> Result<Option<crate::model::CertStatus>, Refused> {
        let w = self.0.borrow();
        Ok(w.observed
            .certificates
            .iter()
            .find(|c| c.arn == arn)
            .map(|c| c.status.clone()))
    }

    /// The model's Route53 serves a change everywhere once it is made.
    async fn change_in_sync(&self, _: &str) -> Result<bool, Refused> {
        Ok(true)
    }

    fn propagation_allowance(&self) -> u32 {
        crate::plan::dns::PROPAGATION_ALLOWANCE
    }

    fn stale_batch(error: &Refused) -> bool {
        matches!(error, Refused::StaleBatch(_))
    }

    async fn create_security_group(
        &self,
        name: &str,
        description: &str,
        vpc: &str,
        tags: &crate::model::Tags,
    ) -> Result<String, Refused> {
        self.on(Operation::CreateSecurityGroup, |w| {
            w.create_security_group(name, description, vpc, tags)
        })
    }

    async fn authorize_ingress(
        &self,
        group: &str,
        rules: &[(RuleKey, Option<String>)],
    ) -> Result<(), Refused> {
        self.on(Operation::AuthorizeSecurityGroupIngress, |w| {
            w.set_rules(group, rules)
        })
    }

    async fn update_rule_descriptions(
        &self,
        group: &str,
        rules: &[(RuleKey, Option<String>)],
    ) -> Result<(), Refused> {
        self.on(Operation::UpdateSecurityGroupRuleDescriptionsIngress, |w| {
            w.set_rules(group, rules)
        })
    }

    async fn revoke_ingress(&self, group: &str, rules: &[RuleKey]) -> Result<(), Refused> {
        self.on(Operation::RevokeSecurityGroupIngress, |w| {
            w.revoke_ingress(group, rules)
        })
    }

    async fn delete_security_group(&self, id: &str) -> Result<(), Refused> {
        self.on(Operation::DeleteSecurityGroup, |w| {
            w.delete_security_group(id)
        })
    }

    async fn tag(&self, resource: &Tagged, tags: &crate::model::Tags) -> Result<(), Refused> {
        self.on(tag_operation(resource), |w| w.tag(resource, tags))
    }

    async fn create_target_group(
        &self,
        name: &str,
        port: u16,
        protocol: &Protocol,
        vpc: &str,
        health: &crate::model::HealthCheck,
        tags: &crate::model::Tags,
    ) -> Result<String, Refused> {
        self.on(Operation::CreateTargetGroup, |w| {
            w.create_target_group(name, port, protocol, vpc, health, tags)
        })
    }

    async fn modify_health_check(
        &self,
        arn: &str,
        health: &crate::model::HealthCheck,
    ) -> Result<(), Refused> {
        self.on(Operation::ModifyTargetGroup, |w| {
            w.modify_health_check(arn, health)
        })
    }

    async fn register_targets(&self, arn: &str, ids: &[String]) -> Result<(), Refused> {
        self.on(Operation::RegisterTargets, |w| w.register_targets(arn, ids))
    }

    async fn deregister_targets(&self, arn: &str, ids: &[String]) -> Result<(), Refused> {
        self.on(Operation::DeregisterTargets, |w| {
            w.deregister_targets(arn, ids)
        })
    }

    async fn delete_target_group(&self, arn: &str) -> Result<(), Refused> {
        self.on(Operation::DeleteTargetGroup, |w| w.delete_target_group(arn))
    }

    async fn create_load_balancer(
        &self,
        name: &str,
        scheme: &str,
        subnets: &[String],
        groups: &[String],
        tags: &crate::model::Tags,
    ) -> Result<LbAddress, Refused> {
        self.on(Operation::CreateLoadBalancer, |w| {
            w.create_load_balancer(name, scheme, subnets, groups, tags)
        })
    }

    async fn set_subnets(&self, arn: &str, subnets: &[String]) -> Result<(), Refused> {
        self.on(Operation::SetSubnets, |w| w.set_subnets(arn, subnets))
    }

    async fn set_security_groups(&self, arn: &str, groups: &[String]) -> Result<(), Refused> {
        self.on(Operation::SetSecurityGroups, |w| {
            w.set_security_groups(arn, groups)
        })
    }

    async fn set_lb_attributes(
        &self,
        arn: &str,
        attributes: &[(crate::model::LbAttr, String)],
    ) -> Result<(), Refused> {
        self.on(Operation::ModifyLoadBalancerAttributes, |w| {
            w.set_lb_attributes(arn, attributes)
        })
    }

    async fn delete_load_balancer(&self, arn: &str) -> Result<(), Refused> {
        self.on(Operation::DeleteLoadBalancer, |w| {
            w.delete_load_balancer(arn)
        })
    }

    async fn request_certificate(
        &self,
        names: &[String],
        token: &str,
        tags: &crate::model::Tags,
    ) -> Result<String, Refused> {
        self.on(Operation::RequestCertificate, |w| {
            w.request_certificate(names, token, tags)
        })
    }

    async fn validation_records(
        &self,
        _key: &str,
        arn: &str,
    ) -> Result<Vec<crate::model::ValidationRecord>, Refused> {
        self.on(Operation::DescribeCertificate, |w| {
            w.validation_records(arn)
        })
    }

    async fn delete_certificate(&self, arn: &str) -> Result<(), Refused> {
        self.on(Operation::DeleteCertificate, |w| w.delete_certificate(arn))
    }

    async fn create_listener(
        &self,
        lb: &str,
        port: u16,
        protocol: &Protocol,
        certificate: Option<&str>,
        ssl_policy: Option<&str>,
        to: ListenerAction<'_>,
    ) -> Result<String, Refused> {
        self.on(Operation::CreateListener, |w| {
            w.create_listener(lb, port, protocol, certificate, ssl_policy, to)
        })
    }

    async fn modify_listener(
        &self,
        arn: &str,
        protocol: &Protocol,
        certificate: Option<&str>,
        ssl_policy: Option<&str>,
        to: ListenerAction<'_>,
    ) -> Result<(), Refused> {
        self.on(Operation::ModifyListener, |w| {
            w.modify_listener(arn, protocol, certificate, ssl_policy, to)
        })
    }

    async fn set_listener_headers(
        &self,
        arn: &str,
        headers: &[(crate::model::ResponseHeader, String)],
    ) -> Result<(), Refused> {
        self.on(Operation::ModifyListenerAttributes, |w| {
            w.set_listener_headers(arn, headers)
        })
    }

    async fn delete_listener(&self, arn: &str) -> Result<(), Refused> {
        self.on(Operation::DeleteListener, |w| w.delete_listener(arn))
    }

    async fn change_records(
        &self,
        _zone_id: &str,
        changes: &[(ChangeAction, RecordSet)],
        _comment: &str,
    ) -> Result<String, Refused> {
        let mut world = self.0.borrow_mut();
        if let Some(calls) = world.calls.as_mut() {
            calls.push(Operation::ChangeResourceRecordSets);
        }
        world.change_records(changes)
    }
}

/// The call that tags `resource`.
fn tag_operation(resource: &Tagged) -> Operation {
    match resource {
        Tagged::LoadBalancer { .. } | Tagged::TargetGroup { .. } => Operation::AddTags,
        Tagged::SecurityGroup { .. } => Operation::CreateTags,
    }
}

/// The AWS calls the interpreter makes for each change of `nodes`, run in their order
/// through the model from `observed` (a gate makes none): what `apply` sends for the same
/// changes, since both run [`carry`].
pub fn trace(
    desired: &Desired,
    observed: &crate::model::Observed,
    nodes: &[Node],
) -> Result<Vec<(String, Vec<Operation>)>, Violation> {
    let mut world = World::new(desired, observed.clone());
    let mut out = Vec::new();
    for n in nodes {
        world.calls = Some(Vec::new());
        world.run(n)?;
        if let NodeKind::Change(_) = n.kind {
            out.push((n.id.to_string(), world.calls.take().unwrap_or_default()));
        }
    }
    Ok(out)
}

/// What a gate's condition waits for, in words.
fn describe(c: &wait::Condition<'_>) -> String {
    match c {
        wait::Condition::LbActive(lb) => format!("{} is active", lb_name(lb)),
        wait::Condition::TargetsHealthy(tg) => {
            format!("every target of {} is healthy", tg_name(tg))
        }
        wait::Condition::RulesInPlace { group, .. } => {
            format!(
                "{} reads back with the rules that open the direct path",
                sg_name(group)
            )
        }
        wait::Condition::CertIssued(_) => "the certificate is issued".to_owned(),
        wait::Condition::InSync { record, .. } => format!("the change of {record} is in sync"),
    }
}

/// Why a gate's condition will never hold, in words.
fn unmet(c: &wait::Condition<'_>, why: &wait::Unmet) -> String {
    match why {
        wait::Unmet::LbFailed => "the load balancer failed to provision".to_owned(),
        wait::Unmet::Gone(id) => format!("{id} does not exist, where {}", describe(c)),
        wait::Unmet::NoTarget => format!("{} never holds: no target is registered", describe(c)),
        wait::Unmet::Hopeless(targets) => format!(
            "{} never holds: {}",
            describe(c),
            targets
                .iter()
                .map(|t| format!("{} is {}", t.id, t.state))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        wait::Unmet::Refused(status) => {
            format!("the certificate is {status}: ACM will not issue it")
        }
    }
}

fn lb_name(lb: &LbRef) -> String {
    match lb {
        LbRef::New(n) => format!("load balancer {n}"),
        LbRef::Arn(a) => format!("load balancer {a}"),
    }
}

fn tg_name(tg: &TgRef) -> String {
    match tg {
        TgRef::New { name, .. } => format!("target group {name}"),
        TgRef::Arn(a) => format!("target group {a}"),
    }
}

fn sg_name(g: &SgRef) -> String {
    match g {
        SgRef::New(k) => format!("security group \"{k}\""),
        SgRef::Id(id) => format!("security group {id}"),
    }
}
