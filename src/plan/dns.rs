//! The DNS part of the diff: which records change, and the choreography of a change of
//! value (lower the TTL, wait the old one out, switch, wait, restore), resumed from the
//! wait markers an earlier run recorded in Route53.

use serde_json::json;

use super::diff::{attr, resource, Differ, StagedSwitch, SwitchedRecord};
use super::id::RecordPart;
use super::{Action, AttrDiff, Change, CutoverStep, DnsStep, LbRef, Mark, NodeId, Op, RecordValue};
use crate::manifest::net;
use crate::model::{
    normal_values, DesiredRecord, ObservedLb, ObservedRecord, RecordKind, RecordTo,
};
use crate::names;

/// Added to a wait whose start was recorded when the change was sent rather than when
/// Route53 reported it in sync: the time a change may take to reach every Route53 server
/// (Route53 documents that changes usually reach all of them within 60 seconds). A run
/// records the allowance it used in the marker (`apply --propagation-allowance`), and the
/// next run counts with the recorded one.
pub const PROPAGATION_ALLOWANCE: u32 = 60;

/// A wait start read from a marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub since: i64,
    pub ttl: u32,
    /// Recorded when the change was sent, not yet confirmed in sync: the propagation
    /// allowance to add to the wait (seconds).
    pub pending: Option<u32>,
}

impl Stamp {
    pub fn wait(&self) -> u32 {
        self.ttl + self.pending.unwrap_or(0)
    }
}

/// A stack's wait marker next to a record.
#[derive(Debug, Clone, Default)]
pub struct Marker {
    pub lowered: Option<Stamp>,
    pub switched: Option<Stamp>,
    /// A cutover step (the new value's share) and when it was written.
    pub weighed: Option<(u8, Stamp)>,
}

/// The TXT values of a marker: `reconcile:stack=<stack>`, then `<step>=<epoch>;ttl=<n>`
/// with `;pending=<allowance>` until the change is confirmed in sync (a bare `;pending`,
/// as earlier versions wrote it, stands for [`PROPAGATION_ALLOWANCE`]).
pub fn marker_values(
    stack: &str,
    step: &str,
    since: i64,
    ttl: u32,
    pending: Option<u32>,
) -> Vec<String> {
    let mut stamp = format!("{step}={since};ttl={ttl}");
    if let Some(allowance) = pending {
        stamp.push_str(&format!(";pending={allowance}"));
    }
    vec![format!("{}={stack}", names::STACK_TAG), stamp]
}

/// Reads a marker; `None` when it belongs to another stack or says nothing readable.
pub fn parse_marker(values: &[String], stack: &str) -> Option<Marker> {
    let owner = format!("{}={stack}", names::STACK_TAG);
    if !values.iter().any(|v| v == &owner) {
        return None;
    }
    let mut m = Marker::default();
    for v in values {
        let mut parts = v.split(';');
        let Some((step, since)) = parts.next().and_then(|p| p.split_once('=')) else {
            continue;
        };
        let Ok(since) = since.parse::<i64>() else {
            continue;
        };
        let mut stamp = Stamp {
            since,
            ttl: 0,
            pending: None,
        };
        for p in parts {
            match p.split_once('=') {
                Some(("ttl", t)) => stamp.ttl = t.parse().unwrap_or(0),
                Some(("pending", a)) => {
                    stamp.pending = Some(a.parse().unwrap_or(PROPAGATION_ALLOWANCE));
                }
                None if p == "pending" => stamp.pending = Some(PROPAGATION_ALLOWANCE),
                _ => {}
            }
        }
        match step {
            "lowered" => m.lowered = Some(stamp),
            "switched" => m.switched = Some(stamp),
            _ => {
                if let Some(p) = step.strip_prefix("weight-").and_then(|p| p.parse().ok()) {
                    m.weighed = Some((p, stamp));
                }
            }
        }
    }
    Some(m)
}

