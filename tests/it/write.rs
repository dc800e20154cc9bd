//! The adapters' writes against the emulator, from the seeded starting point: each one
//! carried out and read back through the read adapters, and each repeated, since a resumed
//! apply repeats the call that was in flight when it stopped.
//!
//! moto 5.2.5 quirks met here (handled by the adapters):
//! - `AuthorizeSecurityGroupIngress` and `RevokeSecurityGroupIngress` apply the
//!   permissions before the refused one (`InvalidPermission.Duplicate` / `.NotFound`);
//!   AWS applies none. Both end the same after the rule-by-rule retry.
//! - `UpdateSecurityGroupRuleDescriptionsIngress` keeps a description left out (AWS clears
//!   it); an empty description clears it on both.
//! - `CreateTargetGroup` fails `DuplicateTargetGroupName` for an existing name whatever the
//!   settings; `DeregisterTargets` fails `InvalidTarget` for a target not registered.
//! - A second `CreateLoadBalancer` or `CreateListener` with the same name or port creates a
//!   second one; `DeleteLoadBalancer` of one already gone succeeds.
//! - A group attached with weight 0 reads back in `ForwardConfig` with `Weight: 0` and no
//!   `TargetGroupArn`; it does not show in the group's `LoadBalancerArns`, but deleting it
//!   is `ResourceInUse`.
//! - A listener changed from HTTPS to HTTP keeps reporting its certificate (and
//!   `SslPolicy`); AWS drops both.
//! - Route53 DELETE is checked against every CREATE/UPSERT ever sent for that name and type
//!   (name, TTL and values spelled as sent) and fails `InvalidInput` ("Expected exactly one
//!   of [AliasTarget, ...] but found none") when none matches; it then removes every set
//!   with that name and type. TXT values come back exactly as sent.

use reconcile::aws::ec2::Ec2;
use reconcile::aws::elbv2::{Elbv2, ListenerAction};
use reconcile::aws::route53::{ChangeAction, RecordSet, Route53};
use reconcile::aws::{Clients, Error, Meter, Round};
use reconcile::manifest::DEFAULT_SSL_POLICY;
use reconcile::model::{
    AliasTarget, Headers, HealthCheck, HealthPort, ObservedRecord, Protocol, RecordKind,
    ResponseHeader, RuleKey, Source, Tags,
};
use serde_json::Value;

use crate::emulator::Emulator;
use crate::observe::{clients, id};

const STACK: &str = "www-example";

fn tags(stack: &str) -> Tags {
    Tags::from([
        ("reconcile:stack".to_owned(), stack.to_owned()),
        ("owner".to_owned(), "web-team".to_owned()),
    ])
}

