//! The one interpreter of the plan: an [`Op`] carried out against a [`Cloud`], with the
//! references to what the run created resolved once ([`Refs`]). `apply` runs it against
//! AWS (`apply::exec`, through the adapters), the checker against its model of AWS
//! ([`super::check::model`]): what the checker proves is the code that runs.
//!
//! A [`Cloud`] is the write surface of the front door, one method per AWS call the plan
//! makes, on resolved ids. Decisions are the plan's; how AWS answers is the `Cloud`'s; this
//! module only turns the one into calls of the other.

use std::collections::BTreeMap;

use crate::aws::elbv2::ListenerAction;
use crate::aws::route53::{ChangeAction, RecordSet};
use crate::model::{
    CertStatus, HealthCheck, LbAttr, LbState, Protocol, RecordKind, ResponseHeader, RuleKey, Tags,
    TargetHealth, ValidationRecord,
};

use super::dns::{marker_values, MARKER_TTL};
use super::{CertRef, CutoverStep, DnsStep, LbRef, Op, Serve, SgRef, Tagged, TgRef};

/// A load balancer's address, for DNS.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LbAddress {
    pub arn: String,
    pub dns_name: String,
    pub zone_id: String,
}

/// What the run has learnt so far: ids of what it created, Route53 change ids, markers.
#[derive(Debug, Clone, Default)]
pub struct Refs {
    /// Security groups created by the run, by manifest key.
    pub groups: BTreeMap<String, String>,
    /// Target groups created by the run, by manifest key.
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

/// A reference to something the run was to create before, not known: a plan whose edges
/// do not order a use after its creation (the checker finds those), or a bug.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} used before it was created")]
pub struct Unresolved(pub String);

impl Refs {
    /// Starts from the load balancers that exist, by ARN.
    pub fn with_load_balancers(lbs: impl IntoIterator<Item = LbAddress>) -> Refs {
        Refs {
            load_balancers: lbs.into_iter().map(|a| (a.arn.clone(), a)).collect(),
            ..Refs::default()
        }
    }

    pub fn zone_of(&self, record: &str) -> Option<String> {
        self.zones.get(record).cloned()
    }

    pub fn group(&self, g: &SgRef) -> Result<String, Unresolved> {
        match g {
            SgRef::Id(id) => Ok(id.clone()),
            SgRef::New(k) => self
                .groups
                .get(k)
                .cloned()
                .ok_or_else(|| Unresolved(format!("group \"{k}\""))),
        }
    }

    pub fn target_group(&self, t: &TgRef) -> Result<String, Unresolved> {
        match t {
            TgRef::Arn(a) => Ok(a.clone()),
            TgRef::New { key, name } => self
                .target_groups
                .get(key)
                .cloned()
                .ok_or_else(|| Unresolved(format!("target group {name}"))),
        }
    }

    pub fn load_balancer(&self, l: &LbRef) -> Result<LbAddress, Unresolved> {
        let key = match l {
            LbRef::Arn(a) => a,
            LbRef::New(n) => n,
        };
        self.load_balancers
            .get(key)
            .cloned()
            .ok_or_else(|| Unresolved(format!("load balancer {key}")))
    }

    /// The ARN of a certificate: known to the plan, or requested by this run.
    pub fn certificate(&self, c: &CertRef) -> Result<String, Unresolved> {
        match c {
            CertRef::Arn(a) | CertRef::Issuing { arn: Some(a), .. } => Ok(a.clone()),
            CertRef::Issuing { key, arn: None } => self
                .certificates
                .get(key)
                .cloned()
                .ok_or_else(|| Unresolved(format!("certificate \"{key}\""))),
        }
    }

    /// A rule whose source is a group the run created, with that group's id.
    pub fn rule(&self, k: &RuleKey) -> Result<RuleKey, Unresolved> {
        k.resolve(|key| self.group(&SgRef::New(key.to_owned())).map(Some))
    }

    fn rules(
        &self,
        rules: &[(RuleKey, Option<String>)],
    ) -> Result<Vec<(RuleKey, Option<String>)>, Unresolved> {
        rules
            .iter()
            .map(|(k, d)| Ok((self.rule(k)?, d.clone())))
            .collect()
    }

