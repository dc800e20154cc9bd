//! The target-group part of the diff: groups kept, changed in place, replaced (a new group
//! under the alternate name, verified before it takes traffic), or deleted; registrations.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use super::diff::{attr, resource, Differ};
use super::graph::Class;
use super::id::TgPart;
use super::{Action, AttrDiff, Change, DnsStep, HealthStep, NodeId, Op, Pace, Tagged, TgRef};
use crate::model::{owned_by, HealthCheck, ObservedTg};
use crate::names;

impl<'a> Differ<'a> {
    /// `serving_lb`: the ARN of the load balancer that will serve when it exists already
    /// (`Some(None)` when a new one is created, `None` when it is blocked).
    pub(super) fn target_groups(&mut self, serving_lb: Option<Option<&str>>) {
        let stack = &self.d.stack;
        let mut claimed: BTreeSet<String> = BTreeSet::new();
        for (key, dtg) in &self.d.target_groups {
            let alt = names::alternate(&dtg.name);
            let adopting = dtg.adopt.as_deref();
            let named: Vec<&ObservedTg> = self
                .o
                .target_groups
                .iter()
                .filter(|t| t.name == dtg.name || t.name == alt || Some(t.arn.as_str()) == adopting)
                .collect();
            if let Some(arn) = adopting {
                let path = format!("target_groups.{key}.adopt");
                match named.iter().find(|t| t.arn == arn) {
                    // Adopted by an earlier run, then replaced under the stack's name.
                    None if named.iter().any(|t| owned_by(&t.tags, stack)) => {}
                    None => {
                        self.block(
                            path,
                            format!("target group {arn} does not exist"),
                            "check the ARN and the region (aws elbv2 describe-target-groups), or remove `adopt` to have the stack create its own",
                        );
                        continue;
                    }
                    Some(t) => {
                        let node = (
                            NodeId::tg(key, TgPart::Adopt),
                            "target_group",
                            t.name.as_str(),
                        );
                        let on = Tagged::TargetGroup { arn: t.arn.clone() };
                        if !self.adopt(&path, node, &t.tags, on) {
                            continue;
                        }
                    }
                }
            }
            let ours =
                |t: &ObservedTg| owned_by(&t.tags, stack) || Some(t.arn.as_str()) == adopting;
            if let Some(t) = named.iter().find(|t| !ours(t)) {
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
                            NodeId::tg(key, TgPart::Health),
                            Change {
                                resource: resource("target_group", &t.name, true),
                                action: Action::Update,
                                reason: "health check differs from the manifest; changed in place"
                                    .into(),
                                attrs,
                                op: Op::ModifyHealthCheck {
                                    tg: tg.clone(),
                                    health: dtg.health.clone(),
                                    step: HealthStep::InPlace,
                                },
                            },
                        );
                    }
                    self.retag(
                        NodeId::tg(key, TgPart::Tags),
                        "target_group",
                        &t.name,
                        &t.tags,
                        Tagged::TargetGroup { arn: t.arn.clone() },
                    );
                    self.targets(key, &t.name, tg, Some(t));
                    for other in named.iter().filter(|o| o.arn != t.arn) {
                        self.delete_tg(other, &format!("a leftover copy of {}", t.name));
                    }
                }
                None => {
                    // With both names taken (an apply stopped during a replacement, then
                    // the manifest changed again), the new group takes the name of the one
                    // that serves nothing, deleted first; with both in use, the replacement
                    // under way must finish first.
                    // In use: a listener of the stack's load balancers forwards to it or
                    // holds it on standby (as read from the listeners, not from the
                    // group's own list of load balancers, which moto keeps stale).
                    let in_use = |t: &&ObservedTg| {
                        self.o
                            .load_balancers
                            .iter()
                            .flat_map(|l| &l.listeners)
                            .any(|x| x.forward.contains(&t.arn) || x.standby.contains(&t.arn))
                    };
                    let (old, freed) = match named.as_slice() {
                        [a, b] => match (in_use(a), in_use(b)) {
                            (true, true) => {
                                self.block(
                                    format!("target group {}", dtg.name),
                                    format!("both names of the group, {} and {}, are taken by groups the load balancer uses: a replacement of the group was stopped half-way", a.name, b.name),
                                    "apply the manifest that started the replacement until it completes, then this one",
                                );
                                continue;
                            }
                            (false, _) => (Some(*b), Some(*a)),
                            (true, false) => (Some(*a), Some(*b)),
                        },
                        _ => (named.first().copied(), None),
                    };
                    // The other of the stack's two names (its base name when the group
                    // replaced was taken over under a name of its own).
                    let name = match old {
                        Some(o) if o.name == dtg.name || o.name == alt => names::alternate(&o.name),
                        _ => dtg.name.clone(),
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
                        NodeId::tg(key, TgPart::Create),
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
                                after_deleting: freed.map(|f| f.name.clone()),
                            },
                        },
                    );
                    self.targets(key, &name, tg, None);
                    for o in &named {
                        match freed {
                            Some(f) if f.arn == o.arn => self.free_tg_name(o),
                            _ => self.delete_tg(o, &format!("replaced by {name}")),
                        }
                    }
                }
            }
        }
        // Owned groups no longer in the manifest.
        // (The read holds only groups named `<stack>-...`, adopted, or used by the
        // stack's load balancers; the tag decides.)
        let stale: Vec<&ObservedTg> = self
            .o
            .target_groups
            .iter()
            .filter(|t| owned_by(&t.tags, stack))
            .filter(|t| !claimed.contains(&t.arn))
            .collect();
        for t in stale {
            self.delete_tg(t, "owned by the stack and no longer in the manifest");
        }
        // Which groups will receive traffic.
        let mut traffic: Vec<(String, TgRef)> = Vec::new();
        for l in self
            .d
            .load_balancer
            .iter()
            .flat_map(|lb| lb.listeners.values())
        {
            let Some(key) = l.to.forward() else { continue };
            if let Some(tg) = self.tg_refs.get(key) {
                if !traffic.iter().any(|(k, _)| k == key) {
                    traffic.push((key.to_owned(), tg.clone()));
                }
            }
        }
        self.out.traffic = traffic;
    }

    /// Deletes a group of the stack that serves nothing, first, so that a new group can
    /// take its name.
    fn free_tg_name(&mut self, t: &ObservedTg) {
        self.remove_tg(
            t,
            "serves nothing; deleted first so that the new group can take its name",
            true,
        );
    }

    pub(super) fn delete_tg(&mut self, t: &ObservedTg, reason: &str) {
        self.remove_tg(t, reason, false);
    }

    fn remove_tg(&mut self, t: &ObservedTg, reason: &str, frees_name: bool) {
        self.change(
            NodeId::TargetGroupDelete {
                name: t.name.clone(),
            },
            Change {
                resource: resource("target_group", &t.name, true),
                action: Action::Delete,
                reason: reason.to_owned(),
                attrs: vec![attr("arn", Some(json!(t.arn)), None)],
                op: Op::DeleteTargetGroup {
                    arn: t.arn.clone(),
                    name: t.name.clone(),
                    frees_name,
                },
            },
        );
    }

    pub(super) fn targets(&mut self, key: &str, name: &str, tg: TgRef, live: Option<&ObservedTg>) {
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
                NodeId::tg(key, TgPart::TargetsAdd),
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
                NodeId::tg(key, TgPart::TargetsRemove),
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
}

