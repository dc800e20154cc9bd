//! The observer against the emulator: the article's starting point, a converged front door
//! built with the SDK here in the test, and reads by id (pinned certificates, groups
//! outside the VPC). Each read must stay within 12 requests in 3 rounds.
//!
//! moto 5.2.5 quirks met here (and handled by the adapters, not by these tests):
//! - `ListCertificates` gives no `SubjectAlternativeNameSummaries`, so a listed
//!   certificate's names are only its domain until `DescribeCertificate`; the observer
//!   describes only certificates whose domain does not already settle the manifest.
//! - The zone's SOA value is a Python dict printed as text; SOA and NS are skipped.
//! - Route53 keeps a record name's case as written and lists sets in insertion order (AWS
//!   lowercases and sorts by reversed labels), so names are normalised and the whole zone
//!   is listed rather than a range of it.
//! - Alias records come back with no TTL; alias names keep the `dualstack.` prefix given.
//! - `DescribeTags` answers for ARNs that do not exist (empty tags) where AWS fails with
//!   `LoadBalancerNotFound`; the adapter handles both.
//! - `DescribeLoadBalancers`/`DescribeTargetGroups` ignore `PageSize` (one page, always).
//! - A load balancer is `provisioning` in the create answer and `active` at the first
//!   describe; a second load balancer with the same name is created, with the same DNS name.
//! - A stopped instance reports `unused` / `Target.InvalidState`.

use std::collections::BTreeSet;

use aws_sdk_ec2::config::Credentials;
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, Certificate, LoadBalancerSchemeEnum, Matcher, ProtocolEnum,
    Tag as ElbTag, TargetDescription,
};
use aws_sdk_route53::types::{
    AliasTarget, Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
};
use reconcile::aws::{self, AwsOptions, Clients, Meter, ReadStats};
use reconcile::model::{
    CertSpec, Desired, GroupRef, HealthPort, ObservedRecord, RuleKey, Source, TargetHealth,
};
use reconcile::observe::observe;
use serde_json::Value;

use crate::emulator::{Emulator, Seeded};

/// The contract's bound for the example manifest.
const MAX_REQUESTS: usize = 12;
const MAX_ROUNDS: usize = 3;

pub(crate) async fn clients(emu: &Emulator) -> Clients {
    let opts = AwsOptions {
        // The oracle under the AWS-like layer: these tests read what AWS holds, not how
        // it answers (the tests in aws_like.rs do that).
        endpoint_url: Some(emu.direct().to_owned()),
        region: Some("us-east-1".into()),
        ..AwsOptions::default()
    };
    // Static dummy credentials (moto checks that requests are signed, not by whom), so
    // that the test needs no change to the process environment.
    let config = aws::loader(&opts)
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .load()
        .await;
    Clients::new(&config)
}

fn desired(seeded: &Seeded) -> Desired {
    let manifest = reconcile::manifest::load(&seeded.manifest).expect("the seeded manifest loads");
    Desired::from_manifest(&manifest)
}

pub(crate) fn id(ids: &Value, key: &str) -> String {
    ids[key].as_str().expect("a seeded id").to_owned()
}

fn check_bound(what: &str, stats: &ReadStats) {
    eprintln!(
        "{what}: {}",
        serde_json::to_string(stats).unwrap_or_default()
    );
    assert!(
        stats.requests <= MAX_REQUESTS && stats.rounds <= MAX_ROUNDS,
        "{what}: {} requests in {} rounds (at most {MAX_REQUESTS} in {MAX_ROUNDS}): {:?}",
        stats.requests,
        stats.rounds,
        stats.by_operation
    );
}

fn rules(observed: &reconcile::model::Observed, group: &str) -> Vec<(String, Option<String>)> {
    observed
        .sg_by_id(group)
        .unwrap_or_else(|| panic!("group {group} is observed"))
        .rules
        .iter()
        .map(|r| (r.key.to_string(), r.description.clone()))
        .collect()
}