impl<'a> Differ<'a> {
    /// Does the record lead now to a load balancer of another stack (by its tag)? Then it
    /// is that stack's record, or this one's under an earlier `stack` name: moving it
    /// would build a second copy of the site and orphan the first, so the plan stops. (One
    /// carrying this stack's tag, adopted earlier, is read as the stack's own.)
    fn served_by_another_stack(&mut self, r: &DesiredRecord, relevant: &[&ObservedRecord]) -> bool {
        let leads_to = |lb: &ObservedLb| {
            let dns = net::normalize_dns(&lb.dns_name);
            relevant.iter().any(|o| o.leads_to(&dns))
        };
        let Some((lb, other)) = self.o.foreign_load_balancers.iter().find_map(|lb| {
            let other = lb.tags.get(names::STACK_TAG)?;
            (other != &self.d.stack && leads_to(lb)).then_some((lb, other))
        }) else {
            return false;
        };
        let stack = self.d.stack.clone();
        self.block(
            format!("dns record {}", r.name),
            format!(
                "{} leads to load balancer {} of stack \"{other}\", not to stack \"{stack}\"'s: both stacks would manage the record (or \"{other}\" is this stack under its earlier name, and planning on would build a second copy of the site and orphan the first)",
                r.name, lb.name
            ),
            &format!("keep the record in one stack only; to rename a stack, keep `stack` as \"{other}\" (the name is only an owner id), or take {} out of stack \"{other}\" first", r.name),
        );
        true
    }

