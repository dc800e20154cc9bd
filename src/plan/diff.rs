//! Desired against observed: the typed changes, each with attribute-level before/after and a
//! reason, plus the blockers (conflicts, missing prerequisites). Pure.
//!
//! Ownership is decided here and only here: a resource is changed or deleted only when it
//! carries `reconcile:stack=<stack>`, except the two declared exceptions (the ingress rules
//! of an `existing` group, and the records under `dns.records`). A resource that has a
//! derived name but not the tag is a blocker, never taken over.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use super::{Action, AttrDiff, Blocker, Change, LbRef, Op, Resource, SgRef, TgRef};
use crate::manifest::net;
use crate::model::{
    owned_by, CertSpec, Desired, GroupRef, ObservedLb, ObservedTg, RuleKey, Source,
};
use crate::names;

/// What the diff decided: changes by id, blockers, and the facts the graph needs.
#[derive(Debug, Default)]
pub struct Decided {
    pub changes: Vec<(String, Change)>,
    pub blockers: Vec<Blocker>,
    /// The load balancer that serves once the plan has run.
    pub lb: Option<LbRef>,
    /// The serving load balancer exists but is not `active` yet.
    pub lb_not_active: bool,
    /// Target groups that listeners forward to once the plan has run: key and reference.
    pub traffic: Vec<(String, TgRef)>,
    /// Records whose value switches (their DNS chain gates the direct-path removals).
    pub switched: Vec<SwitchedRecord>,
}

/// A record whose value changes, with the waits its choreography needs.
#[derive(Debug, Clone)]
pub struct SwitchedRecord {
    pub name: String,
    /// The wait for answers given before the TTL was lowered: seconds, and since when if
    /// an earlier run started it (else it starts after this run's lowering).
    pub old_ttl_wait: Option<(u32, Option<i64>)>,
    /// The wait for answers given before the switch, likewise.
    pub switch_wait: Option<(u32, Option<i64>)>,
}

pub(super) struct Differ<'a> {
    pub(super) d: &'a Desired,
    pub(super) o: &'a crate::model::Observed,
    pub(super) out: Decided,
    /// Manifest key → id of a security group that exists.
    pub(super) sg_ids: BTreeMap<String, String>,
    /// Target-group key → reference of the group that will serve.
    pub(super) tg_refs: BTreeMap<String, TgRef>,
    /// Certificate key → resolved ARN.
    pub(super) cert_arns: BTreeMap<String, String>,
}

pub fn diff(d: &Desired, o: &crate::model::Observed) -> Decided {
    let mut x = Differ {
        d,
        o,
        out: Decided::default(),
        sg_ids: BTreeMap::new(),
        tg_refs: BTreeMap::new(),
        cert_arns: BTreeMap::new(),
    };
    x.certificates();
    x.security_groups();
    let lb = x.load_balancer();
    x.target_groups(lb.as_ref().map(|(_, live)| live.map(|l| l.arn.as_str())));
    x.listeners(lb.as_ref());
    x.dns(lb.as_ref());
    x.stale_security_groups();
    x.out
}

pub(super) fn attr(name: &str, before: Option<Value>, after: Option<Value>) -> AttrDiff {
    AttrDiff {
        name: name.to_owned(),
        before,
        after,
    }
}

pub(super) fn resource(kind: &str, name: &str, owned: bool) -> Resource {
    Resource {
        kind: kind.to_owned(),
        name: name.to_owned(),
        owned,
    }
}

impl<'a> Differ<'a> {
    pub(super) fn change(&mut self, id: String, change: Change) {
        self.out.changes.push((id, change));
    }

    pub(super) fn block(
        &mut self,
        subject: impl Into<String>,
        message: impl Into<String>,
        hint: &str,
    ) {
        self.out.blockers.push(Blocker {
            subject: subject.into(),
            message: message.into(),
            hint: hint.to_owned(),
        });
    }

    fn conflict(&mut self, kind: &str, name: &str, id: &str) {
        let tag = format!("{}={}", names::STACK_TAG, self.d.stack);
        self.block(
            format!("{kind} {name}"),
            format!("{name} ({id}) has the name this stack derives but not the tag {tag}; reconcile never takes over what it does not own"),
            "rename or delete that resource, or add the tag if it really belongs to this stack",
        );
    }

