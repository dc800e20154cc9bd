//! What the read looks for, per stack, derived from the desired model; and which stacks a
//! resource found by a shared listing belongs to.

use std::collections::BTreeSet;

use crate::manifest::net;
use crate::model::{
    CertSpec, Desired, GroupRef, ObservedLb, ObservedListener, ObservedSg, ObservedTg, RecordKind,
    RecordTo, Source, Tags,
};
use crate::names;

/// One stack's part of the read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Scope {
    /// The stack id: requests made for this stack are counted under it.
    pub stack: String,
    /// The load balancer's name and its replacement's.
    pub load_balancer_names: Vec<String>,
    /// `<stack>-`: target groups and security groups named so are read (the stack's, and
    /// any that look like them).
    pub name_prefix: String,
    /// ARNs of the load balancer and target groups the manifest adopts (read whatever
    /// their names).
    pub adopted: BTreeSet<String>,
    pub vpc: String,
    /// Security group ids the manifest names (existing groups, `from` ids, load balancer
    /// groups by id); read by id when they are not in a VPC read anyway.
    pub group_ids: BTreeSet<String>,
    pub zone: Option<String>,
    /// Record names in normal form; their subdomains are read too (markers such as
    /// `_reconcile.www.example.com`).
    pub record_names: Vec<String>,
    pub cert_domains: BTreeSet<String>,
    pub cert_arns: BTreeSet<String>,
    /// Domains of the certificates the stack requests: pending ones for them are read
    /// (their validation records).
    pub requested_domains: BTreeSet<String>,
    /// The names those certificates cover (wildcards without `*.`): their DNS validation
    /// records (`_<token>.<name>`) are read from the zone.
    pub requested_names: BTreeSet<String>,
    /// Instances the target groups list: read for the security groups that guard them.
    pub targets: BTreeSet<String>,
    /// The load balancer's subnets: read for their VPC and availability zone.
    pub subnets: BTreeSet<String>,
    /// Addresses and host names the records lead to directly (`values`): the instances
    /// that own them are read, for the security groups that guard them.
    pub addresses: BTreeSet<String>,
    pub host_names: BTreeSet<String>,
    /// Ports of the listeners the manifest sets response headers on; `None` without a
    /// load balancer (its listeners' headers are then nothing to compare with).
    pub header_ports: Option<BTreeSet<u16>>,
}

/// The values of the records that lead to the instances directly: host names (CNAME) or
/// addresses (A, AAAA).
fn direct_values(desired: &Desired, host_names: bool) -> BTreeSet<String> {
    desired
        .dns
        .iter()
        .flat_map(|d| &d.records)
        .filter(|r| (r.kind == RecordKind::Cname) == host_names)
        .flat_map(|r| match &r.to {
            RecordTo::Values(v) => v.clone(),
            RecordTo::LoadBalancer => vec![],
        })
        .collect()
}

impl Scope {
    pub fn of(desired: &Desired) -> Scope {
        let lb = &desired.lb_name();
        let mut group_ids = BTreeSet::new();
        for sg in desired.security_groups.values() {
            group_ids.extend(sg.existing.iter().cloned());
            group_ids.extend(sg.adopt.iter().cloned());
            for key in sg.rules.keys() {
                if let Source::Group(id) = &key.source {
                    group_ids.insert(id.clone());
                }
            }
        }
        for g in desired
            .load_balancer
            .iter()
            .flat_map(|lb| &lb.security_groups)
        {
            if let GroupRef::Id(id) = g {
                group_ids.insert(id.clone());
            }
        }
        let (mut cert_domains, mut cert_arns) = (BTreeSet::new(), BTreeSet::new());
        let mut requested_domains = BTreeSet::new();
        let mut requested_names = BTreeSet::new();
        for spec in desired.certificates.values() {
            match spec {
                CertSpec::Domain(d) => {
                    cert_domains.insert(net::normalize_dns(d));
                }
                CertSpec::Arn(a) => {
                    cert_arns.insert(a.clone());
                }
                CertSpec::Request(names) => {
                    cert_domains.extend(names.iter().map(|n| net::normalize_dns(n)));
                    requested_domains.extend(names.first().map(|n| net::normalize_dns(n)));
                    requested_names.extend(names.iter().map(|n| {
                        let n = net::normalize_dns(n);
                        n.strip_prefix("*.").map(str::to_owned).unwrap_or(n)
                    }));
                }
            }
        }
        Scope {
            stack: desired.stack.clone(),
            load_balancer_names: vec![lb.clone(), names::alternate(lb)],
            name_prefix: format!("{}-", desired.stack),
            adopted: desired
                .load_balancer
                .iter()
                .filter_map(|lb| lb.adopt.clone())
                .chain(
                    desired
                        .target_groups
                        .values()
                        .filter_map(|t| t.adopt.clone()),
                )
                .collect(),
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
            requested_domains,
            requested_names,
            targets: desired
                .target_groups
                .values()
                .flat_map(|t| t.targets.iter().cloned())
                .collect(),
            subnets: desired
                .load_balancer
                .as_ref()
                .map(|lb| lb.subnets.clone())
                .unwrap_or_default(),
            addresses: direct_values(desired, false),
            host_names: direct_values(desired, true),
            header_ports: desired.load_balancer.as_ref().map(|lb| lb.header_ports()),
        }
    }

