//! One change carried out: the plan's operation sent through the AWS adapters, with the
//! references to resources created earlier in the run resolved. Nothing is decided here.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::aws::acm::Acm;
use crate::aws::ec2::Ec2;
use crate::aws::elbv2::Elbv2;
use crate::aws::elbv2::ListenerAction;
use crate::aws::route53::{ChangeAction, RecordSet, Route53};
use crate::aws::{Clients, Meter};
use crate::model::{LbAttr, Observed, ObservedRecord, RuleKey, Source};
use crate::plan::dns::marker_values;
use crate::plan::{CertRef, CutoverStep, DnsStep, LbRef, Op, Serve, SgRef, Tagged, TgRef};

use std::time::{Duration, Instant};

use crate::aws::settle;

use super::{now_ceil, Error};

/// A load balancer's address, for DNS.
#[derive(Debug, Clone)]
pub struct LbAddress {
    pub arn: String,
    pub dns_name: String,
    pub zone_id: String,
}

/// What the run has learnt so far: ids of what it created, Route53 change ids, markers.
#[derive(Debug, Default)]
pub struct Refs {
    pub groups: BTreeMap<String, String>,
    pub target_groups: BTreeMap<String, String>,
    /// Load balancers by name (new) and by ARN (existing).
    pub load_balancers: BTreeMap<String, LbAddress>,
    /// (record, step) → Route53 change id.
    pub changes: BTreeMap<(String, DnsStep), String>,
    /// (record, step) → when Route53 reported the change in sync.
    pub in_sync: BTreeMap<(String, DnsStep), i64>,
    /// Marker records written by this run, by name (to delete them exactly).
    pub markers: BTreeMap<String, RecordSet>,
    /// Hosted zone of each record changed by this run.
    pub zones: BTreeMap<String, String>,
    /// Certificates this run requested, by manifest key.
    pub certificates: BTreeMap<String, String>,
}

impl Refs {
    pub fn zone_of(&self, record: &str) -> Option<String> {
        self.zones.get(record).cloned()
    }
}

/// Everything a node needs to run.
pub struct Context {
    pub clients: Clients,
    pub meter: Meter,
    pub refs: Mutex<Refs>,
    /// Recorded in a wait marker written with its change ([`crate::plan::dns::Stamp`]).
    pub propagation_allowance: u32,
}

impl Context {
    pub fn new(
        clients: Clients,
        meter: Meter,
        observed: &Observed,
        propagation_allowance: u32,
    ) -> Context {
        let mut refs = Refs::default();
        for l in &observed.load_balancers {
            refs.load_balancers.insert(
                l.arn.clone(),
                LbAddress {
                    arn: l.arn.clone(),
                    dns_name: l.dns_name.clone(),
                    zone_id: l.hosted_zone_id.clone(),
                },
            );
        }
        Context {
            clients,
            meter,
            refs: Mutex::new(refs),
            propagation_allowance,
        }
    }

    pub fn refs(&self) -> std::sync::MutexGuard<'_, Refs> {
        // The map is plain data; a panic elsewhere cannot leave it half-written.
        self.refs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(super) fn ec2(&self) -> Ec2 {
        Ec2::new(&self.clients.ec2, &self.meter)
    }

    pub fn elbv2(&self) -> Elbv2 {
        Elbv2::new(&self.clients.elbv2, &self.meter)
    }

    pub fn route53(&self) -> Route53 {
        Route53::new(&self.clients.route53, &self.meter)
    }

    pub fn acm(&self) -> Acm {
        Acm::new(&self.clients.acm, &self.meter)
    }

    pub fn cloudwatch(&self) -> crate::aws::cloudwatch::CloudWatch {
        crate::aws::cloudwatch::CloudWatch::new(&self.clients.cloudwatch, &self.meter)
    }

    /// The ARN of a certificate: known to the plan, or requested by this run.
    pub fn certificate(&self, c: &CertRef) -> Result<String, Error> {
        match c {
            CertRef::Arn(a) | CertRef::Issuing { arn: Some(a), .. } => Ok(a.clone()),
            CertRef::Issuing { key, arn: None } => {
                self.refs().certificates.get(key).cloned().ok_or_else(|| {
                    Error::Bug(format!(
                        "certificate \"{key}\" used before it was requested"
                    ))
                })
            }
        }
    }