fn list(ids: &Value, key: &str) -> Vec<String> {
    ids[key]
        .as_array()
        .expect("a seeded list")
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

fn health() -> HealthCheck {
    HealthCheck {
        protocol: "HTTP".into(),
        port: HealthPort::TrafficPort,
        path: "/health/".into(),
        matcher: "200".into(),
        interval_seconds: 30,
        timeout_seconds: 5,
        healthy_threshold: 2,
        unhealthy_threshold: 2,
    }
}

/// A seeded emulator and the three adapters over one meter.
struct World {
    _emu: Emulator,
    ids: Value,
    clients: Clients,
    meter: Meter,
}

impl World {
    async fn start() -> World {
        let emu = Emulator::start();
        let ids = emu.seed(&[]).ids;
        let clients = clients(&emu).await;
        World {
            _emu: emu,
            ids,
            clients,
            meter: Meter::new(),
        }
    }
    fn ec2(&self) -> Ec2 {
        Ec2::new(&self.clients.ec2, &self.meter)
    }
    fn elb(&self) -> Elbv2 {
        Elbv2::new(&self.clients.elbv2, &self.meter)
    }
    fn route53(&self) -> Route53 {
        Route53::new(&self.clients.route53, &self.meter)
    }
}

async fn rules_of(ec2: &Ec2, group: &str) -> Vec<(String, Option<String>)> {
    let groups = ec2
        .security_groups_by_id(&[group.to_owned()], Round::START)
        .await
        .expect("DescribeSecurityGroups")
        .value;
    groups
        .iter()
        .flat_map(|g| &g.rules)
        .map(|r| (r.key.to_string(), r.description.clone()))
        .collect()
}

#[tokio::test]
async fn security_group_writes_repeat_safely() {
    let w = World::start().await;
    let ec2 = w.ec2();
    let vpc = id(&w.ids, "vpc");
    let backend = id(&w.ids, "security_group");

    let group = ec2
        .create_security_group("www-example-lb", "the load balancer", &vpc, &tags(STACK))
        .await
        .expect("CreateSecurityGroup");
    let again = ec2
        .create_security_group("www-example-lb", "the load balancer", &vpc, &tags(STACK))
        .await
        .expect("a repeated create finds the stack's group");
    assert_eq!(again, group);
    let theirs = ec2
        .create_security_group("www-example-lb", "x", &vpc, &tags("someone-else"))
        .await;
    assert_eq!(
        theirs.as_ref().err().and_then(Error::code),
        Some("InvalidGroup.Duplicate"),
        "{theirs:?}"
    );
    let read = ec2
        .security_groups_by_id(std::slice::from_ref(&group), Round::START)
        .await
        .expect("DescribeSecurityGroups")
        .value;
    assert_eq!(read.first().map(|g| &g.tags), Some(&tags(STACK)));

    let world = |port| RuleKey::tcp(port, Source::Cidr("0.0.0.0/0".into()));
    let world6 = |port| RuleKey::tcp(port, Source::Cidr("::/0".into()));
    let from_backend = RuleKey::tcp(8088, Source::Group(backend.clone()));
    let first = vec![(world(80), Some("web".to_owned())), (world6(80), None)];
    ec2.authorize_ingress(&group, &first)
        .await
        .expect("AuthorizeSecurityGroupIngress");
    // Two rules already there, two new: one call refused, then rule by rule.
    let all = [
        first.clone(),
        vec![
            (world(443), None),
            (from_backend.clone(), Some("from the backends".to_owned())),
        ],
    ]
    .concat();
    ec2.authorize_ingress(&group, &all)
        .await
        .expect("a repeated authorize skips the rules already there");
    ec2.authorize_ingress(&group, &all)
        .await
        .expect("all of them there: still no error");
    let web = Some("web".to_owned());
    let want = vec![
        ("tcp/80 from 0.0.0.0/0".to_owned(), web.clone()),
        ("tcp/80 from ::/0".to_owned(), None),
        ("tcp/443 from 0.0.0.0/0".to_owned(), None),
        (
            format!("tcp/8088 from {backend}"),
            Some("from the backends".to_owned()),
        ),
    ];
    assert_eq!(rules_of(&ec2, &group).await, want);

    ec2.update_rule_descriptions(
        &group,
        &[(world(80), None), (world(443), Some("tls".to_owned()))],
    )
    .await
    .expect("UpdateSecurityGroupRuleDescriptionsIngress");
    let got = rules_of(&ec2, &group).await;
    assert_eq!(got[0], ("tcp/80 from 0.0.0.0/0".to_owned(), None));
    assert_eq!(
        got[2],
        ("tcp/443 from 0.0.0.0/0".to_owned(), Some("tls".into()))
    );

    // One rule there and one never added: the missing one is skipped.
    let gone = [world6(80), world(9999)];
    ec2.revoke_ingress(&group, &gone)
        .await
        .expect("RevokeSecurityGroupIngress");
    ec2.revoke_ingress(&group, &gone)
        .await
        .expect("a repeated revoke is no error");
    let left: Vec<String> = rules_of(&ec2, &group)
        .await
        .into_iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(
        left,
        [
            "tcp/80 from 0.0.0.0/0".to_owned(),
            "tcp/443 from 0.0.0.0/0".to_owned(),
            format!("tcp/8088 from {backend}"),
        ]
    );

    let unresolved = ec2
        .authorize_ingress(
            &group,
            &[(RuleKey::tcp(80, Source::Key("lb".into())), None)],
        )
        .await;
    assert!(matches!(unresolved, Err(Error::Bug(_))), "{unresolved:?}");

    ec2.delete_security_group(&group)
        .await
        .expect("DeleteSecurityGroup");
    ec2.delete_security_group(&group)
        .await
        .expect("a group already gone is success");
    let after = ec2
        .security_groups_by_id(&[group], Round::START)
        .await
        .expect("DescribeSecurityGroups");
    assert!(after.value.is_empty());

    let stats = w.meter.stats();
    for op in [
        "CreateSecurityGroup",
        "AuthorizeSecurityGroupIngress",
        "RevokeSecurityGroupIngress",
        "UpdateSecurityGroupRuleDescriptionsIngress",
        "DeleteSecurityGroup",
    ] {
        assert!(stats.by_operation.contains_key(op), "{op} is counted");
    }
}

#[tokio::test]
async fn target_group_writes_repeat_safely() {
    let w = World::start().await;
    let elb = w.elb();
    let vpc = id(&w.ids, "vpc");
    let instances = list(&w.ids, "instances");

    let create = |stack: &'static str| {
        let (elb, vpc) = (elb.clone(), vpc.clone());
        async move {
            elb.create_target_group(
                "www-example-app",
                8088,
                &Protocol::Http,
                &vpc,
                &health(),
                &tags(stack),
            )
            .await
        }
    };
    let arn = create(STACK).await.expect("CreateTargetGroup");
    assert_eq!(
        create(STACK).await.expect("a repeated create finds it"),
        arn
    );
    let theirs = create("someone-else").await;
    assert_eq!(
        theirs.as_ref().err().and_then(Error::code),
        Some("DuplicateTargetGroupName")
    );

    let read = |elb: Elbv2| async move {
        elb.target_groups(&["www-example-".to_owned()], Round::START)
            .await
            .expect("DescribeTargetGroups")
            .value
    };
    let groups = read(elb.clone()).await;
    let [tg] = groups.as_slice() else {
        panic!("one target group: {groups:?}")
    };
    assert_eq!(
        (tg.arn.as_str(), tg.port, tg.protocol.as_str()),
        (arn.as_str(), 8088, "HTTP")
    );
    assert_eq!(tg.health, health());
    let tagged = elb
        .tags(std::slice::from_ref(&arn), Round::START)
        .await
        .expect("tags");
    assert_eq!(tagged.value.get(&arn), Some(&tags(STACK)));

    let changed = HealthCheck {
        port: HealthPort::Port(80),
        path: "/ready/".into(),
        matcher: "200,302".into(),
        interval_seconds: 10,
        ..health()
    };
    elb.modify_health_check(&arn, &changed)
        .await
        .expect("ModifyTargetGroup");
    assert_eq!(read(elb.clone()).await[0].health, changed);

    elb.register_targets(&arn, &instances)
        .await
        .expect("RegisterTargets");
    elb.register_targets(&arn, &instances)
        .await
        .expect("registering twice is no change");
    let health_of = |elb: Elbv2, arn: String| async move {
        elb.target_health(&arn, Round::START)
            .await
            .expect("DescribeTargetHealth")
            .value
            .expect("the group exists")
            .into_iter()
            // A deregistered target drains for a while on AWS: on its way out, not there.
            .filter(|t| t.state != reconcile::model::TargetState::Draining)
            .map(|t| (t.id, t.state.to_string()))
            .collect::<Vec<_>>()
    };
    // No listener uses the group: AWS does not health-check it (`unused`); moto says
    // healthy at once.
    let idle = if w._emu.oracle.is_some() {
        "unused"
    } else {
        "healthy"
    };
    let mut want: Vec<(String, String)> = instances
        .iter()
        .map(|i| (i.clone(), idle.to_owned()))
        .collect();
    want.sort();
    assert_eq!(health_of(elb.clone(), arn.clone()).await, want);

    let second = vec![instances[1].clone()];
    elb.deregister_targets(&arn, &second)
        .await
        .expect("DeregisterTargets");
    elb.deregister_targets(&arn, &second)
        .await
        .expect("a target no longer registered is skipped");
    assert_eq!(
        health_of(elb.clone(), arn.clone()).await,
        vec![(instances[0].clone(), idle.to_owned())]
    );

    elb.delete_target_group(&arn)
        .await
        .expect("DeleteTargetGroup");
    elb.delete_target_group(&arn)
        .await
        .expect("a group already gone is success");
    assert!(read(elb.clone()).await.is_empty());
}