    /// Are a listener's response headers to be read: one the manifest gives `headers` to,
    /// or one whose headers the stack managed before (its load balancer's
    /// [`names::HEADERS_TAG`] lists it), of a load balancer the manifest keeps?
    pub fn wants_headers(&self, lb_tags: &Tags, l: &ObservedListener) -> bool {
        let before = lb_tags
            .get(names::HEADERS_TAG)
            .is_some_and(|v| names::header_ports(v).contains(&l.port));
        self.header_ports
            .as_ref()
            .is_some_and(|ports| ports.contains(&l.port) || before)
    }

    /// Is a load balancer the stack's to read: named after it, or adopted?
    pub fn wants_load_balancer(&self, lb: &ObservedLb) -> bool {
        self.load_balancer_names.contains(&lb.name) || self.adopted.contains(&lb.arn)
    }

    /// Is a target group the stack's to read: named `<stack>-...`, adopted, or used by
    /// one of the stack's load balancers (`stack_lbs`: a group adopted once, then left out
    /// of the manifest, is still found and, carrying the stack's tag, deleted)?
    pub fn wants_target_group(&self, tg: &ObservedTg, stack_lbs: &BTreeSet<String>) -> bool {
        tg.name.starts_with(&self.name_prefix)
            || self.adopted.contains(&tg.arn)
            || tg.load_balancers.iter().any(|a| stack_lbs.contains(a))
    }

    /// Is a security group one the stack speaks about: named by id in the manifest, in
    /// the stack's VPC and named `<stack>-...` or tagged with the stack, or attached to
    /// one of the stack's load balancers (`lb_groups`)? The rest of the VPC is left out:
    /// stacks sharing a VPC would otherwise each hold every other stack's groups.
    pub fn wants_group(&self, g: &ObservedSg, lb_groups: &BTreeSet<String>) -> bool {
        self.group_ids.contains(&g.id)
            || lb_groups.contains(&g.id)
            || (g.vpc == self.vpc
                && (g.name.starts_with(&self.name_prefix)
                    || g.tags.get(names::STACK_TAG) == Some(&self.stack)))
    }

    /// Is a record (name in normal form) one the manifest speaks about, or under one, or
    /// the validation record of a certificate it requests (one `_` label right under one
    /// of its names)?
    pub fn keeps_record(&self, name: &str) -> bool {
        let under = |want: &str| {
            name.strip_suffix(want)
                .and_then(|head| head.strip_suffix('.'))
        };
        self.record_names
            .iter()
            .any(|want| name == want || under(want).is_some())
            || self.requested_names.iter().any(|want| {
                under(want).is_some_and(|label| label.starts_with('_') && !label.contains('.'))
            })
    }

    /// Do these names cover every domain a certificate is asked for by?
    pub fn covers_every_domain(&self, names: &[String]) -> bool {
        self.cert_domains
            .iter()
            .all(|d| names.iter().any(|n| net::covers(n, d)))
    }
}

/// The stacks of one read, in the caller's order.
pub(super) struct Scopes(pub Vec<Scope>);

impl Scopes {
    /// The ids of the stacks `wants` picks, for counting the requests made for them.
    pub fn stacks_where(&self, wants: impl Fn(&Scope) -> bool) -> Vec<String> {
        self.0
            .iter()
            .filter(|s| wants(s))
            .map(|s| s.stack.clone())
            .collect()
    }