    // -----------------------------------------------------------------------------------
    // Certificates

    fn certificates(&mut self) {
        for (key, spec) in &self.d.certificates {
            let found = match spec {
                CertSpec::Domain(domain) => self
                    .o
                    .certificates
                    .iter()
                    .filter(|c| c.status == "ISSUED")
                    .filter(|c| c.names.iter().any(|n| net::covers(n, domain)))
                    .max_by_key(|c| (c.not_after, c.arn.clone())),
                CertSpec::Arn(arn) => self.o.certificates.iter().find(|c| &c.arn == arn),
            };
            match (found, spec) {
                (Some(c), _) if c.status == "ISSUED" => {
                    self.cert_arns.insert(key.clone(), c.arn.clone());
                }
                (Some(c), _) => self.block(
                    format!("certificates.{key}"),
                    format!("certificate {} is {}, not ISSUED", c.arn, c.status),
                    "finish its validation in ACM, or pin another certificate",
                ),
                (None, CertSpec::Domain(domain)) => self.block(
                    format!("certificates.{key}"),
                    format!("no ISSUED ACM certificate covers {domain}"),
                    "request or import one in ACM in the stack's region (wildcards count), or pin one by `arn`",
                ),
                (None, CertSpec::Arn(arn)) => self.block(
                    format!("certificates.{key}"),
                    format!("certificate {arn} does not exist"),
                    "check the ARN and the region",
                ),
            }
        }
        // Every record must be covered by some HTTPS listener's certificate.
        let https: Vec<&String> = self
            .d
            .load_balancer
            .listeners
            .values()
            .filter_map(|l| l.certificate.as_ref())
            .filter_map(|k| self.cert_arns.get(k))
            .collect();
        if https.is_empty() {
            return;
        }
        let covered = |name: &str| {
            self.o
                .certificates
                .iter()
                .filter(|c| https.contains(&&c.arn))
                .any(|c| c.names.iter().any(|n| net::covers(n, name)))
        };
        let uncovered: Vec<String> = self
            .d
            .dns
            .iter()
            .flat_map(|d| d.records.iter())
            .map(|r| r.name.clone())
            .filter(|n| !covered(n))
            .collect();
        for name in uncovered {
            self.block(
                format!("dns record {name}"),
                format!("no HTTPS listener's certificate covers {name}"),
                "use a certificate that names it (or a wildcard for its parent)",
            );
        }
    }

    // -----------------------------------------------------------------------------------
    // Security groups

