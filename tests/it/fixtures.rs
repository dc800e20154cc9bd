//! Builders for planner tests: the example manifest's desired model, and observed states of
//! an account (empty, the article's starting point, converged, drifted).

use reconcile::manifest;
use reconcile::model::{
    Desired, Observed, ObservedCert, ObservedInstance, ObservedRecord, ObservedRule, ObservedSg,
    ObservedSubnet, ObservedZone, RuleKey, Source, Tags,
};
use reconcile::plan::check::model;
use reconcile::plan::{self, Plan};

use crate::support::repo_file;

pub const VPC: &str = "vpc-0123456789abcdef0";
pub const BACKEND: &str = "sg-0123456789abcdef0";
pub const CERT: &str =
    "arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555";
pub const EIP: &str = "203.0.113.10";

pub fn desired_from(file: &str) -> Desired {
    let m = manifest::load(&repo_file(file)).expect("the manifest is valid");
    Desired::from_manifest(&m)
}

/// The example manifest with `edit` applied to its JSON first.
pub fn desired_edited(edit: impl FnOnce(&mut serde_json::Value)) -> Desired {
    let text = std::fs::read_to_string(repo_file("manifests/site.example.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    edit(&mut v);
    let m =
        manifest::from_str("edited.json", &v.to_string()).expect("the edited manifest is valid");
    Desired::from_manifest(&m)
}

pub fn desired() -> Desired {
    desired_from("manifests/site.example.json")
}

pub fn rule(port: u16, source: Source, description: Option<&str>) -> ObservedRule {
    ObservedRule {
        id: None,
        key: RuleKey::tcp(port, source),
        description: description.map(str::to_owned),
    }
}

pub fn world(port: u16) -> ObservedRule {
    rule(port, Source::Cidr("0.0.0.0/0".into()), None)
}

/// An account with nothing of the stack: the backend group (no rules), the certificate and
/// an empty zone.
pub fn empty_account() -> Observed {
    Observed {
        security_groups: vec![ObservedSg {
            id: BACKEND.into(),
            name: "www-backend".into(),
            vpc: VPC.into(),
            description: "web servers".into(),
            tags: Tags::new(),
            rules: vec![],
        }],
        certificates: vec![ObservedCert {
            arn: CERT.into(),
            domain: "www.example.com".into(),
            names: vec!["www.example.com".into()],
            status: "ISSUED".into(),
            not_after: Some(2_000_000_000),
            expiring: false,
            renewal: None,
            validation: vec![],
            store: Default::default(),
            ..Default::default()
        }],
        zone: Some(ObservedZone {
            id: "Z0123456789ABCDEFGHIJ".into(),
            name: "example.com".into(),
            records: vec![],
            neighbours: vec![],
        }),
        // The backends, guarded by the backend group; the load balancer's subnets in two
        // availability zones.
        instances: ["i-0aaaaaaaaaaaaaaa1", "i-0aaaaaaaaaaaaaaa2"]
            .into_iter()
            .map(|id| ObservedInstance {
                id: id.into(),
                state: "running".into(),
                vpc: VPC.into(),
                subnet: "subnet-0aaaaaaaaaaaaaaa1".into(),
                groups: vec![BACKEND.into()],
                // The first holds the elastic IP the starting record leads to.
                public_ip: id.ends_with('1').then(|| EIP.to_owned()),
                public_dns: None,
            })
            .collect(),
        subnets: [
            ("subnet-0aaaaaaaaaaaaaaa1", "us-east-1a"),
            ("subnet-0aaaaaaaaaaaaaaa2", "us-east-1b"),
        ]
        .into_iter()
        .map(|(id, zone)| ObservedSubnet {
            id: id.into(),
            zone: zone.into(),
            vpc: VPC.into(),
        })
        .collect(),
        ..Observed::default()
    }
}

/// The article's starting point: backends open on 80 and 443 to the world (and 22 to the
/// office), `www.example.com` an A record to the elastic IP at TTL 3600.
pub fn starting_point() -> Observed {
    let mut o = empty_account();
    o.security_groups[0].rules = vec![
        world(80),
        world(443),
        rule(
            22,
            Source::Cidr("198.51.100.0/24".into()),
            Some("office ssh"),
        ),
    ];
    if let Some(z) = o.zone.as_mut() {
        z.records.push(ObservedRecord {
            weighted: None,
            name: "www.example.com".into(),
            kind: "A".into(),
            ttl: Some(3600),
            values: vec![EIP.into()],
            alias: None,
        });
    }
    o
}

/// Every node of a plan, in the plan's own order, through the model.
pub fn run_in_order(d: &Desired, o: &Observed, p: &Plan) -> Observed {
    let order: Vec<usize> = (0..p.nodes.len()).collect();
    model::check_order(d, o, &p.nodes, &order).unwrap_or_else(|v| panic!("{v}"))
}

pub fn plan_of(d: &Desired, o: &Observed) -> Plan {
    plan::plan(d, o).unwrap_or_else(|e| panic!("{e}"))
}

/// The state after applying the example manifest to the starting point.
pub fn converged() -> Observed {
    let d = desired();
    let start = starting_point();
    run_in_order(&d, &start, &plan_of(&d, &start))
}
