//! One change carried out against AWS: the plan's interpreter ([`crate::plan::carry`])
//! run on the AWS adapters, repeated where AWS's eventual consistency asks for it.
//! Nothing is decided here.

use std::sync::Mutex;

use crate::aws::acm::Acm;
use crate::aws::ec2::Ec2;
use crate::aws::elbv2::Elbv2;
use crate::aws::elbv2::ListenerAction;
use crate::aws::route53::{ChangeAction, RecordSet, Route53};
use crate::aws::{Clients, Meter, Round};
use crate::model::{
    CertStatus, HealthCheck, LbAttr, LbState, Observed, Protocol, ResponseHeader, RuleKey, Tags,
    TargetHealth, ValidationRecord,
};
use crate::plan::carry::{self, Cloud, Unresolved};
use crate::plan::carry::{LbAddress, Refs};
use crate::plan::{CertRef, LbRef, Op, Tagged, TgRef};

use std::time::{Duration, Instant};

use crate::aws::settle;

use super::Error;

/// Everything a node needs to run.
pub struct Context {
    pub clients: Clients,
    pub meter: Meter,
    pub refs: Mutex<Refs>,
    /// Recorded in a wait marker written with its change ([`crate::plan::dns::Stamp`]).
    pub propagation_allowance: u32,
    /// The run's time.
    pub clock: Clock,
}

/// The run's time: tokio's monotonic clock (a test may pause it) from the wall clock's
/// reading when the run began.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    wall: Duration,
    began: tokio::time::Instant,
}

impl Clock {
    pub fn start() -> Clock {
        Clock {
            wall: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default(),
            began: tokio::time::Instant::now(),
        }
    }

    /// Time since the Unix epoch.
    pub fn epoch(&self) -> Duration {
        self.wall + self.began.elapsed()
    }

    /// Seconds since the epoch, rounded down: for "has the wait ended yet".
    pub fn secs(&self) -> i64 {
        i64::try_from(self.epoch().as_secs()).unwrap_or(i64::MAX)
    }

    /// How long from now until `end` (epoch seconds); zero once passed.
    pub fn until(&self, end: i64) -> Duration {
        Duration::from_secs(u64::try_from(end).unwrap_or(0)).saturating_sub(self.epoch())
    }
}

impl Context {
    pub fn new(
        clients: Clients,
        meter: Meter,
        observed: &Observed,
        propagation_allowance: u32,
    ) -> Context {
        let refs = Refs::with_load_balancers(observed.load_balancers.iter().map(|l| LbAddress {
            arn: l.arn.clone(),
            dns_name: l.dns_name.clone(),
            zone_id: l.hosted_zone_id.clone(),
        }));
        Context {
            clients,
            meter,
            refs: Mutex::new(refs),
            propagation_allowance,
            clock: Clock::start(),
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
        Ok(self.refs().certificate(c)?)
    }

    pub fn target_group_arn(&self, t: &TgRef) -> Result<String, Error> {
        Ok(self.refs().target_group(t)?)
    }

    pub fn load_balancer(&self, l: &LbRef) -> Result<LbAddress, Error> {
        Ok(self.refs().load_balancer(l)?)
    }
}

impl From<Unresolved> for Error {
    fn from(e: Unresolved) -> Error {
        Error::Bug(e.to_string())
    }
}

/// The run's clock.
impl crate::plan::wait::Clock for Context {
    fn epoch(&self) -> Duration {
        self.clock.epoch()
    }

    async fn sleep(&self, d: Duration) {
        tokio::time::sleep(d).await;
    }
}

/// AWS, through the adapters: each call metered, paced and its errors mapped once there.
impl Cloud for Context {
    type Error = Error;

    fn with_refs<T>(&self, f: impl FnOnce(&mut Refs) -> T) -> T {
        f(&mut self.refs())
    }

    fn may_not_know(&self, id: &str, waited: Duration) -> bool {
        settle::is_fresh(id) || waited < settle::LISTED_SETTLE
    }

    fn propagation_allowance(&self) -> u32 {
        self.propagation_allowance
    }

    fn stale_batch(error: &Error) -> bool {
        matches!(error, Error::Aws { source, .. } if source.code() == Some("InvalidChangeBatch"))
    }

    async fn create_security_group(
        &self,
        name: &str,
        description: &str,
        vpc: &str,
        tags: &Tags,
    ) -> Result<String, Error> {
        Ok(self
            .ec2()
            .create_security_group(name, description, vpc, tags)
            .await?)
    }

    async fn authorize_ingress(
        &self,
        group: &str,
        rules: &[(RuleKey, Option<String>)],
    ) -> Result<(), Error> {
        Ok(self.ec2().authorize_ingress(group, rules).await?)
    }

    async fn update_rule_descriptions(
        &self,
        group: &str,
        rules: &[(RuleKey, Option<String>)],
    ) -> Result<(), Error> {
        Ok(self.ec2().update_rule_descriptions(group, rules).await?)
    }

    async fn revoke_ingress(&self, group: &str, rules: &[RuleKey]) -> Result<(), Error> {
        Ok(self.ec2().revoke_ingress(group, rules).await?)
    }

    async fn delete_security_group(&self, id: &str) -> Result<(), Error> {
        Ok(self.ec2().delete_security_group(id).await?)
    }

    async fn tag(&self, resource: &Tagged, tags: &Tags) -> Result<(), Error> {
        match resource {
            Tagged::LoadBalancer { arn } | Tagged::TargetGroup { arn } => {
                self.elbv2().add_tags(arn, tags).await?
            }
            Tagged::SecurityGroup { id } => self.ec2().set_tags(id, tags).await?,
        }
        Ok(())
    }