#[tokio::test]
async fn load_balancer_and_listener_writes_repeat_safely() {
    let w = World::start().await;
    let (ec2, elb) = (w.ec2(), w.elb());
    let vpc = id(&w.ids, "vpc");
    let backend = id(&w.ids, "security_group");
    let cert = id(&w.ids, "certificate_arn");
    let subnets = list(&w.ids, "subnets");
    let stack = tags(STACK);

    let sg = ec2
        .create_security_group("www-example-lb", "lb", &vpc, &stack)
        .await
        .expect("CreateSecurityGroup");
    let http = elb
        .create_target_group(
            "www-example-http",
            80,
            &Protocol::Http,
            &vpc,
            &health(),
            &stack,
        )
        .await
        .expect("CreateTargetGroup http");
    let app = elb
        .create_target_group(
            "www-example-app",
            8088,
            &Protocol::Http,
            &vpc,
            &health(),
            &stack,
        )
        .await
        .expect("CreateTargetGroup app");

    let lb = elb
        .create_load_balancer(
            STACK,
            "internet-facing",
            &subnets,
            std::slice::from_ref(&sg),
            &stack,
        )
        .await
        .expect("CreateLoadBalancer");
    assert_eq!(lb.name, STACK);
    assert_eq!(lb.scheme, "internet-facing");
    assert_eq!(lb.tags, stack);
    assert!(lb.listeners.is_empty());
    assert!(!lb.dns_name.is_empty() && !lb.hosted_zone_id.is_empty());
    assert_eq!(lb.subnets, subnets.iter().cloned().collect());
    let again = elb
        .create_load_balancer(
            STACK,
            "internet-facing",
            &subnets,
            std::slice::from_ref(&sg),
            &stack,
        )
        .await
        .expect("a repeated create finds the stack's load balancer");
    assert_eq!((again.arn.as_str(), &again.tags), (lb.arn.as_str(), &stack));
    let named = elb
        .load_balancers(&[STACK.to_owned()], Round::START)
        .await
        .expect("DescribeLoadBalancers")
        .value;
    assert_eq!(named.len(), 1, "no second load balancer: {named:?}");
    let theirs = elb
        .create_load_balancer(
            STACK,
            "internet-facing",
            &subnets,
            std::slice::from_ref(&sg),
            &tags("x"),
        )
        .await;
    assert!(matches!(theirs, Err(Error::NotOwned { .. })), "{theirs:?}");
    assert_eq!(
        elb.load_balancer_state(&lb.arn).await.expect("state"),
        Some(reconcile::model::LbState::Active)
    );

    let l80 = elb
        .create_listener(
            &lb.arn,
            80,
            &Protocol::Http,
            None,
            None,
            ListenerAction::Forward(&[(http.clone(), 1)]),
        )
        .await
        .expect("CreateListener 80");
    let l443 = elb
        .create_listener(
            &lb.arn,
            443,
            &Protocol::Https,
            Some(&cert),
            Some(DEFAULT_SSL_POLICY),
            ListenerAction::Forward(&[(app.clone(), 1)]),
        )
        .await
        .expect("CreateListener 443");
    // A listener already on the port is modified, not duplicated.
    let l80_again = elb
        .create_listener(
            &lb.arn,
            80,
            &Protocol::Http,
            None,
            None,
            ListenerAction::Forward(&[(app.clone(), 1)]),
        )
        .await
        .expect("a repeated CreateListener");
    assert_eq!(l80_again, l80);
    let listeners = |elb: Elbv2, arn: String| async move {
        elb.listeners(&arn, Round::START)
            .await
            .expect("DescribeListeners")
            .value
    };
    let read = listeners(elb.clone(), lb.arn.clone())
        .await
        .expect("the load balancer exists");
    let summary: Vec<_> = read
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
        summary,
        vec![
            (80, "HTTP", vec![app.clone()], vec![]),
            (443, "HTTPS", vec![app.clone()], vec![cert.clone()]),
        ]
    );

    // The TLS policy reads back; response headers are set, read back, and removed by
    // setting their unset value.
    assert_eq!(read[1].ssl_policy.as_deref(), Some(DEFAULT_SSL_POLICY));
    let headers = |elb: Elbv2, arn: String| async move {
        elb.listener_headers(&arn, Round::START)
            .await
            .expect("DescribeListenerAttributes")
            .value
            .expect("the listener exists")
    };
    assert_eq!(headers(elb.clone(), l443.clone()).await, Headers::new());
    let hsts = "max-age=31536000; includeSubDomains".to_owned();
    elb.set_listener_headers(
        &l443,
        &[
            (ResponseHeader::Hsts, hsts.clone()),
            (ResponseHeader::Server, "false".into()),
        ],
    )
    .await
    .expect("ModifyListenerAttributes");
    assert_eq!(
        headers(elb.clone(), l443.clone()).await,
        Headers::from([
            (ResponseHeader::Hsts, hsts),
            (ResponseHeader::Server, "false".into())
        ])
    );
    elb.set_listener_headers(&l443, &[(ResponseHeader::Hsts, String::new())])
        .await
        .expect("ModifyListenerAttributes (removal)");
    assert_eq!(
        headers(elb.clone(), l443.clone()).await,
        Headers::from([(ResponseHeader::Server, "false".into())])
    );

    // A replacement attached with weight 0 beside the serving group reads as standby.
    elb.modify_listener(
        &l443,
        &Protocol::Https,
        Some(&cert),
        None,
        ListenerAction::Forward(&[(app.clone(), 1), (http.clone(), 0)]),
    )
    .await
    .expect("ModifyListener (standby)");
    let read = listeners(elb.clone(), lb.arn.clone()).await.expect("lb");
    assert_eq!(read[1].forward, vec![app.clone()]);
    assert_eq!(read[1].standby, vec![http.clone()]);
    assert_eq!(read[1].certificates, vec![cert.clone()]);
    let in_use = elb.delete_target_group(&http).await;
    assert_eq!(
        in_use.as_ref().err().and_then(Error::code),
        Some("ResourceInUse")
    );

    // HTTPS to HTTP: the old certificate no longer reads back.
    elb.modify_listener(
        &l443,
        &Protocol::Http,
        None,
        None,
        ListenerAction::Forward(&[(http.clone(), 1)]),
    )
    .await
    .expect("ModifyListener (HTTP)");
    let read = listeners(elb.clone(), lb.arn.clone()).await.expect("lb");
    assert_eq!(read[1].protocol, Protocol::Http);
    assert_eq!(read[1].forward, vec![http.clone()]);
    assert!(read[1].standby.is_empty() && read[1].certificates.is_empty());

    let reversed: Vec<String> = subnets.iter().rev().cloned().collect();
    elb.set_subnets(&lb.arn, &reversed)
        .await
        .expect("SetSubnets");
    elb.set_security_groups(&lb.arn, &[sg.clone(), backend.clone()])
        .await
        .expect("SetSecurityGroups");
    let read = elb
        .load_balancers(&[STACK.to_owned()], Round::START)
        .await
        .expect("DescribeLoadBalancers")
        .value;
    assert_eq!(read[0].subnets, subnets.iter().cloned().collect());
    assert_eq!(read[0].security_groups, [sg.clone(), backend].into());

    elb.delete_listener(&l80).await.expect("DeleteListener");
    elb.delete_listener(&l80)
        .await
        .expect("a listener already gone is success");
    let ports: Vec<u16> = listeners(elb.clone(), lb.arn.clone())
        .await
        .expect("lb")
        .iter()
        .map(|l| l.port)
        .collect();
    assert_eq!(ports, [443]);

    elb.delete_load_balancer(&lb.arn)
        .await
        .expect("DeleteLoadBalancer");
    elb.delete_load_balancer(&lb.arn)
        .await
        .expect("a load balancer already gone is success");
    assert_eq!(elb.load_balancer_state(&lb.arn).await.expect("state"), None);
    assert_eq!(listeners(elb.clone(), lb.arn.clone()).await, None);
    for tg in [&http, &app] {
        elb.delete_target_group(tg)
            .await
            .expect("DeleteTargetGroup");
    }
}