#[tokio::test]
async fn reads_the_starting_point() {
    let emu = Emulator::start();
    let seeded = emu.seed(&[]);
    let ids = &seeded.ids;
    let desired = desired(&seeded);
    let clients = clients(&emu).await;
    let meter = Meter::new();

    let observed = observe(&clients, &meter, &desired)
        .await
        .expect("the read works");

    assert!(observed.load_balancers.is_empty());
    assert!(observed.target_groups.is_empty());
    let backend = id(ids, "security_group");
    assert_eq!(
        observed.sg_by_id(&backend).map(|g| g.name.as_str()),
        Some("www-backend")
    );
    assert_eq!(
        rules(&observed, &backend),
        vec![
            (
                "tcp/22 from 198.51.100.0/24".to_owned(),
                Some("office ssh".to_owned())
            ),
            ("tcp/80 from 0.0.0.0/0".to_owned(), None),
            ("tcp/443 from 0.0.0.0/0".to_owned(), None),
        ]
    );
    let [cert] = observed.certificates.as_slice() else {
        panic!("one certificate: {:?}", observed.certificates)
    };
    assert_eq!(cert.arn, id(ids, "certificate_arn"));
    assert_eq!(cert.domain, "www.example.com");
    assert_eq!(cert.status, reconcile::model::CertStatus::Issued);
    assert!(cert.not_after.is_some());
    let zone = observed.zone.as_ref().expect("the zone is found");
    assert_eq!(zone.id, id(ids, "zone_id"));
    assert_eq!(zone.name, "example.com");
    assert_eq!(
        zone.records,
        vec![ObservedRecord {
            weighted: None,
            name: "www.example.com".into(),
            kind: "A".into(),
            ttl: Some(3600),
            values: vec![ids["eip"]["public_ip"].as_str().unwrap_or("").to_owned()],
            alias: None,
        }]
    );

    let stats = meter.stats();
    check_bound("starting point", &stats);
    // The certificate's domain settles the manifest: no DescribeCertificate needed.
    assert!(!stats.by_operation.contains_key("DescribeCertificate"));
}

/// What the converged setup created.
struct Front {
    lb_sg: String,
    lb_arn: String,
    lb_dns: String,
    lb_zone: String,
    http_arn: String,
    app_arn: String,
}