    /// The groups a listener change forwards to, resolved, each with weight 1 (none for a
    /// redirect).
    fn forward_of(&self, serve: &Serve) -> Result<Vec<(String, u32)>, Unresolved> {
        match serve {
            Serve::Forward(tg) => Ok(vec![(self.target_group(tg)?, 1)]),
            Serve::Redirect(_) => Ok(vec![]),
        }
    }
}

/// The front door's write surface, on resolved ids: AWS through its adapters, or the
/// checker's model of it. Each method is one AWS call ([`crate::aws::Operation`] names
/// them); its error is the implementation's.
#[allow(async_fn_in_trait)] // used with concrete implementations only
pub trait Cloud: super::wait::Clock {
    type Error: From<Unresolved>;

    /// What the run has learnt so far, to read or extend.
    fn with_refs<T>(&self, f: impl FnOnce(&mut Refs) -> T) -> T;
    /// Seconds since the epoch, rounded up: the start of a wait counted in whole seconds
    /// never ends it early.
    fn now(&self) -> i64 {
        let e = self.epoch();
        i64::try_from(e.as_secs() + u64::from(e.subsec_nanos() > 0)).unwrap_or(i64::MAX)
    }
    /// Whether a "not found" for `id`, `waited` into a wait, may still be AWS not knowing
    /// it yet (created or listed a moment ago); never in the model, which knows at once.
    fn may_not_know(&self, id: &str, waited: std::time::Duration) -> bool;
    /// Recorded in a wait marker written with its change ([`super::dns::Stamp`]).
    fn propagation_allowance(&self) -> u32;
    /// Route53 refused a batch because a set it deletes is not there as given: an earlier
    /// attempt of this very batch went through, its answer lost.
    fn stale_batch(error: &Self::Error) -> bool;

    async fn create_security_group(
        &self,
        name: &str,
        description: &str,
        vpc: &str,
        tags: &Tags,
    ) -> Result<String, Self::Error>;
    async fn authorize_ingress(
        &self,
        group: &str,
        rules: &[(RuleKey, Option<String>)],
    ) -> Result<(), Self::Error>;
    async fn update_rule_descriptions(
        &self,
        group: &str,
        rules: &[(RuleKey, Option<String>)],
    ) -> Result<(), Self::Error>;
    async fn revoke_ingress(&self, group: &str, rules: &[RuleKey]) -> Result<(), Self::Error>;
    async fn delete_security_group(&self, id: &str) -> Result<(), Self::Error>;
    /// Adds `tags` to a resource (those it does not name stay).
    async fn tag(&self, resource: &Tagged, tags: &Tags) -> Result<(), Self::Error>;
    async fn create_target_group(
        &self,
        name: &str,
        port: u16,
        protocol: &Protocol,
        vpc: &str,
        health: &HealthCheck,
        tags: &Tags,
    ) -> Result<String, Self::Error>;
    async fn modify_health_check(&self, arn: &str, health: &HealthCheck)
        -> Result<(), Self::Error>;
    async fn register_targets(&self, arn: &str, ids: &[String]) -> Result<(), Self::Error>;
    async fn deregister_targets(&self, arn: &str, ids: &[String]) -> Result<(), Self::Error>;
    async fn delete_target_group(&self, arn: &str) -> Result<(), Self::Error>;
    async fn create_load_balancer(
        &self,
        name: &str,
        scheme: &str,
        subnets: &[String],
        groups: &[String],
        tags: &Tags,
    ) -> Result<LbAddress, Self::Error>;
    async fn set_subnets(&self, arn: &str, subnets: &[String]) -> Result<(), Self::Error>;
    async fn set_security_groups(&self, arn: &str, groups: &[String]) -> Result<(), Self::Error>;
    async fn set_lb_attributes(
        &self,
        arn: &str,
        attributes: &[(LbAttr, String)],
    ) -> Result<(), Self::Error>;
    async fn delete_load_balancer(&self, arn: &str) -> Result<(), Self::Error>;
    async fn request_certificate(
        &self,
        names: &[String],
        token: &str,
        tags: &Tags,
    ) -> Result<String, Self::Error>;
    /// The DNS validation records ACM asks for a certificate (`key` in the manifest), once
    /// it has made them.
    async fn validation_records(
        &self,
        key: &str,
        arn: &str,
    ) -> Result<Vec<ValidationRecord>, Self::Error>;
    async fn delete_certificate(&self, arn: &str) -> Result<(), Self::Error>;
    /// Creates a listener; returns its ARN.
    async fn create_listener(
        &self,
        lb: &str,
        port: u16,
        protocol: &Protocol,
        certificate: Option<&str>,
        ssl_policy: Option<&str>,
        to: ListenerAction<'_>,
    ) -> Result<String, Self::Error>;
    /// Sets a listener's protocol, certificate, default action and (when given) TLS policy.
    async fn modify_listener(
        &self,
        arn: &str,
        protocol: &Protocol,
        certificate: Option<&str>,
        ssl_policy: Option<&str>,
        to: ListenerAction<'_>,
    ) -> Result<(), Self::Error>;
    async fn set_listener_headers(
        &self,
        arn: &str,
        headers: &[(ResponseHeader, String)],
    ) -> Result<(), Self::Error>;
    async fn delete_listener(&self, arn: &str) -> Result<(), Self::Error>;
    /// One atomic Route53 batch; returns the change's id.
    async fn change_records(
        &self,
        zone_id: &str,
        changes: &[(ChangeAction, RecordSet)],
        comment: &str,
    ) -> Result<String, Self::Error>;

