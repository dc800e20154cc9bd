//! One read of everything a manifest speaks about, with the fewest requests: list calls
//! instead of lookups that fail on a missing name, batches where AWS takes them, and every
//! request sent as soon as the answers it needs are in (independent chains run together).
//!
//! For the example manifest this is at most 12 requests in 3 rounds, empty or converged:
//!
//! - round 1: `DescribeLoadBalancers`, `DescribeTargetGroups`, `DescribeSecurityGroups`
//!   (the VPC's), `ListHostedZonesByName`, `ListCertificates` (when a certificate is asked
//!   for by domain), `DescribeCertificate` per certificate pinned by ARN;
//! - round 2: `DescribeListeners` per load balancer, `DescribeTags` (20 ARNs a call),
//!   `DescribeTargetHealth` per target group, `ListResourceRecordSets`; and only when
//!   needed, `DescribeSecurityGroups` for groups named by id outside the VPC and
//!   `DescribeCertificate` for listed certificates whose names the listing left out.
//!
//! A later page of a listing is one round later, and so is everything that needs it.

use std::collections::{BTreeMap, BTreeSet};

use crate::aws::acm::Acm;
use crate::aws::ec2::Ec2;
use crate::aws::elbv2::Elbv2;
use crate::aws::route53::Route53;
use crate::aws::{self, try_join_all, Clients, Meter, Round};
use crate::manifest::net;
use crate::model::{
    CertSpec, Desired, GroupRef, Observed, ObservedCert, ObservedLb, ObservedSg, ObservedTg,
    ObservedZone, Source,
};
use crate::names;

type Result<T, E = aws::Error> = std::result::Result<T, E>;

/// Reads the live state the desired model speaks about. Resources that vanish between
/// two rounds (deleted meanwhile) are left out rather than reported half-read.
pub async fn observe(
    clients: &Clients,
    meter: &Meter,
    desired: &Desired,
) -> Result<Observed, aws::Error> {
    let scope = Scope::of(desired);
    let elb = Elbv2::new(&clients.elbv2, meter);
    let ec2 = Ec2::new(&clients.ec2, meter);
    let route53 = Route53::new(&clients.route53, meter);
    let acm = Acm::new(&clients.acm, meter);
    let ((load_balancers, target_groups), security_groups, zone, certificates) = tokio::try_join!(
        read_elb(&elb, &scope),
        read_security_groups(&ec2, &scope),
        read_zone(&route53, &scope),
        read_certificates(&acm, &scope),
    )?;
    Ok(Observed {
        load_balancers,
        target_groups,
        security_groups,
        certificates,
        zone,
    })
}

/// What the read looks for, derived from the desired model.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Scope {
    /// The load balancer's name and its replacement's.
    load_balancer_names: Vec<String>,
    /// Target groups named `<stack>-...` (the stack's, and any that look like them).
    target_group_prefix: String,
    vpc: String,
    /// Security group ids the manifest names (existing groups, `from` ids, load balancer
    /// groups by id); read by id when they are not in the VPC.
    group_ids: BTreeSet<String>,
    zone: Option<String>,
    /// Record names in normal form; their subdomains are read too (markers such as
    /// `_reconcile.www.example.com`).
    record_names: Vec<String>,
    cert_domains: BTreeSet<String>,
    cert_arns: BTreeSet<String>,
}

impl Scope {
    fn of(desired: &Desired) -> Scope {
        let lb = &desired.load_balancer.name;
        let mut group_ids = BTreeSet::new();
        for sg in desired.security_groups.values() {
            group_ids.extend(sg.existing.iter().cloned());
            for key in sg.rules.keys() {
                if let Source::Group(id) = &key.source {
                    group_ids.insert(id.clone());
                }
            }
        }
        for g in &desired.load_balancer.security_groups {
            if let GroupRef::Id(id) = g {
                group_ids.insert(id.clone());
            }
        }
        let (mut cert_domains, mut cert_arns) = (BTreeSet::new(), BTreeSet::new());
        for spec in desired.certificates.values() {
            match spec {
                CertSpec::Domain(d) => cert_domains.insert(net::normalize_dns(d)),
                CertSpec::Arn(a) => cert_arns.insert(a.clone()),
            };
        }
        Scope {
            load_balancer_names: vec![lb.clone(), names::alternate(lb)],
            target_group_prefix: format!("{}-", desired.stack),
            vpc: desired.vpc.clone(),
            group_ids,
            zone: desired.dns.as_ref().map(|d| net::normalize_dns(&d.zone)),
            record_names: desired
                .dns
                .iter()
                .flat_map(|d| &d.records)
                .map(|r| net::normalize_dns(&r.name))
                .collect(),
            cert_domains,
            cert_arns,
        }
    }