    /// Every value `of` gives over the stacks, each once, sorted.
    pub fn union<'a, I>(&'a self, of: impl Fn(&'a Scope) -> I) -> Vec<String>
    where
        I: IntoIterator<Item = &'a String>,
    {
        let set: BTreeSet<&String> = self.0.iter().flat_map(of).collect();
        set.into_iter().cloned().collect()
    }
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

    #[test]
    fn scope_of_the_example() -> std::result::Result<(), String> {
        let scope = example()?;
        assert_eq!(scope.stack, "www-example");
        assert_eq!(
            scope.load_balancer_names,
            vec!["www-example", "www-example-r"]
        );
        assert_eq!(scope.name_prefix, "www-example-");
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

    #[test]
    fn a_stack_keeps_the_groups_it_speaks_about() -> std::result::Result<(), String> {
        let scope = example()?;
        let group = |id: &str, name: &str, vpc: &str, stack: Option<&str>| ObservedSg {
            id: id.into(),
            name: name.into(),
            vpc: vpc.into(),
            description: String::new(),
            tags: stack
                .map(|s| (names::STACK_TAG.to_owned(), s.to_owned()))
                .into_iter()
                .collect(),
            rules: vec![],
        };
        let vpc = scope.vpc.clone();
        let none = BTreeSet::new();
        let wants = |g: &ObservedSg| scope.wants_group(g, &none);
        assert!(wants(&group(
            "sg-0123456789abcdef0",
            "www-backend",
            "vpc-x",
            None
        )));
        assert!(wants(&group("sg-1", "www-example-lb", &vpc, None)));
        assert!(wants(&group("sg-2", "renamed", &vpc, Some("www-example"))));
        assert!(!wants(&group("sg-3", "www-example-lb", "vpc-other", None)));
        assert!(!wants(&group("sg-4", "site-2-lb", &vpc, Some("site-2"))));
        let attached = BTreeSet::from(["sg-4".to_owned()]);
        assert!(scope.wants_group(&group("sg-4", "site-2-lb", &vpc, Some("site-2")), &attached));
        Ok(())
    }

    fn lb(name: &str) -> ObservedLb {
        ObservedLb {
            arn: format!("arn:lb/{name}"),
            name: name.to_owned(),
            dns_name: String::new(),
            hosted_zone_id: String::new(),
            scheme: "internet-facing".into(),
            state: crate::model::LbState::Active,
            vpc: String::new(),
            subnets: BTreeSet::new(),
            security_groups: BTreeSet::new(),
            tags: Default::default(),
            listeners: vec![],
            attributes: None,
        }
    }

    fn tg(name: &str, lbs: &[&str]) -> ObservedTg {
        ObservedTg {
            arn: format!("arn:tg/{name}"),
            name: name.to_owned(),
            port: 80,
            protocol: crate::model::Protocol::Http,
            vpc: String::new(),
            health: crate::model::HealthCheck {
                protocol: crate::model::Protocol::Http,
                port: crate::model::HealthPort::TrafficPort,
                path: "/".into(),
                matcher: "200".into(),
                interval_seconds: 30,
                timeout_seconds: 5,
                healthy_threshold: 5,
                unhealthy_threshold: 2,
            },
            tags: Default::default(),
            load_balancers: lbs.iter().map(|s| (*s).to_owned()).collect(),
            targets: vec![],
        }
    }

    #[test]
    fn stacks_are_told_apart_by_prefix_and_name() -> std::result::Result<(), String> {
        let one = example()?;
        let ten = Scope {
            stack: "www-example0".into(),
            load_balancer_names: vec!["www-example0".into(), "www-example0-r".into()],
            name_prefix: "www-example0-".into(),
            ..one.clone()
        };
        let none = BTreeSet::new();
        assert!(one.wants_target_group(&tg("www-example-app", &[]), &none));
        assert!(!one.wants_target_group(&tg("www-example0-app", &[]), &none));
        assert!(ten.wants_target_group(&tg("www-example0-app", &[]), &none));
        assert!(!ten.wants_load_balancer(&lb("www-example")));
        // A group of another name used by the stack's load balancer is read (one adopted,
        // then left out of the manifest); one used by another's is not.
        let mine = BTreeSet::from(["arn:lb/www-example".to_owned()]);
        assert!(one.wants_target_group(&tg("handmade", &["arn:lb/www-example"]), &mine));
        assert!(!one.wants_target_group(&tg("handmade", &["arn:lb/other"]), &mine));
        let scopes = Scopes(vec![one, ten]);
        assert_eq!(
            scopes.stacks_where(|s| s.wants_load_balancer(&lb("www-example-r"))),
            vec!["www-example"]
        );
        assert_eq!(
            scopes.union(|s| &s.load_balancer_names),
            vec![
                "www-example",
                "www-example-r",
                "www-example0",
                "www-example0-r"
            ]
        );
        Ok(())
    }
}
