//! Desired against observed: the typed changes, each with attribute-level before/after and a
//! reason, plus the blockers (conflicts, missing prerequisites). Pure.
//!
//! Ownership is decided here and only here: a resource is changed or deleted only when it
//! carries `reconcile:stack=<stack>`, except the two declared exceptions (the ingress rules
//! of an `existing` group, and the records under `dns.records`). A resource that has a
//! derived name but not the tag is a blocker, never taken over.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::id::CertPart;
use super::{
    Action, AttrDiff, Blocker, CertRef, Change, LbRef, NodeId, Op, Resource, Tagged, TgRef, Warning,
};
use crate::manifest::net::{self, CertStore};
use crate::model::{owned_by, CertSpec, CertStatus, Desired, ObservedCert, Tags, ValidationRecord};
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
    /// What the plan should say without it being a change (a certificate about to expire).
    pub warnings: Vec<Warning>,
    /// Certificates ACM is to issue during the run, by key: a gate waits for each.
    pub issuing: Vec<(String, CertRef)>,
    /// Each serving group's health-check timing when its health gate runs, by key.
    pub pace: BTreeMap<String, super::Pace>,
}

/// ACM's idempotency token for a request (at most 32 word characters): the same stack,
/// certificate and names give the same token, so a request repeated within the hour (a
/// lost answer, a run killed right after it) returns the certificate already requested.
/// The idempotency token of a request: the same for a retry of the same request, another
/// once ACM failed the ones made before (`failed`, their ARNs), so that asking again within
/// ACM's hour makes a new request rather than answering with the failed one.
fn request_token(stack: &str, key: &str, names: &[String], failed: &[&str]) -> String {
    use sha2::Digest;
    let mut text = format!("{stack}\n{key}\n{}", names.join("\n"));
    for f in failed {
        text.push_str("\nafter ");
        text.push_str(f);
    }
    let digest = sha2::Sha256::digest(text);
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
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
    /// The switch is staged: the shares held and watched before the last step.
    pub cutover: Option<StagedSwitch>,
}

/// The bakes of a staged switch, in order: each share held below 100, since when if an
/// earlier run wrote it, and the change that takes the record back from it on a breach.
#[derive(Debug, Clone)]
pub struct StagedSwitch {
    pub bakes: Vec<(u8, Option<i64>, Op)>,
    /// How long each share is held: the manifest's bake, and never less than the old
    /// value's TTL (by then every client holding the old answer has asked again).
    pub seconds: u32,
    pub max_5xx_basis_points: u32,
    pub max_unhealthy: u32,
}

