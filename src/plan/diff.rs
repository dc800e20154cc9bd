//! Desired against observed: the typed changes, each with attribute-level before/after and a
//! reason, plus the blockers (conflicts, missing prerequisites). Pure.
//!
//! Ownership is decided here and only here: a resource is changed or deleted only when it
//! carries `reconcile:stack=<stack>`, except the two declared exceptions (the ingress rules
//! of an `existing` group, and the records under `dns.records`). A resource that has a
//! derived name but not the tag is a blocker, never taken over.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::{Action, AttrDiff, Blocker, Change, LbRef, NodeId, Op, Resource, Tagged, TgRef};
use crate::manifest::net;
use crate::model::{CertSpec, Desired, Tags};
use crate::names;

/// What the diff decided: changes by id, blockers, and the facts the graph needs.
#[derive(Debug, Default)]
pub struct Decided {
    pub changes: Vec<(NodeId, Change)>,
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
    /// The record moves to its own values (back to the instances): the rules opening the
    /// direct path are read back before it switches.
    pub to_values: bool,
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
    /// AWS names held by something the stack does not own (each already a blocker).
    pub(super) taken: BTreeSet<String>,
    /// ARNs and ids of what this plan adopts (tagged by its adoption, not retagged).
    pub(super) adopting: BTreeSet<String>,
}

pub fn diff(d: &Desired, o: &crate::model::Observed) -> Decided {
    let mut x = Differ {
        d,
        o,
        out: Decided::default(),
        sg_ids: BTreeMap::new(),
        tg_refs: BTreeMap::new(),
        cert_arns: BTreeMap::new(),
        taken: BTreeSet::new(),
        adopting: BTreeSet::new(),
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

/// The ARN or id of a tagged resource.
pub(super) fn tagged_id(t: &Tagged) -> &str {
    match t {
        Tagged::LoadBalancer { arn } | Tagged::TargetGroup { arn } => arn,
        Tagged::SecurityGroup { id } => id,
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
    pub(super) fn change(&mut self, id: NodeId, change: Change) {
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

    /// A change setting the manifest's tags on a resource the stack keeps, when any of them
    /// is missing or has another value. Tags the manifest does not name are left alone:
    /// AWS and other tools add their own.
    pub(super) fn retag(&mut self, id: NodeId, kind: &str, name: &str, live: &Tags, on: Tagged) {
        let want = self.d.tags.clone();
        self.retag_to(id, (kind, name), live, &want, on);
    }

    /// As [`Self::retag`], to the tags `want` (the manifest's, and for the load balancer
    /// its own).
    pub(super) fn retag_to(
        &mut self,
        id: NodeId,
        (kind, name): (&str, &str),
        live: &Tags,
        want: &Tags,
        on: Tagged,
    ) {
        if self.adopting.contains(tagged_id(&on)) {
            return;
        }
        let differ: Tags = want
            .iter()
            .filter(|(k, v)| live.get(*k) != Some(*v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if differ.is_empty() {
            return;
        }
        let attrs = tag_attrs(want, live);
        self.change(
            id,
            Change {
                resource: resource(kind, name, true),
                action: Action::Update,
                reason: "tags differ from the manifest; set in place (tags it does not name stay)"
                    .into(),
                attrs,
                op: Op::SetTags {
                    resource: on,
                    tags: differ,
                },
            },
        );
    }

    /// A resource the manifest names by `adopt` (at `path`), found as `live`: taken over
    /// by tagging it with the stack first, unless it carries the stack's tag already (an
    /// earlier run adopted it). Returns whether the stack may treat it as its own; one
    /// another stack owns is a blocker.
    pub(super) fn adopt(
        &mut self,
        path: &str,
        (id, kind, name): (NodeId, &str, &str),
        live: &Tags,
        on: Tagged,
    ) -> bool {
        let want = self.d.tags.clone();
        self.adopt_with(path, (id, kind, name), live, &want, on)
    }

    /// As [`Self::adopt`], tagging with `want` (the load balancer's own tags).
    pub(super) fn adopt_with(
        &mut self,
        path: &str,
        (id, kind, name): (NodeId, &str, &str),
        live: &Tags,
        want: &Tags,
        on: Tagged,
    ) -> bool {
        match live.get(names::STACK_TAG) {
            Some(owner) if *owner == self.d.stack => true,
            Some(owner) => {
                let owner = owner.clone();
                self.block(
                    path,
                    format!("{kind} {name} belongs to stack {owner} (tag {}={owner}); a resource has one owner", names::STACK_TAG),
                    &format!("remove `adopt` here, or take it out of stack {owner}'s manifest and its tag off first"),
                );
                false
            }
            None => {
                let attrs = tag_attrs(want, live);
                self.adopting.insert(tagged_id(&on).to_owned());
                self.change(
                    id,
                    Change {
                        resource: resource(kind, name, true),
                        action: Action::Adopt,
                        reason: format!("named by `{path}`: made by hand; tagged with the stack before any other change, then managed as the stack's own"),
                        attrs,
                        op: Op::Adopt {
                            resource: on,
                            tags: want.clone(),
                        },
                    },
                );
                true
            }
        }
    }

    pub(super) fn conflict(&mut self, kind: &str, name: &str, id: &str) {
        let tag = format!("{}={}", names::STACK_TAG, self.d.stack);
        self.taken.insert(name.to_owned());
        self.block(
            format!("{kind} {name}"),
            format!("{name} ({id}) has the name this stack derives but not the tag {tag}; reconcile never takes over what it does not own"),
            "rename or delete that resource, or add the tag if it really belongs to this stack",
        );
    }

    // -----------------------------------------------------------------------------------
    // Certificates

    pub(super) fn certificates(&mut self) {
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
            .iter()
            .flat_map(|lb| lb.listeners.values())
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
}

/// The tags of `want` that `live` lacks or holds with another value, before and after.
fn tag_attrs(want: &Tags, live: &Tags) -> Vec<AttrDiff> {
    want.iter()
        .filter(|(k, v)| live.get(*k) != Some(*v))
        .map(|(k, v)| {
            attr(
                &format!("tags.{k}"),
                live.get(k).map(|b| Value::from(b.as_str())),
                Some(Value::from(v.as_str())),
            )
        })
        .collect()
}