/// Builds the manifest's end state by hand with the SDK, and stops the second backend.
async fn build_front_door(c: &Clients, ids: &Value) -> Front {
    let vpc = id(ids, "vpc");
    let backend = id(ids, "security_group");
    let subnets: Vec<String> = ids["subnets"]
        .as_array()
        .expect("subnets")
        .iter()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect();
    let instances: Vec<String> = ids["instances"]
        .as_array()
        .expect("instances")
        .iter()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect();
    let cert = id(ids, "certificate_arn");

    use aws_sdk_ec2::types::{
        IpPermission, IpRange, Ipv6Range, ResourceType, Tag, TagSpecification, UserIdGroupPair,
    };
    let stack_tag = Tag::builder()
        .key("reconcile:stack")
        .value("www-example")
        .build();
    let lb_sg = c
        .ec2
        .create_security_group()
        .group_name("www-example-lb")
        .description("Public entry for www.example.com")
        .vpc_id(&vpc)
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::SecurityGroup)
                .tags(stack_tag)
                .build(),
        )
        .send()
        .await
        .expect("CreateSecurityGroup")
        .group_id
        .expect("a group id");
    for port in [80, 443] {
        c.ec2
            .authorize_security_group_ingress()
            .group_id(&lb_sg)
            .ip_permissions(
                IpPermission::builder()
                    .ip_protocol("tcp")
                    .from_port(port)
                    .to_port(port)
                    .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
                    .ipv6_ranges(Ipv6Range::builder().cidr_ipv6("::/0").build())
                    .build(),
            )
            .send()
            .await
            .expect("AuthorizeSecurityGroupIngress (lb)");
    }
    c.ec2
        .authorize_security_group_ingress()
        .group_id(&backend)
        .set_ip_permissions(Some(
            [80, 8088]
                .into_iter()
                .map(|port| {
                    IpPermission::builder()
                        .ip_protocol("tcp")
                        .from_port(port)
                        .to_port(port)
                        .user_id_group_pairs(UserIdGroupPair::builder().group_id(&lb_sg).build())
                        .build()
                })
                .collect(),
        ))
        .send()
        .await
        .expect("AuthorizeSecurityGroupIngress (backend)");

    let tags = || {
        vec![
            ElbTag::builder()
                .key("reconcile:stack")
                .value("www-example")
                .build(),
            ElbTag::builder().key("owner").value("web-team").build(),
        ]
    };
    let lb = c
        .elbv2
        .create_load_balancer()
        .name("www-example")
        .set_subnets(Some(subnets))
        .security_groups(&lb_sg)
        .scheme(LoadBalancerSchemeEnum::InternetFacing)
        .set_tags(Some(tags()))
        .send()
        .await
        .expect("CreateLoadBalancer");
    let lb = &lb.load_balancers()[0];
    let lb_arn = lb.load_balancer_arn().expect("an arn").to_owned();
    let lb_dns = lb.dns_name().expect("a DNS name").to_owned();
    let lb_zone = lb.canonical_hosted_zone_id().expect("a zone").to_owned();

    let mut tg_arns = Vec::new();
    for (name, port, hc_port) in [
        ("www-example-http", 80, "8088"),
        ("www-example-app", 8088, "traffic-port"),
    ] {
        let tg = c
            .elbv2
            .create_target_group()
            .name(name)
            .protocol(ProtocolEnum::Http)
            .port(port)
            .vpc_id(&vpc)
            .health_check_port(hc_port)
            .health_check_path("/health/")
            .matcher(Matcher::builder().http_code("200").build())
            .health_check_interval_seconds(30)
            .healthy_threshold_count(2)
            .set_tags(Some(tags()))
            .send()
            .await
            .expect("CreateTargetGroup");
        let arn = tg.target_groups()[0]
            .target_group_arn()
            .expect("an arn")
            .to_owned();
        c.elbv2
            .register_targets()
            .target_group_arn(&arn)
            .set_targets(Some(
                instances
                    .iter()
                    .map(|i| TargetDescription::builder().id(i).build())
                    .collect(),
            ))
            .send()
            .await
            .expect("RegisterTargets");
        tg_arns.push(arn);
    }
    let (http_arn, app_arn) = (tg_arns[0].clone(), tg_arns[1].clone());

    let forward = |arn: &str| {
        Action::builder()
            .r#type(ActionTypeEnum::Forward)
            .target_group_arn(arn)
            .build()
    };
    c.elbv2
        .create_listener()
        .load_balancer_arn(&lb_arn)
        .port(80)
        .protocol(ProtocolEnum::Http)
        .default_actions(forward(&http_arn))
        .send()
        .await
        .expect("CreateListener 80");
    c.elbv2
        .create_listener()
        .load_balancer_arn(&lb_arn)
        .port(443)
        .protocol(ProtocolEnum::Https)
        .certificates(Certificate::builder().certificate_arn(&cert).build())
        .default_actions(forward(&app_arn))
        .send()
        .await
        .expect("CreateListener 443");

    // DNS: www becomes a CNAME (spelled in capitals with a trailing dot, which the read
    // normalises), with a marker, an alias under it, and an unrelated record.
    let eip = ids["eip"]["public_ip"].as_str().expect("an address");
    let rr = |v: &str| ResourceRecord::builder().value(v).build().expect("a value");
    let set = |name: &str, kind: RrType| ResourceRecordSet::builder().name(name).r#type(kind);
    let change = |action: ChangeAction, set: ResourceRecordSet| {
        Change::builder()
            .action(action)
            .resource_record_set(set)
            .build()
            .expect("a change")
    };
    let changes = vec![
        change(
            ChangeAction::Delete,
            set("www.example.com", RrType::A)
                .ttl(3600)
                .resource_records(rr(eip))
                .build()
                .expect("a set"),
        ),
        change(
            ChangeAction::Upsert,
            set("WWW.example.com.", RrType::Cname)
                .ttl(3600)
                .resource_records(rr(&format!("{}.", lb_dns.to_uppercase())))
                .build()
                .expect("a set"),
        ),
        change(
            ChangeAction::Upsert,
            set("_reconcile.www.example.com", RrType::Txt)
                .ttl(60)
                .resource_records(rr("\"marker\""))
                .build()
                .expect("a set"),
        ),
        change(
            ChangeAction::Upsert,
            set("lb.www.example.com", RrType::A)
                .alias_target(
                    AliasTarget::builder()
                        .dns_name(format!("dualstack.{lb_dns}."))
                        .hosted_zone_id(&lb_zone)
                        .evaluate_target_health(false)
                        .build()
                        .expect("an alias"),
                )
                .build()
                .expect("a set"),
        ),
        change(
            ChangeAction::Upsert,
            set("other.example.com", RrType::A)
                .ttl(300)
                .resource_records(rr("192.0.2.1"))
                .build()
                .expect("a set"),
        ),
    ];
    c.route53
        .change_resource_record_sets()
        .hosted_zone_id(id(ids, "zone_id"))
        .change_batch(
            ChangeBatch::builder()
                .set_changes(Some(changes))
                .build()
                .expect("a batch"),
        )
        .send()
        .await
        .expect("ChangeResourceRecordSets");

    // The second backend goes down: moto then reports it unused.
    c.ec2
        .stop_instances()
        .instance_ids(&instances[1])
        .send()
        .await
        .expect("StopInstances");

    Front {
        lb_sg,
        lb_arn,
        lb_dns,
        lb_zone,
        http_arn,
        app_arn,
    }
}