pub(super) struct Differ<'a> {
    pub(super) d: &'a Desired,
    pub(super) o: &'a crate::model::Observed,
    pub(super) out: Decided,
    /// Manifest key → id of a security group that exists.
    pub(super) sg_ids: BTreeMap<String, String>,
    /// Target-group key → reference of the group that will serve.
    pub(super) tg_refs: BTreeMap<String, TgRef>,
    /// Certificate key → the certificate its listeners use (found, or being issued).
    pub(super) cert_refs: BTreeMap<String, CertRef>,
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
        cert_refs: BTreeMap::new(),
        taken: BTreeSet::new(),
        adopting: BTreeSet::new(),
    };
    x.certificates();
    x.retire_certificates();
    x.security_groups();
    let lb = x.load_balancer();
    x.target_groups(lb.as_ref().map(|(_, live)| live.map(|l| l.arn.as_str())));
    x.listeners(lb.as_ref());
    x.dns(lb.as_ref());
    x.stale_security_groups();
    x.health_transitions();
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

    /// Warnings about a certificate the listeners are to use: it expires soon, or ACM
    /// fails to renew it.
    fn certificate_health(&mut self, key: &str, c: &crate::model::ObservedCert) {
        let subject = format!("certificates.{key}");
        if c.expiring {
            let when = c
                .not_after
                .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
                .and_then(|t| {
                    t.format(time::macros::format_description!("[year]-[month]-[day]"))
                        .ok()
                })
                .unwrap_or_else(|| "soon".to_owned());
            self.out.warnings.push(Warning {
                drift: true,
                subject: subject.clone(),
                message: format!(
                    "certificate {} expires on {when}, within {} days",
                    c.arn,
                    crate::model::EXPIRY_WARNING_DAYS
                ),
                hint: match c.store {
                    CertStore::Acm => "ACM renews the certificates it issued while their DNS validation records stay in the zone; an imported one must be imported again (or pin another)",
                    CertStore::Iam => "AWS never renews an IAM server certificate: upload its successor and pin that, or move to ACM (`domain` with \"request\": true)",
                }
                .into(),
            });
        }
        if let Some(r) = c.renewal.as_deref().filter(|r| *r != "SUCCESS") {
            self.out.warnings.push(Warning {
                drift: true,
                subject,
                message: format!("ACM's renewal of certificate {} is {r}, not SUCCESS", c.arn),
                hint: "check that its validation CNAME records are still in the zone (aws acm describe-certificate shows them)".into(),
            });
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
            let issued_covering = |names: &[String]| {
                self.o
                    .certificates
                    .iter()
                    .filter(|c| c.status == CertStatus::Issued && c.store == CertStore::Acm)
                    .filter(|c| {
                        names
                            .iter()
                            .all(|d| c.names.iter().any(|n| net::covers(n, d)))
                    })
                    // The stack's own first: it goes once unused, another is never touched.
                    .max_by_key(|c| (owned_by(&c.tags, &self.d.stack), c.not_after, c.arn.clone()))
            };
            let found = match spec {
                CertSpec::Domain(domain) => issued_covering(std::slice::from_ref(domain)),
                CertSpec::Request(names) => match issued_covering(names) {
                    Some(c) => Some(c),
                    None => {
                        self.request_certificate(key, names);
                        continue;
                    }
                },
                CertSpec::Arn(arn) => self.o.certificates.iter().find(|c| &c.arn == arn),
            };
            match (found, spec) {
                (Some(c), _) if c.status == CertStatus::Issued => {
                    self.cert_refs
                        .insert(key.clone(), CertRef::Arn(c.arn.clone()));
                    self.certificate_health(key, c);
                }
                (Some(c), _) => self.block(
                    format!("certificates.{key}"),
                    format!("certificate {} is {}, not ISSUED", c.arn, c.status),
                    match c.store {
                        CertStore::Acm => "finish its validation in ACM, or pin another certificate",
                        CertStore::Iam => "an expired IAM server certificate cannot serve: upload its successor and pin that, or move to ACM",
                    },
                ),
                (None, CertSpec::Domain(domain)) => self.block(
                    format!("certificates.{key}"),
                    format!("no ISSUED ACM certificate covers {domain}"),
                    "request or import one in ACM in the stack's region (wildcards count), pin one by `arn`, or add \"request\": true to have the stack request it",
                ),
                (None, _) => {
                    let arn = match spec {
                        CertSpec::Arn(a) => a.as_str(),
                        _ => "",
                    };
                    self.block(
                        format!("certificates.{key}"),
                        format!("certificate {arn} does not exist"),
                        match net::cert_store(arn) {
                            Some(CertStore::Iam) => "check the ARN, path included (aws iam list-server-certificates lists the account's)",
                            _ => "check the ARN and the region",
                        },
                    )
                }
            }
        }
        // Every record must be covered by some HTTPS listener's certificate: one found
        // (its names as ACM has them), or one being issued (the names requested).
        let https: Vec<&String> = self
            .d
            .load_balancer
            .iter()
            .flat_map(|lb| lb.listeners.values())
            .filter_map(|l| l.certificate.as_ref())
            .filter(|k| self.cert_refs.contains_key(*k))
            .collect();
        if https.is_empty() {
            return;
        }
        let names_of = |k: &String| -> Vec<String> {
            match self.cert_refs.get(k) {
                Some(CertRef::Arn(arn)) => self
                    .o
                    .certificates
                    .iter()
                    .find(|c| &c.arn == arn)
                    .map(|c| c.names.clone())
                    .unwrap_or_default(),
                Some(CertRef::Issuing { .. }) => self
                    .d
                    .certificates
                    .get(k)
                    .map(CertSpec::names)
                    .unwrap_or_default(),
                None => vec![],
            }
        };
        let covering: Vec<String> = https.iter().flat_map(|k| names_of(k)).collect();
        let uncovered: Vec<String> = self
            .d
            .dns
            .iter()
            .flat_map(|d| d.records.iter())
            .map(|r| r.name.clone())
            .filter(|name| !covering.iter().any(|n| net::covers(n, name)))
            .collect();
        for name in uncovered {
            self.block(
                format!("dns record {name}"),
                format!("no HTTPS listener's certificate covers {name}"),
                "use a certificate that names it (or a wildcard for its parent)",
            );
        }
    }

    /// Certificates the stack requested (its tags say so) that the manifest no longer
    /// uses: deleted, after every listener change (a removal: the listeners move to the
    /// certificate that replaces it first). One that something outside the stack uses is
    /// kept, and said. Nothing goes while some certificate of the manifest is unresolved.
    pub(super) fn retire_certificates(&mut self) {
        if self.cert_refs.len() < self.d.certificates.len() {
            return;
        }
        let wanted: BTreeSet<&str> = self
            .cert_refs
            .values()
            .filter_map(|r| match r {
                CertRef::Arn(a) | CertRef::Issuing { arn: Some(a), .. } => Some(a.as_str()),
                CertRef::Issuing { arn: None, .. } => None,
            })
            .collect();
        let on_listeners: BTreeSet<&String> = self
            .o
            .load_balancers
            .iter()
            .flat_map(|lb| &lb.listeners)
            .flat_map(|l| &l.certificates)
            .collect();
        let mut retired = Vec::new();
        for c in &self.o.certificates {
            let Some(key) = c.tags.get(names::CERTIFICATE_TAG) else {
                continue;
            };
            if c.store != CertStore::Acm
                || !owned_by(&c.tags, &self.d.stack)
                || wanted.contains(c.arn.as_str())
            {
                continue;
            }
            if c.in_use == Some(true) && !on_listeners.contains(&c.arn) {
                self.out.warnings.push(Warning {
                    drift: false,
                    subject: format!("certificate {}", c.arn),
                    message: format!("the stack requested it for `certificates.{key}` and uses it no more, but something outside the stack does: kept"),
                    hint: "aws acm describe-certificate shows what uses it (InUseBy); delete it by hand once nothing does".into(),
                });
                continue;
            }
            retired.push((
                c.arn.clone(),
                key.clone(),
                c.names.clone(),
                c.status.clone(),
            ));
        }
        for (arn, key, names, status) in retired {
            let id = arn.rsplit('/').next().unwrap_or(&arn).to_owned();
            let why = match status {
                CertStatus::Issued => "no longer used",
                CertStatus::PendingValidation => "no longer awaited",
                CertStatus::Expired
                | CertStatus::Failed
                | CertStatus::ValidationTimedOut
                | CertStatus::Revoked
                | CertStatus::Inactive
                | CertStatus::Other(_) => "never issued",
            };
            self.change(
                NodeId::CertificateDelete { id },
                Change {
                    resource: resource("certificate", &arn, true),
                    action: Action::Delete,
                    reason: format!("requested by the stack for `certificates.{key}`, {why}: deleted once no listener of the stack uses it"),
                    attrs: vec![attr("names", Some(Value::from(names)), None)],
                    op: Op::DeleteCertificate { arn, key },
                },
            );
        }
    }

    /// No ISSUED certificate covers what the manifest requests: one awaiting validation
    /// for exactly these names (requested by an earlier run) is waited for, else one is
    /// requested; either way its DNS validation records are written into the zone when
    /// they are not there, and the listeners that use it wait until ACM has issued it.
    fn request_certificate(&mut self, key: &str, names: &[String]) {
        let Some(zone) = self.o.zone.as_ref() else {
            self.block(
                format!("certificates.{key}"),
                "the certificate is to be validated through the manifest's hosted zone, which was not found",
                "create the zone in Route53 (or fix `dns.zone`)",
            );
            return;
        };
        let wanted: BTreeSet<&String> = names.iter().collect();
        let for_these = |c: &&ObservedCert| {
            c.store == CertStore::Acm
                && Some(&c.domain) == names.first()
                && c.names.iter().collect::<BTreeSet<_>>() == wanted
        };
        let pending = self
            .o
            .certificates
            .iter()
            .filter(|c| c.status == CertStatus::PendingValidation)
            .filter(for_these)
            .max_by_key(|c| c.arn.clone());
        // Requests for these names that ACM failed or gave up on: said, and asked again.
        let failed: Vec<&ObservedCert> = self
            .o
            .certificates
            .iter()
            .filter(|c| c.status.failed())
            .filter(for_these)
            .collect();
        if pending.is_none() {
            for c in &failed {
                self.out.warnings.push(Warning {
                    drift: true,
                    subject: format!("certificates.{key}"),
                    message: format!("ACM did not issue certificate {} for {}: it is {}", c.arn, names.join(", "), c.status),
                    hint: if c.status == CertStatus::Failed {
                        "aws acm describe-certificate names the FailureReason (often a CAA record of the domain that does not allow amazon.com); the plan requests the certificate again".into()
                    } else {
                        "ACM found no validation record within 72 hours: check that the zone is the one the domain's registrar delegates to (dig NS); the plan requests the certificate again".into()
                    },
                });
            }
        }
        if let Some(c) = pending.filter(|c| c.overdue) {
            self.out.warnings.push(Warning {
                drift: true,
                subject: format!("certificates.{key}"),
                message: format!(
                    "certificate {} has awaited DNS validation for over {} minutes",
                    c.arn,
                    crate::model::PENDING_WARNING_SECS / 60
                ),
                hint: "with its validation CNAMEs in the zone ACM issues within minutes: check that the zone is the one the domain's registrar delegates to (dig NS) and that no CAA record forbids amazon.com; ACM gives up after 72 hours".into(),
            });
        }
        let in_zone = |r: &ValidationRecord| zone.records.iter().any(|z| r.is(z));
        let (cert, records, write) = match pending {
            Some(c) => {
                let write = c.validation.is_empty() || !c.validation.iter().all(in_zone);
                let cert = CertRef::Issuing {
                    key: key.to_owned(),
                    arn: Some(c.arn.clone()),
                };
                (cert, c.validation.clone(), write)
            }
            None => {
                let failed_arns: Vec<&str> = failed.iter().map(|c| c.arn.as_str()).collect();
                let token = request_token(&self.d.stack, key, names, &failed_arns);
                let mut tags = self.d.tags.clone();
                tags.insert(names::CERTIFICATE_TAG.to_owned(), key.to_owned());
                self.change(
                    NodeId::Certificate {
                        key: key.to_owned(),
                        part: CertPart::Request,
                    },
                    Change {
                        resource: resource("certificate", key, true),
                        action: Action::Create,
                        reason: "no ISSUED ACM certificate covers these names: requested, validated by DNS through the zone".into(),
                        attrs: vec![attr("names", None, Some(Value::from(names.to_vec())))],
                        op: Op::RequestCertificate {
                            key: key.to_owned(),
                            names: names.to_vec(),
                            token,
                            tags,
                        },
                    },
                );
                let cert = CertRef::Issuing {
                    key: key.to_owned(),
                    arn: None,
                };
                (cert, vec![], true)
            }
        };
        if write {
            let shown: Vec<String> = records
                .iter()
                .map(|r| format!("{} CNAME {}", r.name, r.value))
                .collect();
            self.change(
                NodeId::Certificate {
                    key: key.to_owned(),
                    part: CertPart::Validation,
                },
                Change {
                    resource: resource("certificate", key, true),
                    action: Action::Update,
                    reason: "its DNS validation records written into the zone (UPSERT), and kept there: ACM renews with them".into(),
                    attrs: vec![attr(
                        "validation",
                        None,
                        Some(if shown.is_empty() {
                            Value::from("the records ACM gives once it has made them")
                        } else {
                            Value::from(shown)
                        }),
                    )],
                    op: Op::WriteValidation {
                        key: key.to_owned(),
                        zone_id: zone.id.clone(),
                        cert: cert.clone(),
                        records,
                    },
                },
            );
        }
        self.out.issuing.push((key.to_owned(), cert.clone()));
        self.cert_refs.insert(key.to_owned(), cert);
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