    pub(super) fn dns(&mut self, lb: Option<&(LbRef, Option<&'a ObservedLb>)>) {
        let Some(dns) = &self.d.dns else { return };
        let Some(zone) = &self.o.zone else {
            self.block(
                "dns.zone",
                format!("no Route53 hosted zone named {}", dns.zone),
                "create the hosted zone, or correct `dns.zone`",
            );
            return;
        };
        for r in &dns.records {
            // What the record is to lead to; a load balancer that is blocked leaves its
            // records alone (the blocker says why).
            let target = match &r.to {
                RecordTo::LoadBalancer => match lb {
                    Some((lb_ref, live)) => Target::Lb(lb_ref, *live),
                    None => continue,
                },
                RecordTo::Values(v) => Target::Values(v),
            };
            let at_name: Vec<&ObservedRecord> =
                zone.records.iter().filter(|o| o.name == r.name).collect();
            // Records this one replaces: address records and CNAMEs at the name (a CNAME
            // replaces them all; an alias A replaces A and a CNAME).
            let relevant: Vec<&ObservedRecord> = at_name
                .iter()
                .filter(|o| match r.kind {
                    RecordKind::Cname => o.kind.leads_to_site(),
                    ref k => o.kind == *k || o.kind == RecordKind::Cname,
                })
                .copied()
                .collect();
            if self.served_by_another_stack(r, &relevant) {
                continue;
            }
            if r.kind == RecordKind::Cname {
                if let Some(other) = at_name.iter().find(|o| !relevant.contains(o)) {
                    self.block(
                        format!("dns record {}", r.name),
                        format!(
                            "{} also has a {} record, and a CNAME cannot share its name",
                            r.name, other.kind
                        ),
                        "use an alias record (\"type\": \"A\") for this name, or remove the other record",
                    );
                    continue;
                }
            }
            let marker_name = names::marker_record(&r.name);
            let marker_record = zone
                .records
                .iter()
                .find(|o| o.name == marker_name && o.kind == RecordKind::Txt);
            let marker = marker_record.and_then(|m| parse_marker(&m.values, &self.d.stack));
            // Weighted (or otherwise routed) sets at the name: this stack's cutover under
            // way, or sets it does not manage.
            let (old_id, new_id) = names::cutover_set_ids(&r.name, r.kind.as_str());
            let ours = |o: &&ObservedRecord, id: &str| {
                o.kind == r.kind
                    && o.weighted
                        .as_ref()
                        .is_some_and(|w| w.id == id && w.weight.is_some())
            };
            let pair_old = relevant.iter().find(|o| ours(o, &old_id)).copied();
            let pair_new = relevant.iter().find(|o| ours(o, &new_id)).copied();
            let routed: Vec<&&ObservedRecord> =
                relevant.iter().filter(|o| o.weighted.is_some()).collect();
            let pair = match (pair_old, pair_new) {
                (Some(o), Some(n)) if routed.len() == 2 && relevant.len() == 2 => Some((o, n)),
                _ if routed.is_empty() => None,
                _ => {
                    let ids: Vec<String> = routed
                        .iter()
                        .filter_map(|o| {
                            o.weighted
                                .as_ref()
                                .map(|w| format!("{} \"{}\"", o.kind, w.id))
                        })
                        .collect();
                    self.block(
                        format!("dns record {}", r.name),
                        format!("{} has routed record sets reconcile does not manage as a whole ({}): a weighted, latency or failover group placed by hand, or half of a cutover", r.name, ids.join(", ")),
                        "leave one simple record at the name (or the two sets of reconcile's cutover), then plan again",
                    );
                    continue;
                }
            };
            if let Some((old, new)) = pair {
                self.resume_cutover(r, &zone.id, &target, old, new, marker.as_ref());
                if let Some(m) = marker_record.filter(|_| marker.is_some()) {
                    self.clear_marker(&zone.id, m);
                }
                continue;
            }
            // Two weighted records of one name share a type: a cutover from a CNAME to an
            // A record (or back) cannot be weighted.
            // (A record that answers with the load balancer already has nothing to stage.)
            if let (Some(_), Target::Lb(..)) = (staged(r), &target) {
                let other = relevant
                    .iter()
                    .find(|o| o.kind != r.kind && !answers_lb(o, &target));
                if let Some(other) = other {
                    self.block(
                        format!("dns record {}", r.name),
                        format!("a cutover weighs the old value against the new one under one name and type, and {} is {} {} record now while the manifest makes it {} {}: Route53 keeps no weighted pair of two types", r.name, article(&other.kind), other.kind, article(&r.kind), r.kind),
                        &format!("declare the record with \"type\": \"{}\" (an alias A record to the load balancer replaces an A record), or remove `cutover` to switch at once", other.kind),
                    );
                    continue;
                }
            }
            let same_kind = relevant.iter().find(|o| o.kind == r.kind).copied();
            let value_ok = match (&target, same_kind) {
                _ if relevant.len() != 1 => false,
                (Target::Lb(_, Some(l)), Some(cur)) => {
                    let lb_name = net::normalize_dns(&l.dns_name);
                    if r.is_alias() {
                        cur.alias.as_ref().is_some_and(|a| a.dns_name == lb_name)
                    } else {
                        cur.alias.is_none() && cur.values == [lb_name]
                    }
                }
                (Target::Values(want), Some(cur)) => {
                    cur.alias.is_none() && normal_values(&cur.kind, &cur.values) == **want
                }
                _ => false,
            };
            let lb_value = target.value();
            if value_ok {
                let switched = marker.as_ref().and_then(|m| m.switched);
                if let Some(st) = switched {
                    // An earlier run switched: its answers still need waiting out before
                    // the direct path closes.
                    self.out.switched.push(SwitchedRecord {
                        name: r.name.clone(),
                        old_ttl_wait: None,
                        switch_wait: Some((st.wait(), Some(st.since))),
                        to_values: matches!(target, Target::Values(_)),
                        cutover: None,
                    });
                }
                let cur = same_kind.and_then(|c| c.ttl);
                if !r.is_alias() && cur != r.ttl {
                    let step = if switched.is_some() {
                        DnsStep::RestoreTtl
                    } else {
                        DnsStep::SetTtl
                    };
                    let reason = if switched.is_some() {
                        "the TTL at rest, once the switch has propagated and the old path is closed"
                    } else {
                        "TTL differs from the manifest; the value is already right"
                    };
                    let op = self.set_op(r, &zone.id, &r.kind, r.ttl, lb_value, vec![], step, None);
                    let attrs = vec![attr("ttl", cur.map(|t| json!(t)), r.ttl.map(|t| json!(t)))];
                    self.dns_change(op, attrs, reason);
                }
            } else {
                self.switch(r, &zone.id, &target, &relevant, marker.as_ref());
            }
            if let Some(m) = marker_record.filter(|_| marker.is_some()) {
                self.clear_marker(&zone.id, m);
            } else if marker.is_none() && !value_ok && !relevant.is_empty() {
                // This run writes the marker; it goes at the end of the choreography.
                self.clear_marker(
                    &zone.id,
                    &ObservedRecord {
                        name: marker_name,
                        kind: RecordKind::Txt,
                        ttl: Some(MARKER_TTL),
                        values: vec![],
                        alias: None,
                        weighted: None,
                    },
                );
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn set_op(
        &self,
        r: &DesiredRecord,
        zone_id: &str,
        kind: &RecordKind,
        ttl: Option<u32>,
        value: RecordValue,
        replaces: Vec<ObservedRecord>,
        step: DnsStep,
        mark: Option<(&str, u32)>,
    ) -> Op {
        Op::SetRecord {
            zone_id: zone_id.to_owned(),
            name: r.name.clone(),
            kind: kind.clone(),
            ttl,
            value,
            replaces,
            step,
            mark: mark.map(|(step, ttl)| Mark {
                record: names::marker_record(&r.name),
                stack: self.d.stack.clone(),
                step: step.to_owned(),
                ttl,
            }),
            cutover: None,
        }
    }

    fn clear_marker(&mut self, zone_id: &str, m: &ObservedRecord) {
        self.change(
            NodeId::Marker {
                record: m.name.clone(),
            },
            Change {
                resource: resource("dns_record", &format!("{} TXT", m.name), true),
                action: Action::Delete,
                reason: "the wait marker, once the record's change is complete".into(),
                attrs: vec![],
                op: Op::ClearMarker {
                    zone_id: zone_id.to_owned(),
                    record: m.clone(),
                },
            },
        );
    }

    /// Adds a change to a DNS record; its id and resource come from the operation.
    fn dns_change(&mut self, op: Op, attrs: Vec<AttrDiff>, reason: &str) {
        let Op::SetRecord {
            name, kind, step, ..
        } = &op
        else {
            return;
        };
        let part = match step {
            DnsStep::LowerTtl => RecordPart::LowerTtl,
            DnsStep::Switch => RecordPart::Switch,
            DnsStep::RestoreTtl => RecordPart::RestoreTtl,
            DnsStep::SetTtl => RecordPart::SetTtl,
            DnsStep::Weigh(p) => RecordPart::Weigh(*p),
        };
        let id = NodeId::Record {
            name: name.clone(),
            kind: kind.clone(),
            part,
        };
        let res = resource("dns_record", &format!("{name} {kind}"), false);
        self.change(
            id,
            Change {
                resource: res,
                action: Action::Update,
                reason: reason.to_owned(),
                attrs,
                op,
            },
        );
    }

    /// The DNS choreography for a record whose value must change.
    fn switch(
        &mut self,
        r: &DesiredRecord,
        zone_id: &str,
        target: &Target<'_>,
        relevant: &[&ObservedRecord],
        marker: Option<&Marker>,
    ) {
        let lb_value = target.value();
        let describe = |o: &ObservedRecord| match &o.alias {
            Some(a) => format!("{} ALIAS {}", o.kind, a.dns_name),
            None => format!("{} {}", o.kind, o.values.join(" ")),
        };
        let shown = match target {
            Target::Lb(LbRef::Arn(arn), _) => self
                .o
                .load_balancers
                .iter()
                .find(|l| &l.arn == arn)
                .map_or_else(|| "the load balancer".to_owned(), |l| l.dns_name.clone()),
            Target::Lb(LbRef::New(name), _) => {
                format!("(DNS name of {name}, known after it is created)")
            }
            Target::Values(v) => v.join(" "),
        };
        let alias = if r.is_alias() { "ALIAS " } else { "" };
        let after_value = format!("{} {alias}{shown}", r.kind);
        if relevant.is_empty() {
            let op = self.set_op(
                r,
                zone_id,
                &r.kind,
                r.ttl,
                lb_value,
                vec![],
                DnsStep::Switch,
                None,
            );
            self.change(
                NodeId::Record {
                    name: r.name.clone(),
                    kind: r.kind.clone(),
                    part: RecordPart::Create,
                },
                Change {
                    resource: resource("dns_record", &format!("{} {}", r.name, r.kind), false),
                    action: Action::Create,
                    reason: "declared in the manifest and not found; nobody holds an old answer"
                        .into(),
                    attrs: vec![
                        attr("value", None, Some(json!(after_value))),
                        attr("ttl", None, r.ttl.map(|t| json!(t))),
                    ],
                    op,
                },
            );
            self.out.switched.push(SwitchedRecord {
                name: r.name.clone(),
                old_ttl_wait: None,
                switch_wait: None,
                to_values: matches!(target, Target::Values(_)),
                cutover: None,
            });
            return;
        }
        // An alias answer is cached for the target's TTL: 60 s for a load balancer.
        let ttl_of = |o: &ObservedRecord| o.ttl.unwrap_or(60);
        let old_ttl = relevant.iter().map(|o| ttl_of(o)).max().unwrap_or(0);
        let transition = r.transition_ttl;
        let to_lower: Vec<&&ObservedRecord> = relevant
            .iter()
            .filter(|o| o.alias.is_none() && ttl_of(o) > transition)
            .collect();
        for o in &to_lower {
            let value = RecordValue::Values(o.values.clone());
            let mark = Some(("lowered", old_ttl));
            let op = self.set_op(
                r,
                zone_id,
                &o.kind,
                Some(transition),
                value,
                vec![],
                DnsStep::LowerTtl,
                mark,
            );
            let attrs = vec![attr(
                "ttl",
                o.ttl.map(|t| json!(t)),
                Some(json!(transition)),
            )];
            self.dns_change(
                op,
                attrs,
                "shorten the TTL before the switch, so that clients pick up the new value quickly",
            );
        }
        let old_ttl_wait = if !to_lower.is_empty() {
            Some((old_ttl, None))
        } else {
            // Lowered by an earlier run: its wait continues from the recorded start.
            marker
                .and_then(|m| m.lowered)
                .map(|st| (st.wait(), Some(st.since)))
        };
        let ttl_at_switch = relevant
            .iter()
            .map(|o| match o.alias {
                // Lowered by now, in this run or an earlier one.
                None => ttl_of(o).min(transition),
                Some(_) => ttl_of(o),
            })
            .max()
            .unwrap_or(0);
        let before = relevant
            .iter()
            .map(|o| describe(o))
            .collect::<Vec<_>>()
            .join(", ");
        let switch_ttl = if r.is_alias() { None } else { Some(transition) };
        let staged = staged(r).filter(|_| !relevant.iter().all(|o| answers_lb(o, target)));
        if let (Some(c), Target::Lb(..), [old]) = (staged, target, relevant) {
            let old = ObservedRecord {
                ttl: old.ttl.map(|t| t.min(transition)),
                weighted: None,
                ..(*old).clone()
            };
            let bakes = self.cutover_steps(
                r,
                zone_id,
                &lb_value,
                switch_ttl,
                &old,
                None,
                &c.steps,
                ttl_at_switch,
                (&before, &after_value),
            );
            self.out.switched.push(SwitchedRecord {
                name: r.name.clone(),
                old_ttl_wait,
                switch_wait: Some((ttl_at_switch, None)),
                to_values: false,
                cutover: Some(StagedSwitch {
                    bakes,
                    // Long enough for every old answer to have been asked again.
                    seconds: c.bake.max(ttl_at_switch),
                    max_5xx_basis_points: c.max_5xx_basis_points,
                    max_unhealthy: c.max_unhealthy,
                }),
            });
            return;
        }
        let replaces = relevant
            .iter()
            .filter(|o| o.kind != r.kind)
            .map(|o| (*o).clone())
            .collect();
        let op = self.set_op(
            r,
            zone_id,
            &r.kind,
            switch_ttl,
            lb_value.clone(),
            replaces,
            DnsStep::Switch,
            Some(("switched", ttl_at_switch)),
        );
        // A TTL already at the switch's (lowered by an earlier run) is no change to show.
        let attrs = vec![
            attr("value", Some(json!(before)), Some(json!(after_value))),
            attr("ttl", Some(json!(old_ttl)), switch_ttl.map(|t| json!(t))),
        ]
        .into_iter()
        .filter(|a| a.before != a.after)
        .collect();
        let reason = match target {
            Target::Lb(..) => {
                "point the name at the load balancer, once it serves and every target is healthy"
            }
            Target::Values(_) => {
                "point the name at its own values (back to the instances), once the direct path is open"
            }
        };
        self.dns_change(op, attrs, reason);
        if let (false, Some(ttl)) = (r.is_alias(), r.ttl) {
            if ttl != transition {
                let op = self.set_op(
                    r,
                    zone_id,
                    &r.kind,
                    Some(ttl),
                    lb_value,
                    vec![],
                    DnsStep::RestoreTtl,
                    None,
                );
                let attrs = vec![attr("ttl", Some(json!(transition)), Some(json!(ttl)))];
                self.dns_change(
                    op,
                    attrs,
                    "the TTL at rest, once the switch has propagated and the old path is closed",
                );
            }
        }
        self.out.switched.push(SwitchedRecord {
            name: r.name.clone(),
            old_ttl_wait,
            switch_wait: Some((ttl_at_switch, None)),
            to_values: matches!(target, Target::Values(_)),
            cutover: None,
        });
    }

    /// A cutover an earlier run left under way (the weighted pair of this stack's set ids):
    /// finished from the share it holds, its bake continued from the recorded start, when
    /// its new value is still the load balancer; blocked otherwise.
    fn resume_cutover(
        &mut self,
        r: &DesiredRecord,
        zone_id: &str,
        target: &Target<'_>,
        old: &ObservedRecord,
        new: &ObservedRecord,
        marker: Option<&Marker>,
    ) {
        let leads_to_target = match target {
            Target::Lb(_, Some(l)) => new.leads_to(&net::normalize_dns(&l.dns_name)),
            _ => false,
        };
        let share = new.weighted.as_ref().and_then(|w| w.weight).unwrap_or(0);
        if !leads_to_target {
            self.block(
                format!("dns record {}", r.name),
                format!("a cutover of {} is under way ({share}% of answers for {}), and the manifest no longer leads the record there", r.name, new.alias.as_ref().map_or_else(|| new.values.join(" "), |a| a.dns_name.clone())),
                "put `to` and the load balancer back to finish it, then change the record; or fold the weighted pair back into one record by hand",
            );
            return;
        }
        let old = ObservedRecord {
            weighted: None,
            ..old.clone()
        };
        let ttl_of = |o: &ObservedRecord| o.ttl.unwrap_or(60);
        let ttl_at_switch = ttl_of(&old).max(ttl_of(new));
        let steps: Vec<u8> = match &r.cutover {
            Some(c) => c.steps.iter().copied().filter(|s| *s > share).collect(),
            None => vec![100],
        };
        let steps = if steps.last() == Some(&100) {
            steps
        } else {
            vec![100]
        };
        let describe = |o: &ObservedRecord| match &o.alias {
            Some(a) => format!("{} ALIAS {}", o.kind, a.dns_name),
            None => format!("{} {}", o.kind, o.values.join(" ")),
        };
        let (before, after) = (describe(&old), describe(new));
        let new_ttl = if r.is_alias() { None } else { new.ttl };
        let mut bakes = self.cutover_steps(
            r,
            zone_id,
            &target.value(),
            new_ttl,
            &old,
            Some(share),
            &steps,
            ttl_at_switch,
            (&before, &after),
        );
        let since = marker
            .and_then(|m| m.weighed)
            .filter(|(p, _)| *p == share)
            .map(|(_, st)| st.since + i64::from(st.pending.unwrap_or(0)));
        if let Some(first) = bakes.first_mut().filter(|b| b.0 == share) {
            first.1 = since;
        }
        let (bake, max_5xx, max_unhealthy) = r.cutover.as_ref().map_or((0, 100, 0), |c| {
            (c.bake, c.max_5xx_basis_points, c.max_unhealthy)
        });
        // Without `cutover` now, the pair is folded into the new value at once.
        if r.cutover.is_none() {
            bakes.clear();
        }
        self.out.switched.push(SwitchedRecord {
            name: r.name.clone(),
            old_ttl_wait: None,
            switch_wait: Some((ttl_at_switch, None)),
            to_values: false,
            cutover: Some(StagedSwitch {
                bakes,
                seconds: bake.max(ttl_of(&old)),
                max_5xx_basis_points: max_5xx,
                max_unhealthy,
            }),
        });
    }

    /// The changes of a staged switch from share `from` (none: the simple old record) up
    /// through `steps` (the last one 100); returns its bakes: each share held below 100
    /// (the one it starts from first), with the change that reverts it.
    #[allow(clippy::too_many_arguments)]
    fn cutover_steps(
        &mut self,
        r: &DesiredRecord,
        zone_id: &str,
        value: &RecordValue,
        new_ttl: Option<u32>,
        old: &ObservedRecord,
        from: Option<u8>,
        steps: &[u8],
        ttl_at_switch: u32,
        shown: (&str, &str),
    ) -> Vec<(u8, Option<i64>, Op)> {
        let revert = |me: &Self, p: u8| {
            let mut op = me.set_op(
                r,
                zone_id,
                &r.kind,
                new_ttl,
                value.clone(),
                vec![],
                DnsStep::Weigh(0),
                None,
            );
            if let Op::SetRecord { cutover, .. } = &mut op {
                *cutover = Some(CutoverStep {
                    old: old.clone(),
                    from: Some(p),
                    to: 0,
                });
            }
            op
        };
        let mut bakes = Vec::new();
        if let Some(p) = from.filter(|p| (1..100).contains(p)) {
            bakes.push((p, None, revert(self, p)));
        }
        let mut prev = from;
        for &to in steps.iter().filter(|s| from.is_none_or(|f| **s > f)) {
            let (step, mark) = if to >= 100 {
                (DnsStep::Switch, "switched".to_owned())
            } else {
                (DnsStep::Weigh(to), format!("weight-{to}"))
            };
            let mut op = self.set_op(
                r,
                zone_id,
                &r.kind,
                new_ttl,
                value.clone(),
                vec![],
                step,
                Some((&mark, ttl_at_switch)),
            );
            if let Op::SetRecord { cutover, .. } = &mut op {
                *cutover = Some(CutoverStep {
                    old: old.clone(),
                    from: prev,
                    to: to.min(100),
                });
            }
            let share = |p: Option<u8>| json!(format!("{}% on the load balancer", p.unwrap_or(0)));
            let mut attrs = vec![attr("weight", Some(share(prev)), Some(share(Some(to))))];
            if prev.is_none() {
                attrs.insert(
                    0,
                    attr(
                        "value",
                        Some(json!(shown.0)),
                        Some(json!(format!(
                            "{} (weighted, beside the old value)",
                            shown.1
                        ))),
                    ),
                );
            }
            let reason = match (prev, to) {
                (None, _) => "the first share of answers for the load balancer, as a weighted pair with the old value (one batch), once it serves and every target is healthy",
                (Some(_), 100) => "every answer for the load balancer: the weighted pair folded back into one record, once every share held without a breach",
                (Some(_), _) => "a larger share of answers for the load balancer, once the one before held without a breach",
            };
            self.dns_change(op, attrs, reason);
            if to < 100 {
                bakes.push((to, None, revert(self, to)));
            }
            prev = Some(to);
        }
        bakes
    }
}

/// What a record is to lead to.
enum Target<'o> {
    /// The stack's load balancer, and its observed state when it exists.
    Lb(&'o LbRef, Option<&'o ObservedLb>),
    /// The record's own values, in normal form.
    Values(&'o Vec<String>),
}

impl Target<'_> {
    fn value(&self) -> RecordValue {
        match self {
            Target::Lb(l, _) => RecordValue::LoadBalancer((*l).clone()),
            Target::Values(v) => RecordValue::Values((*v).clone()),
        }
    }
}

/// TTL of the wait markers themselves (nobody resolves them; short keeps them cheap).
pub const MARKER_TTL: u32 = 60;

/// The record's cutover, when it stages anything (a step below 100).
fn staged(r: &DesiredRecord) -> Option<&crate::model::DesiredCutover> {
    r.cutover
        .as_ref()
        .filter(|c| c.steps.iter().any(|s| *s < 100))
}

/// Whether the record answers with the load balancer already (an alias to it, or a CNAME
/// to its name): a switch from it to another record type on the load balancer stages
/// nothing.
fn answers_lb(o: &ObservedRecord, target: &Target<'_>) -> bool {
    let Target::Lb(_, Some(l)) = target else {
        return false;
    };
    let lb_name = net::normalize_dns(&l.dns_name);
    match &o.alias {
        Some(a) => a.dns_name == lb_name,
        None => o.kind == RecordKind::Cname && o.values == [lb_name],
    }
}

/// "an" before A and AAAA, "a" before CNAME and the rest.
fn article(kind: &RecordKind) -> &'static str {
    if kind.as_str().starts_with('A') {
        "an"
    } else {
        "a"
    }
}