    // The reads the gates look at ([`super::wait::look`]); `None` where AWS knows no
    // such resource.
    async fn load_balancer_state(&self, arn: &str) -> Result<Option<LbState>, Self::Error>;
    async fn target_health(&self, arn: &str) -> Result<Option<Vec<TargetHealth>>, Self::Error>;
    /// The rules of a security group.
    async fn group_rules(&self, id: &str) -> Result<Option<Vec<RuleKey>>, Self::Error>;
    async fn certificate_status(&self, arn: &str) -> Result<Option<CertStatus>, Self::Error>;
    /// Whether Route53 reports the change INSYNC.
    async fn change_in_sync(&self, change: &str) -> Result<bool, Self::Error>;
}

/// TTL of the validation records written for ACM.
const VALIDATION_TTL: u32 = 300;

/// Carries out one operation against `cloud`: the references resolved, the calls made in
/// the order AWS needs them, what they return remembered in the refs; a call with nothing
/// to send is not made. One attempt; the executor decides what to repeat.
pub async fn carry<C: Cloud>(cloud: &C, op: &Op) -> Result<(), C::Error> {
    match op {
        Op::CreateSecurityGroup {
            key,
            name,
            description,
            vpc,
            tags,
        } => {
            let id = cloud
                .create_security_group(name, description, vpc, tags)
                .await?;
            cloud.with_refs(|r| r.groups.insert(key.clone(), id));
        }
        Op::AuthorizeIngress { group, rules } => {
            let (id, rules) =
                cloud.with_refs(|r| Ok::<_, Unresolved>((r.group(group)?, r.rules(rules)?)))?;
            cloud.authorize_ingress(&id, &rules).await?;
        }
        Op::UpdateRuleDescriptions { group, rules } => {
            let (id, rules) =
                cloud.with_refs(|r| Ok::<_, Unresolved>((r.group(group)?, r.rules(rules)?)))?;
            if !rules.is_empty() {
                cloud.update_rule_descriptions(&id, &rules).await?;
            }
        }
        Op::RevokeIngress { group, rules, .. } => {
            let (id, rules) = cloud.with_refs(|r| {
                let rules = rules
                    .iter()
                    .map(|k| r.rule(k))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok::<_, Unresolved>((r.group(group)?, rules))
            })?;
            cloud.revoke_ingress(&id, &rules).await?;
        }
        Op::DeleteSecurityGroup { id, .. } => cloud.delete_security_group(id).await?,
        Op::CreateTargetGroup {
            key,
            name,
            port,
            protocol,
            vpc,
            health,
            tags,
            after_deleting: _,
        } => {
            let arn = cloud
                .create_target_group(name, *port, protocol, vpc, health, tags)
                .await?;
            cloud.with_refs(|r| r.target_groups.insert(key.clone(), arn));
        }
        Op::ModifyHealthCheck {
            tg,
            health,
            step: _,
        } => {
            let arn = cloud.with_refs(|r| r.target_group(tg))?;
            cloud.modify_health_check(&arn, health).await?;
        }
        Op::SetTags { resource, tags } | Op::Adopt { resource, tags } => {
            cloud.tag(resource, tags).await?;
        }
        Op::RegisterTargets { tg, ids, key: _ } => {
            let arn = cloud.with_refs(|r| r.target_group(tg))?;
            if !ids.is_empty() {
                cloud.register_targets(&arn, ids).await?;
            }
        }
        Op::DeregisterTargets { tg, ids, key: _ } => {
            let arn = cloud.with_refs(|r| r.target_group(tg))?;
            if !ids.is_empty() {
                cloud.deregister_targets(&arn, ids).await?;
            }
        }
        Op::DeleteTargetGroup { arn, .. } => cloud.delete_target_group(arn).await?,
        Op::CreateLoadBalancer {
            name,
            scheme,
            subnets,
            security_groups,
            tags,
        } => {
            let groups = cloud.with_refs(|r| {
                security_groups
                    .iter()
                    .map(|g| r.group(g))
                    .collect::<Result<Vec<_>, _>>()
            })?;
            let address = cloud
                .create_load_balancer(name, scheme, subnets, &groups, tags)
                .await?;
            cloud.with_refs(|r| {
                r.load_balancers.insert(name.clone(), address.clone());
                r.load_balancers.insert(address.arn.clone(), address);
            });
        }
        Op::SetSubnets { lb, subnets } => {
            let arn = cloud.with_refs(|r| r.load_balancer(lb))?.arn;
            cloud.set_subnets(&arn, subnets).await?;
        }
        Op::SetSecurityGroups { lb, groups } => {
            let (arn, groups) = cloud.with_refs(|r| {
                let groups = groups
                    .iter()
                    .map(|g| r.group(g))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok::<_, Unresolved>((r.load_balancer(lb)?.arn, groups))
            })?;
            cloud.set_security_groups(&arn, &groups).await?;
        }
        Op::DeleteLoadBalancer { arn, .. } => cloud.delete_load_balancer(arn).await?,
        Op::DeleteCertificate { arn, .. } => cloud.delete_certificate(arn).await?,
        Op::RequestCertificate {
            key,
            names,
            token,
            tags,
        } => {
            let arn = cloud.request_certificate(names, token, tags).await?;
            cloud.with_refs(|r| r.certificates.insert(key.clone(), arn));
        }
        Op::WriteValidation {
            key,
            zone_id,
            cert,
            records,
        } => {
            let arn = cloud.with_refs(|r| r.certificate(cert))?;
            let records = if records.is_empty() {
                cloud.validation_records(key, &arn).await?
            } else {
                records.clone()
            };
            let changes: Vec<(ChangeAction, RecordSet)> = records
                .iter()
                .map(|r| {
                    let set = RecordSet {
                        name: r.name.clone(),
                        kind: RecordKind::Cname,
                        ttl: Some(VALIDATION_TTL),
                        values: vec![r.value.clone()],
                        alias: None,
                        weighted: None,
                    };
                    (ChangeAction::Upsert, set)
                })
                .collect();
            cloud
                .change_records(zone_id, &changes, "reconcile: certificate validation")
                .await?;
        }
        Op::SetLbAttributes { lb, attributes } => {
            let arn = cloud.with_refs(|r| r.load_balancer(lb))?.arn;
            let attributes: Vec<_> = attributes.iter().map(|(a, v)| (*a, v.clone())).collect();
            if !attributes.is_empty() {
                cloud.set_lb_attributes(&arn, &attributes).await?;
            }
        }
        Op::Unprotect { arn, .. } => {
            cloud
                .set_lb_attributes(arn, &[(LbAttr::DeletionProtection, "false".to_owned())])
                .await?;
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
            let (lb, forward, certificate) = cloud.with_refs(|r| {
                let certificate = certificate.as_ref().map(|c| r.certificate(c)).transpose()?;
                Ok::<_, Unresolved>((r.load_balancer(lb)?, r.forward_of(serve)?, certificate))
            })?;
            let arn = cloud
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
            if !headers.is_empty() {
                cloud.set_listener_headers(&arn, &headers).await?;
            }
        }
        Op::SetListenerHeaders {
            arn,
            headers,
            port: _,
        } => {
            let headers: Vec<_> = headers.iter().map(|(h, v)| (*h, v.clone())).collect();
            if !headers.is_empty() {
                cloud.set_listener_headers(arn, &headers).await?;
            }
        }
        Op::AttachStandby {
            arn,
            protocol,
            certificate,
            serving,
            tg,
            port: _,
        } => {
            let mut forward = sending(serving);
            forward.push((cloud.with_refs(|r| r.target_group(tg))?, 0));
            cloud
                .modify_listener(
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
            port: _,
            moves_traffic: _,
        } => {
            let (forward, certificate) = cloud.with_refs(|r| {
                let certificate = certificate.as_ref().map(|c| r.certificate(c)).transpose()?;
                Ok::<_, Unresolved>((r.forward_of(serve)?, certificate))
            })?;
            cloud
                .modify_listener(
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
            port: _,
        } => {
            let forward = sending(serving);
            cloud
                .modify_listener(
                    arn,
                    protocol,
                    certificate.as_deref(),
                    None,
                    ListenerAction::Forward(&forward),
                )
                .await?;
        }
        Op::DeleteListener { arn, port: _ } => cloud.delete_listener(arn).await?,
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
            let (values, alias) = cloud.with_refs(|r| {
                value.contents(kind, |lb| {
                    r.load_balancer(lb).map(|a| (a.dns_name, a.zone_id))
                })
            })?;
            let mut changes: Vec<(ChangeAction, RecordSet)> = replaces
                .iter()
                .map(|o| (ChangeAction::Delete, RecordSet::from(o)))
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
                kind: RecordKind::Txt,
                ttl: Some(MARKER_TTL),
                values: marker_values(
                    &m.stack,
                    &m.step,
                    cloud.now(),
                    m.ttl,
                    Some(cloud.propagation_allowance()),
                ),
                alias: None,
                weighted: None,
            });
            if let Some(m) = &marker {
                changes.push((ChangeAction::Upsert, m.clone()));
            }
            let comment = format!("reconcile: {name} {kind} ({step:?})");
            let id = match cloud.change_records(zone_id, &changes, &comment).await {
                // The records to replace are already gone: an earlier attempt of this very
                // batch went through (its answer was lost). The upserts alone finish it.
                Err(e)
                    if C::stale_batch(&e)
                        && changes.iter().any(|(a, _)| *a == ChangeAction::Delete) =>
                {
                    changes.retain(|(action, _)| matches!(action, ChangeAction::Upsert));
                    cloud.change_records(zone_id, &changes, &comment).await?
                }
                other => other?,
            };
            cloud.with_refs(|r| {
                r.changes.insert((name.clone(), *step), id);
                r.zones.insert(name.clone(), zone_id.clone());
                if let Some(m) = marker {
                    r.markers.insert(m.name.clone(), m);
                }
            });
        }
        Op::ClearMarker { zone_id, record } => {
            let written = cloud.with_refs(|r| r.markers.get(&record.name).cloned());
            let current =
                written.or_else(|| (!record.values.is_empty()).then(|| RecordSet::from(record)));
            if let Some(set) = current {
                cloud
                    .change_records(
                        zone_id,
                        &[(ChangeAction::Delete, set)],
                        "reconcile: wait marker done",
                    )
                    .await?;
                cloud.with_refs(|r| r.markers.remove(&record.name));
            }
        }
    }
    Ok(())
}

/// The batch of one cutover change: from the simple old record (or the weighted pair at
/// `from`) to the pair at `to`, to the new value alone (100) or back to the old one (0).
/// The deletes name the sets exactly as they stand, as Route53 asks.
pub fn cutover_batch(c: &CutoverStep, new: &RecordSet) -> Vec<(ChangeAction, RecordSet)> {
    let (old_id, new_id) = crate::names::cutover_set_ids(&new.name, new.kind.as_str());
    let old = RecordSet::from(&c.old);
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

/// The groups a listener serves now, each sent traffic (weight 1).
fn sending(serving: &[String]) -> Vec<(String, u32)> {
    serving.iter().map(|a| (a.clone(), 1)).collect()
}

/// A listener's default action: the target group resolved (`forward`), or the redirect.
fn action<'a>(serve: &'a Serve, forward: &'a [(String, u32)]) -> ListenerAction<'a> {
    match serve {
        Serve::Forward(_) => ListenerAction::Forward(forward),
        Serve::Redirect(r) => ListenerAction::Redirect(r),
    }
}