    fn security_groups(&mut self) {
        // First find every group, so that rules can refer to each other by id.
        let mut live = BTreeMap::new();
        for (key, dsg) in &self.d.security_groups {
            match &dsg.existing {
                Some(id) => match self.o.sg_by_id(id) {
                    Some(g) => {
                        self.sg_ids.insert(key.clone(), id.clone());
                        live.insert(key.clone(), g);
                    }
                    None => self.block(
                        format!("security_groups.{key}.existing"),
                        format!("security group {id} does not exist"),
                        "check the id and the region",
                    ),
                },
                None => {
                    let same_name: Vec<_> = self
                        .o
                        .security_groups
                        .iter()
                        .filter(|g| g.name == dsg.name && g.vpc == self.d.vpc)
                        .collect();
                    match same_name.iter().find(|g| owned_by(&g.tags, &self.d.stack)) {
                        Some(g) => {
                            self.sg_ids.insert(key.clone(), g.id.clone());
                            live.insert(key.clone(), *g);
                        }
                        None => {
                            if let Some(g) = same_name.first() {
                                self.conflict("security group", &dsg.name, &g.id);
                            }
                        }
                    }
                }
            }
        }
        for (key, dsg) in &self.d.security_groups {
            let owned = dsg.existing.is_none();
            let desired: BTreeMap<RuleKey, Option<String>> = dsg
                .rules
                .iter()
                .map(|(k, v)| (self.resolve_rule(k), v.clone()))
                .collect();
            let Some(g) = live.get(key) else {
                if owned && !self.blocked_name(&dsg.name) {
                    self.create_group(key, dsg, desired);
                }
                continue;
            };
            let group = SgRef::Id(g.id.clone());
            let label = if owned {
                dsg.name.clone()
            } else {
                format!("{} ({key})", g.id)
            };
            let have: BTreeMap<&RuleKey, &Option<String>> =
                g.rules.iter().map(|r| (&r.key, &r.description)).collect();
            let adds: Vec<(RuleKey, Option<String>)> = desired
                .iter()
                .filter(|(k, _)| !have.contains_key(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let described: Vec<(RuleKey, Option<String>)> = desired
                .iter()
                .filter(|(k, want)| want.is_some() && have.get(k).is_some_and(|got| *got != *want))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let removes: Vec<RuleKey> = if dsg.exclusive {
                g.rules
                    .iter()
                    .filter(|r| !desired.contains_key(&r.key))
                    .map(|r| r.key.clone())
                    .collect()
            } else {
                vec![]
            };
            if !adds.is_empty() {
                let attrs = adds
                    .iter()
                    .map(|(k, _)| attr("ingress", None, Some(json!(k.to_string()))))
                    .collect();
                self.change(
                    format!("sg.{key}.rules.add"),
                    Change {
                        resource: resource("security_group_rules", &label, owned),
                        action: Action::Create,
                        reason: "the manifest lists these rules and the group lacks them".into(),
                        attrs,
                        op: Op::AuthorizeIngress {
                            group: group.clone(),
                            rules: adds,
                        },
                    },
                );
            }
            if !described.is_empty() {
                let attrs = described
                    .iter()
                    .map(|(k, v)| {
                        let before = have.get(k).and_then(|d| d.as_ref()).map(|d| json!(d));
                        attr(
                            &format!("ingress[{k}].description"),
                            before,
                            v.as_ref().map(|d| json!(d)),
                        )
                    })
                    .collect();
                self.change(
                    format!("sg.{key}.rules.describe"),
                    Change {
                        resource: resource("security_group_rules", &label, owned),
                        action: Action::Update,
                        reason: "rule descriptions differ from the manifest".into(),
                        attrs,
                        op: Op::UpdateRuleDescriptions {
                            group: group.clone(),
                            rules: described,
                        },
                    },
                );
            }
            if !removes.is_empty() {
                let public = removes.iter().any(RuleKey::is_from_internet);
                let reason = if !owned && public {
                    "exclusive: the backend's public rules go last, once DNS has moved to the load balancer and old answers have expired"
                } else if owned {
                    "the stack owns this group whole; rules the manifest does not list are removed"
                } else {
                    "exclusive: rules the manifest does not list are removed once nothing depends on them"
                };
                let attrs = removes
                    .iter()
                    .map(|k| attr("ingress", Some(json!(k.to_string())), None))
                    .collect();
                self.change(
                    format!("sg.{key}.rules.remove"),
                    Change {
                        resource: resource("security_group_rules", &label, owned),
                        action: Action::Delete,
                        reason: reason.into(),
                        attrs,
                        op: Op::RevokeIngress {
                            group,
                            rules: removes,
                            direct_path: !owned,
                        },
                    },
                );
            }
        }
    }

    /// Is an AWS name taken by something the stack does not own? (Already reported.)
    fn blocked_name(&self, name: &str) -> bool {
        self.out
            .blockers
            .iter()
            .any(|b| b.subject.ends_with(&format!(" {name}")))
    }

    fn create_group(
        &mut self,
        key: &str,
        dsg: &crate::model::DesiredSg,
        rules: BTreeMap<RuleKey, Option<String>>,
    ) {
        self.change(
            format!("sg.{key}.create"),
            Change {
                resource: resource("security_group", &dsg.name, true),
                action: Action::Create,
                reason: "declared in the manifest and not found".into(),
                attrs: vec![
                    attr("name", None, Some(json!(dsg.name))),
                    attr("description", None, Some(json!(dsg.description))),
                    attr("vpc", None, Some(json!(self.d.vpc))),
                ],
                op: Op::CreateSecurityGroup {
                    key: key.to_owned(),
                    name: dsg.name.clone(),
                    description: dsg.description.clone(),
                    vpc: self.d.vpc.clone(),
                    tags: self.d.tags.clone(),
                },
            },
        );
        if rules.is_empty() {
            return;
        }
        let attrs = rules
            .keys()
            .map(|k| attr("ingress", None, Some(json!(k.to_string()))))
            .collect();
        self.change(
            format!("sg.{key}.rules.add"),
            Change {
                resource: resource("security_group_rules", &dsg.name, true),
                action: Action::Create,
                reason: "rules of the new group".into(),
                attrs,
                op: Op::AuthorizeIngress {
                    group: SgRef::New(key.to_owned()),
                    rules: rules.into_iter().collect(),
                },
            },
        );
    }

    /// A desired rule with `from` a key resolved to the group's id when the group exists.
    fn resolve_rule(&self, k: &RuleKey) -> RuleKey {
        match &k.source {
            Source::Key(key) => match self.sg_ids.get(key) {
                Some(id) => RuleKey {
                    source: Source::Group(id.clone()),
                    ..k.clone()
                },
                None => k.clone(),
            },
            _ => k.clone(),
        }
    }

    fn sg_ref(&self, g: &GroupRef) -> SgRef {
        match g {
            GroupRef::Id(id) => SgRef::Id(id.clone()),
            GroupRef::Key(k) => match self.sg_ids.get(k) {
                Some(id) => SgRef::Id(id.clone()),
                None => SgRef::New(k.clone()),
            },
        }
    }

    /// Owned groups of the VPC that the manifest no longer declares.
    fn stale_security_groups(&mut self) {
        let wanted: BTreeSet<&String> = self
            .d
            .security_groups
            .values()
            .filter(|g| g.existing.is_none())
            .map(|g| &g.name)
            .collect();
        let stale: Vec<_> = self
            .o
            .security_groups
            .iter()
            .filter(|g| g.vpc == self.d.vpc && owned_by(&g.tags, &self.d.stack))
            .filter(|g| !wanted.contains(&g.name))
            .collect();
        for g in stale {
            self.change(
                format!("sg.{}.delete", g.name),
                Change {
                    resource: resource("security_group", &g.name, true),
                    action: Action::Delete,
                    reason: "owned by the stack and no longer in the manifest".into(),
                    attrs: vec![attr("id", Some(json!(g.id)), None)],
                    op: Op::DeleteSecurityGroup {
                        id: g.id.clone(),
                        name: g.name.clone(),
                    },
                },
            );
        }
    }

    // -----------------------------------------------------------------------------------
    // Target groups

    /// `serving_lb`: the ARN of the load balancer that will serve when it exists already
    /// (`Some(None)` when a new one is created, `None` when it is blocked).
    fn target_groups(&mut self, serving_lb: Option<Option<&str>>) {
        let stack = &self.d.stack;
        let mut claimed: BTreeSet<String> = BTreeSet::new();
        for (key, dtg) in &self.d.target_groups {
            let alt = names::alternate(&dtg.name);
            let named: Vec<&ObservedTg> = self
                .o
                .target_groups
                .iter()
                .filter(|t| t.name == dtg.name || t.name == alt)
                .collect();
            if let Some(t) = named.iter().find(|t| !owned_by(&t.tags, stack)) {
                self.conflict("target group", &t.name, &t.arn);
                continue;
            }
            claimed.extend(named.iter().map(|t| t.arn.clone()));
            // A group serves one load balancer only: one attached to another (say, the one a
            // new load balancer replaces) cannot be kept.
            let attachable = |t: &ObservedTg| {
                t.load_balancers
                    .iter()
                    .all(|a| serving_lb.flatten() == Some(a.as_str()))
            };
            let same = |t: &&&ObservedTg| {
                t.port == dtg.port
                    && t.protocol == dtg.protocol
                    && t.vpc == self.d.vpc
                    && attachable(t)
            };
            // Prefer the group a listener already uses.
            let keeper = named
                .iter()
                .filter(same)
                .max_by_key(|t| (!t.load_balancers.is_empty(), t.name == dtg.name))
                .copied();
            match keeper {
                Some(t) => {
                    let tg = TgRef::Arn(t.arn.clone());
                    self.tg_refs.insert(key.clone(), tg.clone());
                    if t.health != dtg.health {
                        let before = serde_json::to_value(&t.health).unwrap_or_default();
                        let after = serde_json::to_value(&dtg.health).unwrap_or_default();
                        let attrs = health_attrs(&before, &after);
                        self.change(
                            format!("tg.{key}.health"),
                            Change {
                                resource: resource("target_group", &t.name, true),
                                action: Action::Update,
                                reason: "health check differs from the manifest; changed in place"
                                    .into(),
                                attrs,
                                op: Op::ModifyHealthCheck {
                                    tg: tg.clone(),
                                    health: dtg.health.clone(),
                                },
                            },
                        );
                    }
                    self.targets(key, &t.name, tg, Some(t));
                    for other in named.iter().filter(|o| o.arn != t.arn) {
                        self.delete_tg(other, &format!("a leftover copy of {}", t.name));
                    }
                }
                None => {
                    let old = named.first().copied();
                    let name = match old {
                        Some(o) => names::alternate(&o.name),
                        None => dtg.name.clone(),
                    };
                    let tg = TgRef::New {
                        key: key.clone(),
                        name: name.clone(),
                    };
                    self.tg_refs.insert(key.clone(), tg.clone());
                    let (action, reason, attrs) = match old {
                        Some(o) if !attachable(o) && o.port == dtg.port && o.protocol == dtg.protocol => (
                            Action::Replace,
                            format!("a group serves one load balancer only; a new group replaces {} for the new load balancer", o.name),
                            vec![attr("name", Some(json!(o.name)), Some(json!(name)))],
                        ),
                        Some(o) => (
                            Action::Replace,
                            format!("port, protocol or VPC cannot change in place; a new group replaces {} before it goes", o.name),
                            vec![
                                attr("name", Some(json!(o.name)), Some(json!(name))),
                                attr("port", Some(json!(o.port)), Some(json!(dtg.port))),
                                attr("protocol", Some(json!(o.protocol)), Some(json!(dtg.protocol))),
                            ],
                        ),
                        None => (
                            Action::Create,
                            "declared in the manifest and not found".to_owned(),
                            vec![
                                attr("name", None, Some(json!(name))),
                                attr("port", None, Some(json!(dtg.port))),
                                attr("protocol", None, Some(json!(dtg.protocol))),
                                attr("health_check", None, Some(json!(dtg.health.to_string()))),
                            ],
                        ),
                    };
                    let attrs = attrs.into_iter().filter(|a| a.before != a.after).collect();
                    self.change(
                        format!("tg.{key}.create"),
                        Change {
                            resource: resource("target_group", &name, true),
                            action,
                            reason,
                            attrs,
                            op: Op::CreateTargetGroup {
                                key: key.clone(),
                                name: name.clone(),
                                port: dtg.port,
                                protocol: dtg.protocol.clone(),
                                vpc: self.d.vpc.clone(),
                                health: dtg.health.clone(),
                                tags: self.d.tags.clone(),
                            },
                        },
                    );
                    self.targets(key, &name, tg, None);
                    for o in &named {
                        self.delete_tg(o, &format!("replaced by {name}"));
                    }
                }
            }
        }
        // Owned groups no longer in the manifest.
        let prefix = format!("{stack}-");
        let stale: Vec<&ObservedTg> = self
            .o
            .target_groups
            .iter()
            .filter(|t| t.name.starts_with(&prefix) && owned_by(&t.tags, stack))
            .filter(|t| !claimed.contains(&t.arn))
            .collect();
        for t in stale {
            self.delete_tg(t, "owned by the stack and no longer in the manifest");
        }
        // Which groups will receive traffic.
        let mut traffic: Vec<(String, TgRef)> = Vec::new();
        for l in self.d.load_balancer.listeners.values() {
            if let Some(tg) = self.tg_refs.get(&l.forward) {
                if !traffic.iter().any(|(k, _)| k == &l.forward) {
                    traffic.push((l.forward.clone(), tg.clone()));
                }
            }
        }
        self.out.traffic = traffic;
    }

    fn delete_tg(&mut self, t: &ObservedTg, reason: &str) {
        self.change(
            format!("tg.{}.delete", t.name),
            Change {
                resource: resource("target_group", &t.name, true),
                action: Action::Delete,
                reason: reason.to_owned(),
                attrs: vec![attr("arn", Some(json!(t.arn)), None)],
                op: Op::DeleteTargetGroup {
                    arn: t.arn.clone(),
                    name: t.name.clone(),
                },
            },
        );
    }

    fn targets(&mut self, key: &str, name: &str, tg: TgRef, live: Option<&ObservedTg>) {
        let Some(dtg) = self.d.target_groups.get(key) else {
            return;
        };
        let have: BTreeSet<&String> = live
            .map(|t| t.targets.iter().map(|h| &h.id).collect())
            .unwrap_or_default();
        let add: Vec<String> = dtg
            .targets
            .iter()
            .filter(|t| !have.contains(t))
            .cloned()
            .collect();
        let remove: Vec<String> = have
            .iter()
            .filter(|t| !dtg.targets.contains(**t))
            .map(|t| (*t).clone())
            .collect();
        if !add.is_empty() {
            self.change(
                format!("tg.{key}.targets.add"),
                Change {
                    resource: resource("targets", name, true),
                    action: Action::Create,
                    reason: "targets listed in the manifest and not registered".into(),
                    attrs: add
                        .iter()
                        .map(|t| attr("target", None, Some(json!(t))))
                        .collect(),
                    op: Op::RegisterTargets {
                        tg: tg.clone(),
                        key: key.to_owned(),
                        ids: add,
                    },
                },
            );
        }
        if !remove.is_empty() {
            self.change(
                format!("tg.{key}.targets.remove"),
                Change {
                    resource: resource("targets", name, true),
                    action: Action::Delete,
                    reason: "registered but no longer listed in the manifest".into(),
                    attrs: remove
                        .iter()
                        .map(|t| attr("target", Some(json!(t)), None))
                        .collect(),
                    op: Op::DeregisterTargets {
                        tg,
                        key: key.to_owned(),
                        ids: remove,
                    },
                },
            );
        }
    }

    // -----------------------------------------------------------------------------------
    // Load balancer and listeners

    /// Decides the load balancer; returns the one that will serve and, when it exists
    /// already, its observed state.
    fn load_balancer(&mut self) -> Option<(LbRef, Option<&'a ObservedLb>)> {
        let (d, o): (&'a Desired, &'a crate::model::Observed) = (self.d, self.o);
        let dlb = &d.load_balancer;
        let stack = &d.stack;
        let alt = names::alternate(&dlb.name);
        let named: Vec<&'a ObservedLb> = o
            .load_balancers
            .iter()
            .filter(|l| l.name == dlb.name || l.name == alt)
            .collect();
        if let Some(l) = named.iter().find(|l| !owned_by(&l.tags, stack)) {
            self.conflict("load balancer", &l.name, &l.arn);
            return None;
        }
        let keeper = named
            .iter()
            .filter(|l| l.scheme == dlb.scheme)
            .max_by_key(|l| (l.state == "active", l.listeners.len(), l.name == dlb.name))
            .copied();
        let groups: Vec<SgRef> = dlb.security_groups.iter().map(|g| self.sg_ref(g)).collect();
        let chosen = match keeper {
            Some(l) => {
                let lb = LbRef::Arn(l.arn.clone());
                let subnets: BTreeSet<String> = dlb.subnets.clone();
                if l.subnets != subnets {
                    self.change(
                        "lb.subnets".into(),
                        Change {
                            resource: resource("load_balancer", &l.name, true),
                            action: Action::Update,
                            reason: "subnets differ from the manifest; changed in place".into(),
                            attrs: vec![attr(
                                "subnets",
                                Some(json!(l.subnets)),
                                Some(json!(subnets)),
                            )],
                            op: Op::SetSubnets {
                                lb: lb.clone(),
                                subnets: subnets.into_iter().collect(),
                            },
                        },
                    );
                }
                let want: BTreeSet<String> = groups
                    .iter()
                    .map(|g| match g {
                        SgRef::Id(id) => id.clone(),
                        SgRef::New(k) => format!("(new group {k})"),
                    })
                    .collect();
                if l.security_groups != want {
                    self.change(
                        "lb.security_groups".into(),
                        Change {
                            resource: resource("load_balancer", &l.name, true),
                            action: Action::Update,
                            reason: "security groups differ from the manifest; changed in place"
                                .into(),
                            attrs: vec![attr(
                                "security_groups",
                                Some(json!(l.security_groups)),
                                Some(json!(want)),
                            )],
                            op: Op::SetSecurityGroups {
                                lb: lb.clone(),
                                groups: groups.clone(),
                            },
                        },
                    );
                }
                self.out.lb_not_active = l.state != "active";
                for other in named.iter().filter(|o| o.arn != l.arn) {
                    self.delete_lb(other, &format!("a leftover copy of {}", l.name));
                }
                (lb, Some(l))
            }
            None => {
                let old = named.first().copied();
                let name = old.map_or_else(|| dlb.name.clone(), |o| names::alternate(&o.name));
                let (action, reason, mut attrs) = match old {
                    Some(o) => (
                        Action::Replace,
                        format!("the scheme cannot change in place; {name} replaces {} and DNS moves before the old one goes", o.name),
                        vec![attr("scheme", Some(json!(o.scheme)), Some(json!(dlb.scheme)))],
                    ),
                    None => (
                        Action::Create,
                        "declared in the manifest and not found".to_owned(),
                        vec![attr("scheme", None, Some(json!(dlb.scheme)))],
                    ),
                };
                attrs.insert(
                    0,
                    attr("name", old.map(|o| json!(o.name)), Some(json!(name))),
                );
                attrs.push(attr("subnets", None, Some(json!(dlb.subnets))));
                self.change(
                    "lb.create".into(),
                    Change {
                        resource: resource("load_balancer", &name, true),
                        action,
                        reason,
                        attrs,
                        op: Op::CreateLoadBalancer {
                            name: name.clone(),
                            scheme: dlb.scheme.clone(),
                            subnets: dlb.subnets.iter().cloned().collect(),
                            security_groups: groups,
                            tags: self.d.tags.clone(),
                        },
                    },
                );
                for o in &named {
                    self.delete_lb(o, &format!("replaced by {name}"));
                }
                (LbRef::New(name), None)
            }
        };
        self.out.lb = Some(chosen.0.clone());
        Some(chosen)
    }

    fn delete_lb(&mut self, l: &ObservedLb, reason: &str) {
        self.change(
            format!("lb.{}.delete", l.arn.rsplit('/').next().unwrap_or(&l.name)),
            Change {
                resource: resource("load_balancer", &l.name, true),
                action: Action::Delete,
                reason: reason.to_owned(),
                attrs: vec![attr("arn", Some(json!(l.arn)), None)],
                op: Op::DeleteLoadBalancer {
                    arn: l.arn.clone(),
                    name: l.name.clone(),
                },
            },
        );
    }

    fn listeners(&mut self, lb: Option<&(LbRef, Option<&'a ObservedLb>)>) {
        let Some((lb_ref, live)) = lb else { return };
        let live_listeners = live.map(|l| l.listeners.as_slice()).unwrap_or_default();
        for (port, dl) in &self.d.load_balancer.listeners {
            let Some(tg) = self.tg_refs.get(&dl.forward).cloned() else {
                continue;
            };
            let cert = match &dl.certificate {
                Some(k) => match self.cert_arns.get(k) {
                    Some(arn) => Some(arn.clone()),
                    None => continue, // already a blocker
                },
                None => None,
            };
            let tg_label = match &tg {
                TgRef::Arn(arn) => self
                    .o
                    .tg_by_arn(arn)
                    .map_or(arn.clone(), |t| t.name.clone()),
                TgRef::New { name, .. } => name.clone(),
            };
            let name = format!("{port}/{}", dl.protocol);
            match live_listeners.iter().find(|l| l.port == *port) {
                None => self.change(
                    format!("listener.{port}.create"),
                    Change {
                        resource: resource("listener", &name, true),
                        action: Action::Create,
                        reason: "declared in the manifest and not found".into(),
                        attrs: vec![
                            attr("protocol", None, Some(json!(dl.protocol))),
                            attr("forward", None, Some(json!(tg_label))),
                            attr("certificate", None, cert.as_ref().map(|c| json!(c))),
                        ]
                        .into_iter()
                        .filter(|a| a.after.is_some())
                        .collect(),
                        op: Op::CreateListener {
                            lb: lb_ref.clone(),
                            port: *port,
                            protocol: dl.protocol.clone(),
                            certificate: cert,
                            tg,
                        },
                    },
                ),
                Some(l) => {
                    let mut attrs = Vec::new();
                    if l.protocol != dl.protocol {
                        attrs.push(attr(
                            "protocol",
                            Some(json!(l.protocol)),
                            Some(json!(dl.protocol)),
                        ));
                    }
                    let live_cert = l.certificates.first().cloned();
                    if live_cert != cert {
                        attrs.push(attr(
                            "certificate",
                            live_cert.map(|c| json!(c)),
                            cert.as_ref().map(|c| json!(c)),
                        ));
                    }
                    let forwards_right =
                        matches!(&tg, TgRef::Arn(arn) if l.forward == [arn.clone()]);
                    if !forwards_right {
                        let before: Vec<String> = l
                            .forward
                            .iter()
                            .map(|a| self.o.tg_by_arn(a).map_or(a.clone(), |t| t.name.clone()))
                            .collect();
                        attrs.push(attr(
                            "forward",
                            Some(json!(before.join(", "))),
                            Some(json!(tg_label)),
                        ));
                    }
                    // A group that does not serve this load balancer yet is attached with
                    // weight zero first, so that it is verified healthy before traffic moves.
                    let attached = match &tg {
                        TgRef::Arn(arn) => {
                            l.forward.contains(arn)
                                || l.standby.contains(arn)
                                || self.o.tg_by_arn(arn).is_some_and(|t| {
                                    live.is_some_and(|lb| t.load_balancers.contains(&lb.arn))
                                })
                        }
                        TgRef::New { .. } => false,
                    };
                    if !forwards_right && !attached {
                        self.change(
                            format!("listener.{port}.attach"),
                            Change {
                                resource: resource("listener", &name, true),
                                action: Action::Update,
                                reason: "attach the new group with weight 0, so that it is health-checked before it takes traffic".into(),
                                attrs: vec![attr("standby", None, Some(json!(tg_label)))],
                                op: Op::AttachStandby {
                                    arn: l.arn.clone(),
                                    port: *port,
                                    protocol: l.protocol.clone(),
                                    certificate: l.certificates.first().cloned(),
                                    serving: l.forward.clone(),
                                    tg: tg.clone(),
                                },
                            },
                        );
                    }
                    if !attrs.is_empty() {
                        self.change(
                            format!("listener.{port}.update"),
                            Change {
                                resource: resource("listener", &name, true),
                                action: Action::Update,
                                reason: "differs from the manifest; changed in place".into(),
                                attrs,
                                op: Op::ModifyListener {
                                    arn: l.arn.clone(),
                                    port: *port,
                                    protocol: dl.protocol.clone(),
                                    certificate: cert,
                                    tg,
                                },
                            },
                        );
                    }
                }
            }
        }
        for l in live_listeners {
            if !self.d.load_balancer.listeners.contains_key(&l.port) {
                self.change(
                    format!("listener.{}.delete", l.port),
                    Change {
                        resource: resource("listener", &format!("{}/{}", l.port, l.protocol), true),
                        action: Action::Delete,
                        reason: "no longer in the manifest".into(),
                        attrs: vec![attr("port", Some(json!(l.port)), None)],
                        op: Op::DeleteListener {
                            arn: l.arn.clone(),
                            port: l.port,
                        },
                    },
                );
            }
        }
    }
}

/// Attribute diffs between two health checks (as JSON objects), one per differing field.
fn health_attrs(before: &Value, after: &Value) -> Vec<AttrDiff> {
    let (Some(b), Some(a)) = (before.as_object(), after.as_object()) else {
        return vec![attr(
            "health_check",
            Some(before.clone()),
            Some(after.clone()),
        )];
    };
    a.iter()
        .filter(|(k, v)| b.get(*k) != Some(*v))
        .map(|(k, v)| {
            attr(
                &format!("health_check.{k}"),
                b.get(k).cloned(),
                Some(v.clone()),
            )
        })
        .collect()
}