    async fn create_target_group(
        &self,
        name: &str,
        port: u16,
        protocol: &Protocol,
        vpc: &str,
        health: &HealthCheck,
        tags: &Tags,
    ) -> Result<String, Error> {
        Ok(self
            .elbv2()
            .create_target_group(name, port, protocol, vpc, health, tags)
            .await?)
    }

    async fn modify_health_check(&self, arn: &str, health: &HealthCheck) -> Result<(), Error> {
        Ok(self.elbv2().modify_health_check(arn, health).await?)
    }

    async fn register_targets(&self, arn: &str, ids: &[String]) -> Result<(), Error> {
        Ok(self.elbv2().register_targets(arn, ids).await?)
    }

    async fn deregister_targets(&self, arn: &str, ids: &[String]) -> Result<(), Error> {
        Ok(self.elbv2().deregister_targets(arn, ids).await?)
    }

    async fn delete_target_group(&self, arn: &str) -> Result<(), Error> {
        Ok(self.elbv2().delete_target_group(arn).await?)
    }

    async fn create_load_balancer(
        &self,
        name: &str,
        scheme: &str,
        subnets: &[String],
        groups: &[String],
        tags: &Tags,
    ) -> Result<LbAddress, Error> {
        let lb = self
            .elbv2()
            .create_load_balancer(name, scheme, subnets, groups, tags)
            .await?;
        Ok(LbAddress {
            arn: lb.arn,
            dns_name: lb.dns_name,
            zone_id: lb.hosted_zone_id,
        })
    }

    async fn set_subnets(&self, arn: &str, subnets: &[String]) -> Result<(), Error> {
        Ok(self.elbv2().set_subnets(arn, subnets).await?)
    }

    async fn set_security_groups(&self, arn: &str, groups: &[String]) -> Result<(), Error> {
        Ok(self.elbv2().set_security_groups(arn, groups).await?)
    }

    async fn set_lb_attributes(
        &self,
        arn: &str,
        attributes: &[(LbAttr, String)],
    ) -> Result<(), Error> {
        Ok(self.elbv2().set_lb_attributes(arn, attributes).await?)
    }

    async fn delete_load_balancer(&self, arn: &str) -> Result<(), Error> {
        Ok(self.elbv2().delete_load_balancer(arn).await?)
    }

    async fn request_certificate(
        &self,
        names: &[String],
        token: &str,
        tags: &Tags,
    ) -> Result<String, Error> {
        let arn = self.acm().request(names, token, tags).await?;
        settle::created(&arn);
        Ok(arn)
    }

    /// ACM makes them a few seconds after the request, so they are asked for until they
    /// are there (every name's), within [`settle::SETTLE`].
    async fn validation_records(
        &self,
        key: &str,
        arn: &str,
    ) -> Result<Vec<ValidationRecord>, Error> {
        let t0 = Instant::now();
        let mut attempt = 0;
        loop {
            if let Some((_, records)) = self.acm().status(arn).await? {
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

    async fn delete_certificate(&self, arn: &str) -> Result<(), Error> {
        Ok(self.acm().delete(arn).await?)
    }

    async fn create_listener(
        &self,
        lb: &str,
        port: u16,
        protocol: &Protocol,
        certificate: Option<&str>,
        ssl_policy: Option<&str>,
        to: ListenerAction<'_>,
    ) -> Result<String, Error> {
        Ok(self
            .elbv2()
            .create_listener(lb, port, protocol, certificate, ssl_policy, to)
            .await?)
    }

    async fn modify_listener(
        &self,
        arn: &str,
        protocol: &Protocol,
        certificate: Option<&str>,
        ssl_policy: Option<&str>,
        to: ListenerAction<'_>,
    ) -> Result<(), Error> {
        Ok(self
            .elbv2()
            .modify_listener(arn, protocol, certificate, ssl_policy, to)
            .await?)
    }

    async fn set_listener_headers(
        &self,
        arn: &str,
        headers: &[(ResponseHeader, String)],
    ) -> Result<(), Error> {
        Ok(self.elbv2().set_listener_headers(arn, headers).await?)
    }

    async fn delete_listener(&self, arn: &str) -> Result<(), Error> {
        Ok(self.elbv2().delete_listener(arn).await?)
    }

    async fn change_records(
        &self,
        zone_id: &str,
        changes: &[(ChangeAction, RecordSet)],
        comment: &str,
    ) -> Result<String, Error> {
        Ok(self.route53().change(zone_id, changes, comment).await?)
    }

    async fn load_balancer_state(&self, arn: &str) -> Result<Option<LbState>, Error> {
        Ok(self.elbv2().load_balancer_state(arn).await?)
    }

    async fn target_health(&self, arn: &str) -> Result<Option<Vec<TargetHealth>>, Error> {
        Ok(self.elbv2().target_health(arn, Round::START).await?.value)
    }

    async fn group_rules(&self, id: &str) -> Result<Option<Vec<RuleKey>>, Error> {
        let found = self
            .ec2()
            .security_groups_by_id(&[id.to_owned()], Round::START)
            .await?
            .value;
        Ok(found
            .into_iter()
            .next()
            .map(|g| g.rules.into_iter().map(|r| r.key).collect()))
    }

    async fn certificate_status(&self, arn: &str) -> Result<Option<CertStatus>, Error> {
        Ok(self.acm().status(arn).await?.map(|(status, _)| status))
    }

    async fn change_in_sync(&self, change: &str) -> Result<bool, Error> {
        Ok(self.route53().change_status(change).await?
            == aws_sdk_route53::types::ChangeStatus::Insync)
    }
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
    carry::carry(ctx, op).await
}