#[tokio::test]
async fn reads_a_converged_front_door() {
    let emu = Emulator::start();
    let seeded = emu.seed(&[]);
    let ids = &seeded.ids;
    let desired = desired(&seeded);
    let clients = clients(&emu).await;
    let front = build_front_door(&clients, ids).await;
    let cert = id(ids, "certificate_arn");
    let instances: Vec<String> = ids["instances"]
        .as_array()
        .expect("instances")
        .iter()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect();

    let meter = Meter::new();
    let observed = observe(&clients, &meter, &desired)
        .await
        .expect("the read works");

    // The load balancer, its listeners and tags.
    let [lb] = observed.load_balancers.as_slice() else {
        panic!("one load balancer: {:?}", observed.load_balancers)
    };
    assert_eq!(lb.arn, front.lb_arn);
    assert_eq!(lb.name, "www-example");
    assert_eq!(lb.dns_name, front.lb_dns.to_lowercase());
    assert_eq!(lb.hosted_zone_id, front.lb_zone);
    assert_eq!(lb.scheme, "internet-facing");
    assert_eq!(lb.state, reconcile::model::LbState::Active);
    assert_eq!(lb.security_groups, BTreeSet::from([front.lb_sg.clone()]));
    assert_eq!(lb.subnets, desired.load_balancer.as_ref().unwrap().subnets);
    assert_eq!(
        lb.tags.get("reconcile:stack").map(String::as_str),
        Some("www-example")
    );
    assert_eq!(lb.tags.get("owner").map(String::as_str), Some("web-team"));
    let listeners: Vec<_> = lb
        .listeners
        .iter()
        .map(|l| {
            (
                l.port,
                l.protocol.as_str(),
                l.forward.clone(),
                l.certificates.clone(),
            )
        })
        .collect();
    assert_eq!(
        listeners,
        vec![
            (80, "HTTP", vec![front.http_arn.clone()], vec![]),
            (
                443,
                "HTTPS",
                vec![front.app_arn.clone()],
                vec![cert.clone()]
            ),
        ]
    );

    // Target groups: tags, health checks in normal form, target health.
    let names: Vec<&str> = observed
        .target_groups
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    assert_eq!(names, ["www-example-app", "www-example-http"]);
    let app = observed.tg_by_arn(&front.app_arn).expect("app is observed");
    let http = observed
        .tg_by_arn(&front.http_arn)
        .expect("http is observed");
    assert_eq!(app.health.port, HealthPort::TrafficPort);
    assert_eq!(http.health.port, HealthPort::Port(8088));
    assert_eq!(http.health, desired.target_groups["http"].health);
    assert_eq!(app.health, desired.target_groups["app"].health);
    for tg in [app, http] {
        assert_eq!(
            tg.tags.get("reconcile:stack").map(String::as_str),
            Some("www-example")
        );
        assert_eq!(tg.load_balancers, vec![front.lb_arn.clone()]);
        let mut want = vec![
            TargetHealth {
                id: instances[0].clone(),
                state: "healthy".into(),
                reason: None,
                description: None,
            },
            TargetHealth {
                id: instances[1].clone(),
                state: "unused".into(),
                reason: Some("Target.InvalidState".into()),
                description: tg
                    .targets
                    .iter()
                    .find(|t| t.id == instances[1])
                    .and_then(|t| t.description.clone()),
            },
        ];
        want.sort_by(|a, b| a.id.cmp(&b.id));
        assert_eq!(tg.targets, want, "targets of {}", tg.name);
    }

    // Security groups: the created group's rules (v4 and v6 sources apart), and the
    // backend now admitting the load balancer's group.
    let lb_group = observed.sg_by_id(&front.lb_sg).expect("the lb group");
    assert_eq!(
        lb_group.tags.get("reconcile:stack").map(String::as_str),
        Some("www-example")
    );
    let lb_rules: Vec<String> = rules(&observed, &front.lb_sg)
        .into_iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(
        lb_rules,
        [
            "tcp/80 from 0.0.0.0/0",
            "tcp/80 from ::/0",
            "tcp/443 from 0.0.0.0/0",
            "tcp/443 from ::/0"
        ]
    );
    let backend = observed
        .sg_by_id(&id(ids, "security_group"))
        .expect("the backend group");
    for port in [80, 8088] {
        let key = RuleKey::tcp(port, Source::Group(front.lb_sg.clone()));
        assert!(
            backend.rules.iter().any(|r| r.key == key),
            "backend admits {key}"
        );
    }

    // DNS: the CNAME and the alias in normal form, the marker kept, the rest left out.
    let zone = observed.zone.as_ref().expect("the zone");
    let lb_dns = front.lb_dns.to_lowercase();
    assert_eq!(
        zone.records,
        vec![
            ObservedRecord {
                weighted: None,
                name: "_reconcile.www.example.com".into(),
                kind: "TXT".into(),
                ttl: Some(60),
                values: vec!["marker".into()],
                alias: None,
            },
            ObservedRecord {
                weighted: None,
                name: "lb.www.example.com".into(),
                kind: "A".into(),
                ttl: None,
                values: vec![],
                alias: Some(reconcile::model::AliasTarget {
                    dns_name: lb_dns.clone(),
                    zone_id: front.lb_zone.clone(),
                }),
            },
            ObservedRecord {
                weighted: None,
                name: "www.example.com".into(),
                kind: "CNAME".into(),
                ttl: Some(3600),
                values: vec![lb_dns.clone()],
                alias: None,
            },
        ]
    );

    check_bound("converged", &meter.stats());

    // moto creates a second load balancer with the same name: both are read.
    clients
        .elbv2
        .create_load_balancer()
        .name("www-example")
        .set_subnets(Some(
            desired
                .load_balancer
                .as_ref()
                .unwrap()
                .subnets
                .iter()
                .cloned()
                .collect(),
        ))
        .security_groups(&front.lb_sg)
        .send()
        .await
        .expect("a second CreateLoadBalancer");
    let meter = Meter::new();
    let observed = observe(&clients, &meter, &desired)
        .await
        .expect("the read works");
    let arns: BTreeSet<&str> = observed
        .load_balancers
        .iter()
        .map(|lb| lb.arn.as_str())
        .collect();
    assert_eq!(arns.len(), 2, "both load balancers named www-example");
    assert!(observed
        .load_balancers
        .iter()
        .all(|lb| lb.name == "www-example"));
    // The contract's bound is for the example's one load balancer: each more costs its
    // listeners and its attributes, in the same rounds.
    let stats = meter.stats();
    assert!(
        stats.requests <= MAX_REQUESTS + 2 && stats.rounds <= MAX_ROUNDS,
        "converged, duplicate load balancer: {} requests in {} rounds: {:?}",
        stats.requests,
        stats.rounds,
        stats.by_operation
    );
}