impl Differ<'_> {
    /// `health_check.transition`, once every other change is decided: a group the plan
    /// waits on (for a reason other than its own health check: something built, or a
    /// switch) is checked with the faster values while it waits, created with them or set
    /// to them before its gate, and set back to the resting values as one of the plan's last
    /// changes. A group found on its transition values with nothing left to wait for (a run
    /// stopped after its switch) gets the resting ones back the same way. Records each
    /// serving group's timing at its gate.
    pub(super) fn health_transitions(&mut self) {
        let waits = self.out.changes.iter().any(|(_, c)| match c.op.class() {
            Class::Build => !matches!(c.op, Op::ModifyHealthCheck { .. }),
            Class::Dns(DnsStep::Switch) => true,
            Class::Dns(_)
            | Class::Removal
            | Class::Label
            | Class::Clear
            | Class::Adopt
            | Class::Rest => false,
        });
        let traffic = self.out.traffic.clone();
        for (key, tg) in &traffic {
            let Some(dtg) = self.d.target_groups.get(key) else {
                continue;
            };
            let live = match tg {
                TgRef::Arn(arn) => self.o.target_groups.iter().find(|t| &t.arn == arn),
                TgRef::New { .. } => None,
            };
            let adds = self
                .out
                .changes
                .iter()
                .any(|(id, _)| *id == NodeId::tg(key, TgPart::TargetsAdd));
            // Targets that must turn healthy: registered by this plan, in a group nothing
            // checks yet, or not healthy now. A group whose targets are all healthy passes
            // its gate at once, and keeps its values.
            let must_wait = adds
                || live.is_none_or(|t| {
                    t.load_balancers.is_empty()
                        || t.targets
                            .iter()
                            .any(|h| h.state != crate::model::TargetState::Healthy)
                });
            let resting = &dtg.health;
            let in_force = match (tg, live) {
                (TgRef::Arn(_), Some(t)) if !self.has(&NodeId::tg(key, TgPart::Health)) => {
                    t.health.clone()
                }
                _ => resting.clone(),
            };
            let pace = match &dtg.transition {
                Some(fast) if waits && must_wait => {
                    self.transition(key, tg, live, fast);
                    Pace::of(fast)
                }
                Some(fast) if live.is_some_and(|t| &t.health == fast) => {
                    self.back_to_rest(key);
                    Pace::of(fast)
                }
                Some(_) | None => Pace::of(&in_force),
            };
            self.out.pace.insert(key.clone(), pace);
        }
    }

    fn has(&self, id: &NodeId) -> bool {
        self.out.changes.iter().any(|(i, _)| i == id)
    }

    fn transition(&mut self, key: &str, tg: &TgRef, live: Option<&ObservedTg>, fast: &HealthCheck) {
        let Some(dtg) = self.d.target_groups.get(key) else {
            return;
        };
        let name = match tg {
            TgRef::New { name, .. } => name.clone(),
            TgRef::Arn(_) => live.map(|t| t.name.clone()).unwrap_or_default(),
        };
        match live {
            None => {
                for (id, c) in &mut self.out.changes {
                    if *id != NodeId::tg(key, TgPart::Create) {
                        continue;
                    }
                    if let Op::CreateTargetGroup { health, .. } = &mut c.op {
                        *health = fast.clone();
                    }
                    for a in &mut c.attrs {
                        if a.name == "health_check" {
                            a.after = Some(json!(fast.to_string()));
                        }
                    }
                    c.reason.push_str(
                        "; checked with the transition's faster values until the move is over",
                    );
                }
            }
            Some(t) => {
                // The resting values in place, if they differ, are the restore's to set.
                self.out
                    .changes
                    .retain(|(id, _)| *id != NodeId::tg(key, TgPart::Health));
                if &t.health != fast {
                    let attrs = health_attrs(&json!(t.health), &json!(fast));
                    self.change(
                        NodeId::tg(key, TgPart::HealthTransition),
                        Change {
                            resource: resource("target_group", &name, true),
                            action: Action::Update,
                            reason: "faster health checks while the plan waits on the group's targets (health_check.transition)".into(),
                            attrs,
                            op: Op::ModifyHealthCheck {
                                tg: tg.clone(),
                                health: fast.clone(),
                                step: HealthStep::Transition,
                            },
                        },
                    );
                }
            }
        }
        let attrs = health_attrs(&json!(fast), &json!(dtg.health));
        self.change(
            NodeId::tg(key, TgPart::HealthRest),
            Change {
                resource: resource("target_group", &name, true),
                action: Action::Update,
                reason: "the resting health check, once the move is over (the switch's old answers expired)".into(),
                attrs,
                op: Op::ModifyHealthCheck {
                    tg: tg.clone(),
                    health: dtg.health.clone(),
                    step: HealthStep::Rest,
                },
            },
        );
    }

    /// A group left on its transition values: the in-place change of its health check
    /// becomes the restore, after the rest of the move.
    fn back_to_rest(&mut self, key: &str) {
        for (id, c) in &mut self.out.changes {
            if *id != NodeId::tg(key, TgPart::Health) {
                continue;
            }
            *id = NodeId::tg(key, TgPart::HealthRest);
            c.reason = "still on the transition's faster health checks: the resting ones, once the move is over".into();
            if let Op::ModifyHealthCheck { step, .. } = &mut c.op {
                *step = HealthStep::Rest;
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