    pub(super) fn group(&self, g: &SgRef) -> Result<String, Error> {
        match g {
            SgRef::Id(id) => Ok(id.clone()),
            SgRef::New(k) => self
                .refs()
                .groups
                .get(k)
                .cloned()
                .ok_or_else(|| Error::Bug(format!("group \"{k}\" used before it was created"))),
        }
    }

    pub fn target_group_arn(&self, t: &TgRef) -> Result<String, Error> {
        self.target_group(t)
    }

    /// The groups a listener change forwards to, resolved, each with weight 1 (none for a
    /// redirect).
    fn forward_of(&self, serve: &Serve) -> Result<Vec<(String, u32)>, Error> {
        match serve {
            Serve::Forward(tg) => Ok(vec![(self.target_group(tg)?, 1)]),
            Serve::Redirect(_) => Ok(vec![]),
        }
    }

    fn target_group(&self, t: &TgRef) -> Result<String, Error> {
        match t {
            TgRef::Arn(a) => Ok(a.clone()),
            TgRef::New { key, name } => {
                self.refs().target_groups.get(key).cloned().ok_or_else(|| {
                    Error::Bug(format!("target group {name} used before it was created"))
                })
            }
        }
    }

    pub fn load_balancer(&self, l: &LbRef) -> Result<LbAddress, Error> {
        let key = match l {
            LbRef::Arn(a) => a,
            LbRef::New(n) => n,
        };
        self.refs()
            .load_balancers
            .get(key)
            .cloned()
            .ok_or_else(|| Error::Bug(format!("load balancer {key} used before it was created")))
    }

    fn rules(
        &self,
        rules: &[(RuleKey, Option<String>)],
    ) -> Result<Vec<(RuleKey, Option<String>)>, Error> {
        rules
            .iter()
            .map(|(k, d)| Ok((self.rule(k)?, d.clone())))
            .collect()
    }

    fn rule(&self, k: &RuleKey) -> Result<RuleKey, Error> {
        Ok(match &k.source {
            Source::Key(key) => RuleKey {
                source: Source::Group(self.group(&SgRef::New(key.clone()))?),
                ..k.clone()
            },
            _ => k.clone(),
        })
    }
}

fn record_set(o: &ObservedRecord) -> RecordSet {
    RecordSet::from(o)
}

/// The batch of one cutover change: from the simple old record (or the weighted pair at
/// `from`) to the pair at `to`, to the new value alone (100) or back to the old one (0).
/// The deletes name the sets exactly as they stand, as Route53 asks.
pub fn cutover_batch(c: &CutoverStep, new: &RecordSet) -> Vec<(ChangeAction, RecordSet)> {
    let (old_id, new_id) = crate::names::cutover_set_ids(&new.name, &new.kind);
    let old = record_set(&c.old);
    let pair = |share: u8| {
        [
            RecordSet {
                weighted: Some((old_id.clone(), 100 - share.min(100))),
                ..old.clone()
            },
            RecordSet {
                weighted: Some((new_id.clone(), share)),
                ..new.clone()
            },
        ]
    };
    let mut changes = Vec::new();
    match c.from {
        None => changes.push((ChangeAction::Delete, old.clone())),
        // Weights change in place (an UPSERT replaces the set of the same identifier);
        // folding the pair into one record deletes both first.
        Some(p) if c.to == 0 || c.to >= 100 => {
            changes.extend(pair(p).into_iter().map(|s| (ChangeAction::Delete, s)));
        }
        Some(_) => {}
    }
    match c.to {
        0 => changes.push((ChangeAction::Upsert, old)),
        t if t >= 100 => changes.push((ChangeAction::Upsert, new.clone())),
        t => changes.extend(pair(t).into_iter().map(|s| (ChangeAction::Upsert, s))),
    }
    changes
}

/// How long a delete waits for what still depends on the resource to let go: a load
/// balancer's network interfaces keep its security groups for minutes after it is
/// deleted (`DependencyViolation`), and a listener being removed keeps its target group
/// in use for a moment (`ResourceInUse`).
pub const LET_GO_WITHIN: Duration = Duration::from_secs(15 * 60);