    /// Is a record (name in normal form) one the manifest speaks about, or under one?
    fn keeps_record(&self, name: &str) -> bool {
        self.record_names.iter().any(|want| {
            name == want
                || name
                    .strip_suffix(want.as_str())
                    .is_some_and(|head| head.ends_with('.'))
        })
    }

    /// Do these names cover every domain a certificate is asked for by?
    fn covers_every_domain(&self, names: &[String]) -> bool {
        self.cert_domains
            .iter()
            .all(|d| names.iter().any(|n| net::covers(n, d)))
    }
}

/// Load balancers with listeners and tags; target groups with tags and target health.
async fn read_elb(elb: &Elbv2, scope: &Scope) -> Result<(Vec<ObservedLb>, Vec<ObservedTg>)> {
    let (lbs, tgs) = tokio::try_join!(
        elb.load_balancers(&scope.load_balancer_names, Round::START),
        elb.target_groups(&scope.target_group_prefix, Round::START),
    )?;
    let arns: Vec<String> = lbs
        .value
        .iter()
        .map(|lb| lb.arn.clone())
        .chain(tgs.value.iter().map(|tg| tg.arn.clone()))
        .collect();
    let (listeners, tags, health) = tokio::try_join!(
        try_join_all(lbs.value.iter().map(|lb| elb.listeners(&lb.arn, lbs.round))),
        elb.tags(&arns, lbs.round.max(tgs.round)),
        try_join_all(
            tgs.value
                .iter()
                .map(|tg| elb.target_health(&tg.arn, tgs.round))
        ),
    )?;
    let tags = tags.value;
    let mut load_balancers: Vec<ObservedLb> = lbs
        .value
        .into_iter()
        .zip(listeners)
        .filter_map(|(mut lb, listeners)| {
            lb.listeners = listeners.value?;
            lb.tags = tags.get(&lb.arn).cloned().unwrap_or_default();
            Some(lb)
        })
        .collect();
    load_balancers.sort_by(|a, b| (&a.name, &a.arn).cmp(&(&b.name, &b.arn)));
    let mut target_groups: Vec<ObservedTg> = tgs
        .value
        .into_iter()
        .zip(health)
        .filter_map(|(mut tg, targets)| {
            tg.targets = targets.value?;
            tg.tags = tags.get(&tg.arn).cloned().unwrap_or_default();
            Some(tg)
        })
        .collect();
    target_groups.sort_by(|a, b| (&a.name, &a.arn).cmp(&(&b.name, &b.arn)));
    Ok((load_balancers, target_groups))
}

/// The VPC's groups, then (one round later, only if some are missing) the groups the
/// manifest names by id that live elsewhere.
async fn read_security_groups(ec2: &Ec2, scope: &Scope) -> Result<Vec<ObservedSg>> {
    let in_vpc = ec2.security_groups_in_vpc(&scope.vpc, Round::START).await?;
    let missing: Vec<String> = scope
        .group_ids
        .iter()
        .filter(|id| !in_vpc.value.iter().any(|g| &&g.id == id))
        .cloned()
        .collect();
    let elsewhere = ec2.security_groups_by_id(&missing, in_vpc.round).await?;
    let mut groups = in_vpc.value;
    groups.extend(elsewhere.value);
    groups.sort_by(|a, b| a.id.cmp(&b.id));
    groups.dedup_by(|a, b| a.id == b.id);
    // Apply locks come and go with runs; they are not part of any stack's state.
    groups.retain(|g| !g.tags.contains_key(crate::apply::lock::LOCK_TAG));
    Ok(groups)
}