#[tokio::test]
async fn dns_writes_replace_round_trip_and_delete() {
    let w = World::start().await;
    let r53 = w.route53();
    let zone = id(&w.ids, "zone_id");
    let records = |r53: Route53, zone: String| async move {
        r53.records(&zone, |_| true, |_| true, Round::START)
            .await
            .expect("ListResourceRecordSets")
            .value
    };
    let [a] = records(r53.clone(), zone.clone())
        .await
        .try_into()
        .unwrap_or_else(|r| panic!("the seeded A record alone: {r:?}"));
    assert_eq!(a.kind, RecordKind::A);

    // The A record gives way to a CNAME in one atomic batch.
    let lb_dns = "www-example-1.us-east-1.elb.amazonaws.com";
    let cname = RecordSet {
        weighted: None,
        name: "www.example.com".into(),
        kind: "CNAME".into(),
        ttl: Some(60),
        values: vec![lb_dns.into()],
        alias: None,
    };
    let change = r53
        .change(
            &zone,
            &[
                (ChangeAction::Delete, RecordSet::from(&a)),
                (ChangeAction::Upsert, cname.clone()),
            ],
            "www: A to CNAME",
        )
        .await
        .expect("ChangeResourceRecordSets");
    assert!(!change.starts_with("/change/"), "{change}");
    // In sync at once on moto, within seconds on AWS.
    let t0 = std::time::Instant::now();
    loop {
        let status = r53.change_status(&change).await.expect("GetChange");
        if status == aws_sdk_route53::types::ChangeStatus::Insync {
            break;
        }
        assert_eq!(status, aws_sdk_route53::types::ChangeStatus::Pending);
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(20),
            "never in sync"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let want_cname = ObservedRecord {
        weighted: None,
        name: cname.name.clone(),
        kind: cname.kind.clone(),
        ttl: cname.ttl,
        values: cname.values.clone(),
        alias: None,
    };
    assert_eq!(
        records(r53.clone(), zone.clone()).await,
        vec![want_cname.clone()]
    );

    // TXT values are written quoted and read back as written here.
    let marker = RecordSet {
        weighted: None,
        name: "_reconcile.www.example.com".into(),
        kind: "TXT".into(),
        ttl: Some(60),
        values: vec![
            "wait=ttl started=2024-05-01T10:00:00Z seconds=3600".into(),
            "a \"quoted\" word, a \\ backslash, café ☕".into(),
            "k".repeat(300),
        ],
        alias: None,
    };
    let upsert = |set: &RecordSet| vec![(ChangeAction::Upsert, set.clone())];
    r53.change(&zone, &upsert(&marker), "marker")
        .await
        .expect("UPSERT TXT");
    let read = records(r53.clone(), zone.clone()).await;
    let txt = read
        .iter()
        .find(|r| r.kind == RecordKind::Txt)
        .expect("the TXT record");
    assert_eq!(RecordSet::from(txt), marker);
    // UPSERT replaces the set; DELETE of the set as read removes it.
    let marker = RecordSet {
        values: vec!["wait=none".into()],
        ..marker
    };
    r53.change(&zone, &upsert(&marker), "marker")
        .await
        .expect("UPSERT TXT again");
    let read = records(r53.clone(), zone.clone()).await;
    let txt: Vec<&ObservedRecord> = read.iter().filter(|r| r.kind == RecordKind::Txt).collect();
    assert_eq!(txt.len(), 1);
    assert_eq!(RecordSet::from(txt[0]), marker);
    r53.change(
        &zone,
        &[(ChangeAction::Delete, RecordSet::from(txt[0]))],
        "",
    )
    .await
    .expect("DELETE TXT");

    // An alias record: no TTL, and deleted as read.
    let alias = RecordSet {
        weighted: None,
        name: "lb.www.example.com".into(),
        kind: "A".into(),
        ttl: None,
        values: vec![],
        alias: Some(AliasTarget {
            dns_name: lb_dns.into(),
            zone_id: "Z35SXDOTRQ7X7K".into(),
        }),
    };
    r53.change(&zone, &upsert(&alias), "alias")
        .await
        .expect("UPSERT alias");
    let read = records(r53.clone(), zone.clone()).await;
    let got = read
        .iter()
        .find(|r| r.name == alias.name)
        .expect("the alias record");
    assert_eq!(RecordSet::from(got), alias);
    r53.change(&zone, &[(ChangeAction::Delete, RecordSet::from(got))], "")
        .await
        .expect("DELETE alias");
    assert_eq!(records(r53.clone(), zone.clone()).await, vec![want_cname]);

    let empty = r53.change(&zone, &[], "nothing").await;
    assert!(matches!(empty, Err(Error::Bug(_))), "{empty:?}");
}