#[tokio::test]
async fn reads_pinned_certificates_and_groups_outside_the_vpc() {
    let emu = Emulator::start();
    let seeded = emu.seed(&[]);
    let ids = &seeded.ids;
    let mut desired = desired(&seeded);
    let clients = clients(&emu).await;

    // A group in another VPC, named by id as a load balancer group.
    let other_vpc = clients
        .ec2
        .create_vpc()
        .cidr_block("10.9.0.0/16")
        .send()
        .await
        .expect("CreateVpc")
        .vpc
        .and_then(|v| v.vpc_id)
        .expect("a vpc id");
    let foreign = clients
        .ec2
        .create_security_group()
        .group_name("elsewhere")
        .description("in another VPC")
        .vpc_id(&other_vpc)
        .send()
        .await
        .expect("CreateSecurityGroup")
        .group_id
        .expect("a group id");
    desired
        .load_balancer
        .as_mut()
        .unwrap()
        .security_groups
        .push(GroupRef::Id(foreign.clone()));
    // A `from` id that does not exist: left out, not an error.
    let missing_group = "sg-0000000000000dead".to_owned();
    desired
        .security_groups
        .get_mut("backend")
        .expect("the backend group")
        .rules
        .insert(
            RuleKey::tcp(9000, Source::Group(missing_group.clone())),
            None,
        );
    // Certificates pinned by ARN: the seeded one, and one that does not exist.
    let cert = id(ids, "certificate_arn");
    let gone =
        "arn:aws:acm:us-east-1:123456789012:certificate/00000000-0000-0000-0000-000000000000";
    desired.certificates.clear();
    desired
        .certificates
        .insert("site".into(), CertSpec::Arn(cert.clone()));
    desired
        .certificates
        .insert("gone".into(), CertSpec::Arn(gone.into()));

    let meter = Meter::new();
    let observed = observe(&clients, &meter, &desired)
        .await
        .expect("the read works");

    let [c] = observed.certificates.as_slice() else {
        panic!("one certificate: {:?}", observed.certificates)
    };
    assert_eq!(c.arn, cert);
    assert_eq!(c.names, ["www.example.com"]);
    assert_eq!(c.status, reconcile::model::CertStatus::Issued);
    let elsewhere = observed.sg_by_id(&foreign).expect("the foreign group");
    assert_eq!(elsewhere.vpc, other_vpc);
    assert!(observed.sg_by_id(&missing_group).is_none());
    assert!(observed.sg_by_id(&id(ids, "security_group")).is_some());

    let stats = meter.stats();
    check_bound("pinned certificates, foreign group", &stats);
    assert_eq!(stats.by_operation.get("DescribeCertificate"), Some(&2));
    assert_eq!(stats.by_operation.get("ListCertificates"), None);
    assert_eq!(stats.by_operation.get("DescribeSecurityGroups"), Some(&2));
}