/// Carries out one operation. A call that meets AWS's eventual consistency is repeated,
/// with a growing pause: one naming a resource AWS does not know yet (created a moment
/// ago by this run or the one before), and a delete of a resource something still
/// depends on, until it lets go or [`LET_GO_WITHIN`] has passed (the error then names
/// what still depends on it). `waiting` reports those pauses.
pub async fn run(
    ctx: &Context,
    op: &Op,
    waiting: &(dyn Fn(&str, Duration) + Send + Sync),
) -> Result<(), Error> {
    let names_new = !op.references().is_empty();
    let t0 = Instant::now();
    let mut attempt = 0;
    loop {
        let err = match run_once(ctx, op).await {
            Err(Error::Aws { source, node }) => (source, node),
            other => return other,
        };
        let (source, node) = err;
        let code = source.code().unwrap_or("");
        let unknown = NOT_YET_KNOWN.contains(&code)
            && t0.elapsed()
                < if names_new {
                    settle::SETTLE
                } else {
                    settle::LISTED_SETTLE
                };
        let in_use = LETTING_GO.contains(&code) && deleted(op).is_some();
        if in_use && t0.elapsed() >= LET_GO_WITHIN {
            let still = dependents(ctx, op).await;
            return Err(Error::Failed {
                node,
                message: format!(
                    "{source}; still in use after {:?}{still}",
                    Duration::from_secs(t0.elapsed().as_secs())
                ),
            });
        }
        if !unknown && !in_use {
            return Err(Error::Aws { source, node });
        }
        let what = if in_use {
            format!("AWS lets go of what {} depends on ({code})", subject(op))
        } else {
            format!("AWS knows {} ({code})", subject(op))
        };
        waiting(&what, t0.elapsed());
        tokio::time::sleep(settle::pause(attempt)).await;
        attempt += 1;
    }
}

/// TTL of the validation records written for ACM.
const VALIDATION_TTL: u32 = 300;

/// The validation records of a certificate just requested: ACM makes them a few seconds
/// after the request, so they are asked for until they are there (every name's), within
/// [`settle::SETTLE`].
async fn validation_records(
    ctx: &Context,
    key: &str,
    arn: &str,
) -> Result<Vec<crate::model::ValidationRecord>, Error> {
    let t0 = Instant::now();
    let mut attempt = 0;
    loop {
        if let Some((_, records)) = ctx.acm().status(arn).await? {
            if !records.is_empty() {
                return Ok(records);
            }
        }
        if t0.elapsed() > settle::SETTLE {
            return Err(Error::Failed {
                node: format!("cert.{key}.validation"),
                message: format!(
                    "ACM gave no DNS validation records for {arn} within {:?}",
                    settle::SETTLE
                ),
            });
        }
        tokio::time::sleep(settle::pause(attempt)).await;
        attempt += 1;
    }
}

/// Error codes of a resource AWS does not know (yet).
const NOT_YET_KNOWN: &[&str] = &[
    "InvalidGroup.NotFound",
    "InvalidGroupId.NotFound",
    "LoadBalancerNotFound",
    "TargetGroupNotFound",
    "ListenerNotFound",
    "CertificateNotFound",
];

/// Error codes of a delete refused while something still uses the resource.
const LETTING_GO: &[&str] = &[
    "DependencyViolation",
    "ResourceInUse",
    "ResourceInUseException",
];