/// The zone named under `dns` with the records the manifest speaks about.
async fn read_zone(route53: &Route53, scope: &Scope) -> Result<Option<ObservedZone>> {
    let Some(name) = &scope.zone else {
        return Ok(None);
    };
    let found = route53.zone_named(name, Round::START).await?;
    let Some(mut zone) = found.value else {
        return Ok(None);
    };
    let records = route53
        .records(&zone.id, |n| scope.keeps_record(n), found.round)
        .await?;
    zone.records = records.value;
    Ok(Some(zone))
}

/// Certificates pinned by ARN (a missing one is left out), and, when a certificate is
/// asked for by domain, every ISSUED one. A listed certificate whose known names do not
/// settle the question is described for its full list of names; one whose domain already
/// covers every domain asked for is not, so when the listing leaves out the alternative
/// names (moto does) its `names` holds only its domain.
async fn read_certificates(acm: &Acm, scope: &Scope) -> Result<Vec<ObservedCert>> {
    let listing = async {
        if scope.cert_domains.is_empty() {
            Ok(None)
        } else {
            acm.issued(Round::START).await.map(Some)
        }
    };
    let pinned = try_join_all(
        scope
            .cert_arns
            .iter()
            .map(|arn| acm.certificate(arn, Round::START)),
    );
    let (listed, pinned) = tokio::try_join!(listing, pinned)?;
    let mut certs: BTreeMap<String, ObservedCert> = pinned
        .into_iter()
        .filter_map(|a| a.value)
        .map(|c| (c.arn.clone(), c))
        .collect();
    if let Some(listed) = listed {
        let mut unsettled = Vec::new();
        for l in listed.value {
            if certs.contains_key(&l.cert.arn) {
                continue;
            }
            if l.names_complete || scope.covers_every_domain(&l.cert.names) {
                certs.insert(l.cert.arn.clone(), l.cert);
            } else {
                unsettled.push(l.cert.arn);
            }
        }
        let described = try_join_all(
            unsettled
                .iter()
                .map(|arn| acm.certificate(arn, listed.round)),
        )
        .await?;
        for c in described.into_iter().filter_map(|a| a.value) {
            certs.insert(c.arn.clone(), c);
        }
    }
    Ok(certs.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest;

    fn example() -> std::result::Result<Scope, String> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("manifests")
            .join("site.example.json");
        manifest::load(&path)
            .map(|m| Scope::of(&Desired::from_manifest(&m)))
            .map_err(|d| format!("{d:?}"))
    }

    /// Compiles only if the read can be spawned on a multi-threaded runtime.
    #[allow(dead_code)]
    fn observe_is_send(clients: &Clients, meter: &Meter, desired: &Desired) {
        fn send<T: Send>(_: T) {}
        send(observe(clients, meter, desired));
    }

    #[test]
    fn scope_of_the_example() -> std::result::Result<(), String> {
        let scope = example()?;
        assert_eq!(
            scope.load_balancer_names,
            vec!["www-example", "www-example-r"]
        );
        assert_eq!(scope.target_group_prefix, "www-example-");
        assert!(scope.group_ids.contains("sg-0123456789abcdef0"));
        assert_eq!(scope.zone.as_deref(), Some("example.com"));
        assert!(scope.cert_domains.contains("www.example.com"));
        assert!(scope.cert_arns.is_empty());
        Ok(())
    }

    #[test]
    fn records_under_a_desired_name_are_kept() -> std::result::Result<(), String> {
        let scope = example()?;
        assert!(scope.keeps_record("www.example.com"));
        assert!(scope.keeps_record("_reconcile.www.example.com"));
        assert!(!scope.keeps_record("awww.example.com"));
        assert!(!scope.keeps_record("example.com"));
        Ok(())
    }

    #[test]
    fn a_wildcard_settles_the_domain() -> std::result::Result<(), String> {
        let scope = example()?;
        assert!(scope.covers_every_domain(&["*.example.com".to_owned()]));
        assert!(!scope.covers_every_domain(&["example.com".to_owned()]));
        Ok(())
    }
}