/// A resource a change deletes and that AWS keeps while something uses it.
enum Deleted<'a> {
    SecurityGroup(&'a str),
    TargetGroup(&'a str),
    LoadBalancer(&'a str),
    Certificate(&'a str),
}

/// What the change deletes, if it is such a delete. Every variant is named: a new change
/// must say whether it is one.
fn deleted(op: &Op) -> Option<Deleted<'_>> {
    match op {
        Op::DeleteSecurityGroup { id, .. } => Some(Deleted::SecurityGroup(id)),
        Op::DeleteTargetGroup { arn, .. } => Some(Deleted::TargetGroup(arn)),
        Op::DeleteLoadBalancer { arn, .. } => Some(Deleted::LoadBalancer(arn)),
        Op::DeleteCertificate { arn, .. } => Some(Deleted::Certificate(arn)),
        Op::CreateSecurityGroup { .. }
        | Op::AuthorizeIngress { .. }
        | Op::UpdateRuleDescriptions { .. }
        | Op::RevokeIngress { .. }
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
        | Op::WriteValidation { .. }
        | Op::SetLbAttributes { .. }
        | Op::Unprotect { .. }
        | Op::CreateListener { .. }
        | Op::AttachStandby { .. }
        | Op::ModifyListener { .. }
        | Op::DetachStandby { .. }
        | Op::SetListenerHeaders { .. }
        | Op::DeleteListener { .. }
        | Op::SetRecord { .. }
        | Op::ClearMarker { .. } => None,
    }
}

/// The resource an operation acts on, for progress lines.
fn subject(op: &Op) -> String {
    match deleted(op) {
        Some(Deleted::SecurityGroup(id)) => format!("security group {id}"),
        Some(Deleted::TargetGroup(arn)) => format!("target group {}", short_arn(arn)),
        Some(Deleted::LoadBalancer(arn)) => format!("load balancer {}", short_arn(arn)),
        Some(Deleted::Certificate(arn)) => format!("certificate {arn}"),
        None => "the resources of this change".to_owned(),
    }
}

/// The name part of an ELB ARN (`targetgroup/www-example-app/73e2d6bc24d8a067` →
/// `www-example-app`), for messages.
fn short_arn(arn: &str) -> &str {
    arn.rsplit(':')
        .next()
        .and_then(|r| r.split('/').nth(1))
        .unwrap_or(arn)
}

/// What still depends on the resource a delete was refused for, as a clause for the
/// error (empty when it cannot be told).
async fn dependents(ctx: &Context, op: &Op) -> String {
    match deleted(op) {
        Some(Deleted::SecurityGroup(id)) => match ctx.ec2().dependents_of(id).await {
            Ok(d) if !d.is_empty() => format!(": {}", d.join(", ")),
            Ok(_) | Err(_) => String::new(),
        },
        Some(Deleted::TargetGroup(_)) => ": a listener or rule still forwards to it".to_owned(),
        Some(Deleted::LoadBalancer(_) | Deleted::Certificate(_)) | None => String::new(),
    }
}

async fn run_once(ctx: &Context, op: &Op) -> Result<(), Error> {
    let ec2 = ctx.ec2();
    let elb = ctx.elbv2();
    match op {
        Op::CreateSecurityGroup {
            key,
            name,
            description,
            vpc,
            tags,
        } => {
            let id = ec2
                .create_security_group(name, description, vpc, tags)
                .await?;
            ctx.refs().groups.insert(key.clone(), id);
        }
        Op::AuthorizeIngress { group, rules } => {
            let id = ctx.group(group)?;
            ec2.authorize_ingress(&id, &ctx.rules(rules)?).await?;
        }
        Op::UpdateRuleDescriptions { group, rules } => {
            let id = ctx.group(group)?;
            ec2.update_rule_descriptions(&id, &ctx.rules(rules)?)
                .await?;
        }
        Op::RevokeIngress { group, rules, .. } => {
            let id = ctx.group(group)?;
            let rules = rules
                .iter()
                .map(|k| ctx.rule(k))
                .collect::<Result<Vec<_>, _>>()?;
            ec2.revoke_ingress(&id, &rules).await?;
        }
        Op::DeleteSecurityGroup { id, .. } => ec2.delete_security_group(id).await?,
        Op::CreateTargetGroup {
            key,
            name,
            port,
            protocol,
            vpc,
            health,
            tags,
            ..
        } => {
            let arn = elb
                .create_target_group(name, *port, protocol, vpc, health, tags)
                .await?;
            ctx.refs().target_groups.insert(key.clone(), arn);
        }
        Op::ModifyHealthCheck { tg, health, .. } => {
            elb.modify_health_check(&ctx.target_group(tg)?, health)
                .await?
        }
        Op::SetTags { resource, tags } | Op::Adopt { resource, tags } => match resource {
            Tagged::LoadBalancer { arn } | Tagged::TargetGroup { arn } => {
                elb.add_tags(arn, tags).await?
            }
            Tagged::SecurityGroup { id } => ec2.set_tags(id, tags).await?,
        },
        Op::RegisterTargets { tg, ids, .. } => {
            elb.register_targets(&ctx.target_group(tg)?, ids).await?
        }
        Op::DeregisterTargets { tg, ids, .. } => {
            elb.deregister_targets(&ctx.target_group(tg)?, ids).await?
        }
        Op::DeleteTargetGroup { arn, .. } => elb.delete_target_group(arn).await?,
        Op::CreateLoadBalancer {
            name,
            scheme,
            subnets,
            security_groups,
            tags,
        } => {
            let groups = security_groups
                .iter()
                .map(|g| ctx.group(g))
                .collect::<Result<Vec<_>, _>>()?;
            let lb = elb
                .create_load_balancer(name, scheme, subnets, &groups, tags)
                .await?;
            let address = LbAddress {
                arn: lb.arn.clone(),
                dns_name: lb.dns_name.clone(),
                zone_id: lb.hosted_zone_id.clone(),
            };
            let mut refs = ctx.refs();
            refs.load_balancers.insert(name.clone(), address.clone());
            refs.load_balancers.insert(lb.arn, address);
        }
        Op::SetSubnets { lb, subnets } => {
            elb.set_subnets(&ctx.load_balancer(lb)?.arn, subnets)
                .await?
        }
        Op::SetSecurityGroups { lb, groups } => {
            let groups = groups
                .iter()
                .map(|g| ctx.group(g))
                .collect::<Result<Vec<_>, _>>()?;
            elb.set_security_groups(&ctx.load_balancer(lb)?.arn, &groups)
                .await?
        }
        Op::DeleteLoadBalancer { arn, .. } => elb.delete_load_balancer(arn).await?,
        Op::DeleteCertificate { arn, .. } => ctx.acm().delete(arn).await?,
        Op::RequestCertificate {
            key,
            names,
            token,
            tags,
        } => {
            let arn = ctx.acm().request(names, token, tags).await?;
            settle::created(&arn);
            ctx.refs().certificates.insert(key.clone(), arn);
        }
        Op::WriteValidation {
            key,
            zone_id,
            cert,
            records,
        } => {
            let arn = ctx.certificate(cert)?;
            let records = if records.is_empty() {
                validation_records(ctx, key, &arn).await?
            } else {
                records.clone()
            };
            let changes: Vec<(ChangeAction, RecordSet)> = records
                .iter()
                .map(|r| {
                    let set = RecordSet {
                        name: r.name.clone(),
                        kind: "CNAME".into(),
                        ttl: Some(VALIDATION_TTL),
                        values: vec![r.value.clone()],
                        alias: None,
                        weighted: None,
                    };
                    (ChangeAction::Upsert, set)
                })
                .collect();
            ctx.route53()
                .change(zone_id, &changes, "reconcile: certificate validation")
                .await?;
        }
        Op::SetLbAttributes { lb, attributes } => {
            let attributes: Vec<_> = attributes.iter().map(|(a, v)| (*a, v.clone())).collect();
            elb.set_lb_attributes(&ctx.load_balancer(lb)?.arn, &attributes)
                .await?
        }
        Op::Unprotect { arn, .. } => {
            elb.set_lb_attributes(arn, &[(LbAttr::DeletionProtection, "false".to_owned())])
                .await?
        }
        Op::CreateListener {
            lb,
            port,
            protocol,
            certificate,
            ssl_policy,
            serve,
            headers,
        } => {
            let lb = ctx.load_balancer(lb)?;
            let forward = ctx.forward_of(serve)?;
            let certificate = certificate
                .as_ref()
                .map(|c| ctx.certificate(c))
                .transpose()?;
            let arn = elb
                .create_listener(
                    &lb.arn,
                    *port,
                    protocol,
                    certificate.as_deref(),
                    ssl_policy.as_deref(),
                    action(serve, &forward),
                )
                .await?;
            // A "not found" here is the new listener not known everywhere yet: the whole
            // operation is tried again, and finds the listener made.
            let headers: Vec<_> = headers.iter().map(|(h, v)| (*h, v.clone())).collect();
            elb.set_listener_headers(&arn, &headers).await?;
        }
        Op::SetListenerHeaders { arn, headers, .. } => {
            let headers: Vec<_> = headers.iter().map(|(h, v)| (*h, v.clone())).collect();
            elb.set_listener_headers(arn, &headers).await?;
        }
        Op::AttachStandby {
            arn,
            protocol,
            certificate,
            serving,
            tg,
            ..
        } => {
            let mut forward = sending(serving);
            forward.push((ctx.target_group(tg)?, 0));
            elb.modify_listener(
                arn,
                protocol,
                certificate.as_deref(),
                None,
                ListenerAction::Forward(&forward),
            )
            .await?;
        }
        Op::ModifyListener {
            arn,
            protocol,
            certificate,
            ssl_policy,
            serve,
            ..
        } => {
            let forward = ctx.forward_of(serve)?;
            let certificate = certificate
                .as_ref()
                .map(|c| ctx.certificate(c))
                .transpose()?;
            elb.modify_listener(
                arn,
                protocol,
                certificate.as_deref(),
                ssl_policy.as_deref(),
                action(serve, &forward),
            )
            .await?;
        }
        Op::DetachStandby {
            arn,
            protocol,
            certificate,
            serving,
            ..
        } => {
            let forward = sending(serving);
            elb.modify_listener(
                arn,
                protocol,
                certificate.as_deref(),
                None,
                ListenerAction::Forward(&forward),
            )
            .await?;
        }
        Op::DeleteListener { arn, .. } => elb.delete_listener(arn).await?,
        Op::SetRecord {
            zone_id,
            name,
            kind,
            ttl,
            value,
            replaces,
            step,
            mark,
            cutover,
        } => {
            let (values, alias) = value.contents(kind, |lb| {
                ctx.load_balancer(lb).map(|a| (a.dns_name, a.zone_id))
            })?;
            let mut changes: Vec<(ChangeAction, RecordSet)> = replaces
                .iter()
                .map(|o| (ChangeAction::Delete, record_set(o)))
                .collect();
            let ttl = if alias.is_some() { None } else { *ttl };
            let set = RecordSet {
                name: name.clone(),
                kind: kind.clone(),
                ttl,
                values,
                alias,
                weighted: None,
            };
            match cutover {
                Some(c) => changes.extend(cutover_batch(c, &set)),
                None => changes.push((ChangeAction::Upsert, set)),
            }
            let marker = mark.as_ref().map(|m| RecordSet {
                name: m.record.clone(),
                kind: "TXT".into(),
                ttl: Some(crate::plan::dns::MARKER_TTL),
                values: marker_values(
                    &m.stack,
                    &m.step,
                    now_ceil(),
                    m.ttl,
                    Some(ctx.propagation_allowance),
                ),
                alias: None,
                weighted: None,
            });
            if let Some(m) = &marker {
                changes.push((ChangeAction::Upsert, m.clone()));
            }
            let comment = format!("reconcile: {name} {kind} ({step:?})");
            let id = match ctx.route53().change(zone_id, &changes, &comment).await {
                // The records to replace are already gone: an earlier attempt of this very
                // batch went through (its answer was lost). The upserts alone finish it.
                Err(e)
                    if e.code() == Some("InvalidChangeBatch")
                        && changes.iter().any(|(a, _)| *a == ChangeAction::Delete) =>
                {
                    changes.retain(|(action, _)| matches!(action, ChangeAction::Upsert));
                    ctx.route53().change(zone_id, &changes, &comment).await?
                }
                other => other?,
            };
            let mut refs = ctx.refs();
            refs.changes.insert((name.clone(), *step), id);
            refs.zones.insert(name.clone(), zone_id.clone());
            if let Some(m) = marker {
                refs.markers.insert(m.name.clone(), m);
            }
        }
        Op::ClearMarker { zone_id, record } => {
            let written = ctx.refs().markers.get(&record.name).cloned();
            let current =
                written.or_else(|| (!record.values.is_empty()).then(|| record_set(record)));
            if let Some(set) = current {
                ctx.route53()
                    .change(
                        zone_id,
                        &[(ChangeAction::Delete, set)],
                        "reconcile: wait marker done",
                    )
                    .await?;
                ctx.refs().markers.remove(&record.name);
            }
        }
    }
    Ok(())
}

/// The groups a listener serves now, each sent traffic (weight 1).
fn sending(serving: &[String]) -> Vec<(String, u32)> {
    serving.iter().map(|a| (a.clone(), 1)).collect()
}

/// A listener's default action for the write adapter: the target group resolved
/// (`forward`), or the redirect.
fn action<'a>(serve: &'a Serve, forward: &'a [(String, u32)]) -> ListenerAction<'a> {
    match serve {
        Serve::Forward(_) => ListenerAction::Forward(forward),
        Serve::Redirect(r) => ListenerAction::Redirect(r),
    }
}
