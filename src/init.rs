//! `reconcile init`: reads the live site behind a host name (its record, the instances the
//! record leads to, their VPC, security group and subnets, the certificate for the name)
//! and writes the manifest whose plan is the article's migration. Reads only: nothing is
//! written to AWS. Every assumption made is reported, for the user to review.

mod behind;

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::aws::acm::Acm;
use crate::aws::ec2::Ec2;
use crate::aws::elbv2::Elbv2;
use crate::aws::iam::Iam;
use crate::aws::route53::Route53;
use crate::aws::{self, Clients, Meter, Round};
use crate::manifest::net;
use crate::model::{
    IpProtocol, ObservedInstance, ObservedRecord, ObservedZone, RecordKind, Source,
};

/// Ports that carry web traffic to a backend before and after the migration.
const WEB_PORTS: [u16; 3] = [80, 443, 8088];
/// The port the load balancer's HTTPS listener forwards to, as in the article.
const APP_PORT: u16 = 8088;
const HEALTH_PATH: &str = "/health/";
/// Health-check timing at rest (interval in seconds, passing checks to turn healthy):
/// AWS's defaults.
const REST: (u16, u16) = (30, 5);
/// The timing while the site moves: faster than the article's 30 s / 2, so a gate on a new
/// target waits about 20 s rather than 2.5 minutes.
const FAST: (u16, u16) = (10, 2);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no Route53 hosted zone holds {name} (looked for {tried}); pass --zone if it is named otherwise")]
    NoZone { name: String, tried: String },
    #[error("{name} has no A, AAAA or CNAME record in zone {zone}{found}")]
    NoRecord {
        name: String,
        zone: String,
        found: String,
    },
    #[error("{name} points at {value}, which no instance in this region holds (as public IP or DNS name); init follows a record to EC2 instances only")]
    NoInstance { name: String, value: String },
    #[error("{name} is an alias to {target}, which is not a load balancer of this region; init starts from a site served by EC2 instances or by a load balancer of the region (pass --region if it is in another)")]
    BehindLoadBalancer { name: String, target: String },
    #[error("{name} leads to {value}, which is not a load balancer of this region; init --direct starts from a site behind a stack's load balancer (without --direct, init starts from one served by its instances)")]
    NotBehindLoadBalancer { name: String, value: String },
    #[error("{0}")]
    Unsupported(String),
    #[error(transparent)]
    Aws(#[from] aws::Error),
    #[error("bug: init wrote a manifest that does not validate:\n{0}")]
    Bug(String),
}

/// What init found: the manifest, and what the user should know about how it was made.
#[derive(Debug)]
pub struct Found {
    pub manifest: Value,
    /// Choices made for the user (health path, stack name, ports...).
    pub assumptions: Vec<String>,
    /// Things to look at before applying.
    pub review: Vec<String>,
}

/// A stack id from a host name: its labels but the last, joined by `-`
/// (`www.example.com` → `www-example`), at most 24 characters so that the derived target
/// group names (`<stack>-http`) and their replacements fit AWS's 32.
pub fn stack_of(name: &str) -> String {
    let labels: Vec<&str> = name.split('.').collect();
    let keep = if labels.len() > 1 {
        &labels[..labels.len() - 1]
    } else {
        &labels[..]
    };
    let mut stack: String = keep
        .join("-")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    stack.truncate(24);
    let stack = stack.trim_matches('-').to_owned();
    if stack.is_empty() || stack.starts_with("internal-") || stack.starts_with("sg-") {
        format!(
            "site-{}",
            stack
                .trim_start_matches("internal-")
                .trim_start_matches("sg-")
        )
        .chars()
        .take(24)
        .collect()
    } else {
        stack
    }
}

pub async fn init(
    clients: &Clients,
    meter: &Meter,
    name: &str,
    zone: Option<&str>,
    region: &str,
    redirect_at_lb: bool,
) -> Result<Found, Error> {
    let name = net::normalize_dns(name);
    let route53 = Route53::new(&clients.route53, meter);
    let ec2 = Ec2::new(&clients.ec2, meter);
    let mut assumptions = Vec::new();
    let mut review = Vec::new();

    let zone = find_zone(&route53, &name, zone).await?;
    let listed = route53
        .records(
            &zone.id,
            |n| n == name,
            |r| r.alias.is_none() && r.kind.leads_to_site(),
            Round::START,
        )
        .await?
        .value;
    let (records, others): (Vec<_>, Vec<_>) = listed.into_iter().partition(|r| r.name == name);
    let record = pick_record(&name, &zone, &records)?;
    let neighbours: Vec<String> = others
        .iter()
        .filter(|r| r.values.iter().any(|v| record.values.contains(v)))
        .map(|r| format!("{} {}", r.name, r.kind))
        .collect();
    let old_ttl = record.ttl.unwrap_or(300);

    // What it points at: a load balancer of the region (an alias, or a CNAME to its
    // name), or instances.
    let target = match (&record.alias, &record.kind) {
        (Some(a), _) => Some(a.dns_name.clone()),
        (None, RecordKind::Cname) => record.values.first().cloned(),
        (None, _) => None,
    };
    if let Some(target) = target {
        let elb = Elbv2::new(&clients.elbv2, meter);
        let lbs = elb.load_balancers(&[], Round::START).await?.value;
        if let Some(lb) = lbs
            .iter()
            .find(|l| net::normalize_dns(&l.dns_name) == target)
        {
            let dns = net::normalize_dns(&lb.dns_name);
            let behind = behind::Behind {
                name: &name,
                zone: &zone,
                records: records.iter().filter(|r| r.leads_to(&dns)).collect(),
                lb,
                region,
            };
            return behind::init_behind(&ec2, &elb, behind).await;
        }
        if record.alias.is_some() {
            return Err(Error::BehindLoadBalancer { name, target });
        }
    }
    let value = record.values.join(", ");
    let (filter, values) = match record.kind {
        RecordKind::Cname => ("dns-name", record.values.clone()),
        _ => ("ip-address", record.values.clone()),
    };
    let pointed = ec2.instances_where(filter, &values).await?;
    if pointed.is_empty() {
        return Err(Error::NoInstance { name, value });
    }
    let vpcs: BTreeSet<&String> = pointed.iter().map(|i| &i.vpc).collect();
    let [vpc] = vpcs.into_iter().collect::<Vec<_>>()[..] else {
        return Err(Error::Unsupported(format!(
            "{name} leads to instances in several VPCs; a load balancer serves one VPC"
        )));
    };
    let vpc = vpc.clone();

    // The backend group: the one every such instance has, preferring one open to the web.
    let public_web = |g: &crate::model::ObservedSg| {
        g.rules
            .iter()
            .any(|r| r.key.is_from_internet() && WEB_PORTS.iter().any(|p| r.key.admits_tcp(*p)))
    };
    let pointed_refs: Vec<&ObservedInstance> = pointed.iter().collect();
    let (groups, backend) = shared_group(&ec2, &pointed_refs, &name, public_web).await?;
    let backend = &backend;
    if groups > 1 {
        assumptions.push(format!(
            "backend security group: {} ({}), of the {} the instances share",
            backend.id, backend.name, groups
        ));
    }

    // Targets: the instances the record leads to, and their running neighbours in the group.
    let mut targets: Vec<ObservedInstance> = ec2
        .instances_where("instance.group-id", std::slice::from_ref(&backend.id))
        .await?
        .into_iter()
        .filter(|i| i.vpc == vpc && i.state == crate::model::InstanceState::Running)
        .collect();
    for p in &pointed {
        if !targets.iter().any(|t| t.id == p.id) {
            targets.push(p.clone());
        }
    }
    targets.sort_by(|a, b| a.id.cmp(&b.id));
    let direct: Vec<&str> = pointed.iter().map(|i| i.id.as_str()).collect();
    let others: Vec<&str> = targets
        .iter()
        .map(|t| t.id.as_str())
        .filter(|t| !direct.contains(t))
        .collect();
    assumptions.push(format!(
        "targets: {} (behind {value}){}",
        direct.join(", "),
        if others.is_empty() {
            String::new()
        } else {
            format!(
                ", and {} running in the same group {}",
                others.join(", "),
                backend.id
            )
        }
    ));
    if !others.is_empty() {
        review.push(format!(
            "remove from `targets` any of {} that does not serve the site",
            others.join(", ")
        ));
    }
    for t in targets
        .iter()
        .filter(|t| t.state != crate::model::InstanceState::Running)
    {
        review.push(format!(
            "{} is {}: its health check will fail until it runs",
            t.id, t.state
        ));
    }

    // Subnets: one per availability zone, the targets' first, two zones at least.
    let subnets = ec2.subnets(&vpc).await?;
    let zone_of = |id: &str| subnets.iter().find(|s| s.id == id).map(|s| s.zone.clone());
    let mut chosen: Vec<(String, String)> = Vec::new();
    for t in &targets {
        if let Some(z) = zone_of(&t.subnet) {
            if !chosen.iter().any(|(_, cz)| cz == &z) {
                chosen.push((t.subnet.clone(), z));
            }
        }
    }
    for s in &subnets {
        if chosen.len() >= 2 {
            break;
        }
        if !chosen.iter().any(|(_, z)| z == &s.zone) {
            chosen.push((s.id.clone(), s.zone.clone()));
        }
    }
    if chosen.len() < 2 {
        return Err(Error::Unsupported(format!(
            "VPC {vpc} has subnets in fewer than two availability zones; a load balancer needs two"
        )));
    }
    let added: Vec<String> = chosen
        .iter()
        .filter(|(s, _)| !targets.iter().any(|t| &t.subnet == s))
        .map(|(s, z)| format!("{s} ({z})"))
        .collect();
    if !added.is_empty() {
        assumptions.push(format!(
            "subnets: the targets' own, plus {} to cover two availability zones",
            added.join(", ")
        ));
    }

    // The backend's rules: what is not web traffic stays; the load balancer gets 80 and 8088
    // (8088 only when it redirects port 80 itself).
    let lb_ports: Vec<u16> = if redirect_at_lb {
        vec![APP_PORT]
    } else {
        vec![80, APP_PORT]
    };
    let mut ingress = vec![json!({"ports": lb_ports, "from": "lb"})];
    let mut exclusive = true;
    let mut closing = Vec::new();
    for r in &backend.rules {
        let k = &r.key;
        if WEB_PORTS.iter().any(|p| k.admits_tcp(*p)) && matches!(k.source, Source::Cidr(_)) {
            closing.push(k.to_string());
            continue;
        }
        match manifest_rule(r) {
            Some(rule) => ingress.push(rule),
            None => {
                exclusive = false;
                review.push(format!(
                    "the rule {k} cannot be written in a manifest (TCP ports only), so `exclusive` is off: remove the backend's public web rules by hand after the switch"
                ));
            }
        }
    }
    if !closing.is_empty() && exclusive {
        assumptions.push(format!(
            "after the switch the backend closes its public web rules: {}",
            closing.join(", ")
        ));
    }

    // The certificate.
    let certs = Acm::new(&clients.acm, meter)
        .issued(false, Round::START)
        .await?
        .value;
    let cert = certs
        .iter()
        .filter(|c| c.cert.names.iter().any(|n| net::covers(n, &name)))
        .max_by_key(|c| c.cert.not_after);
    // ACM's, found by the name; else one uploaded to IAM (as the article does), pinned by
    // its ARN since only ACM's are found by name.
    let certificate = match cert {
        Some(c) => {
            assumptions.push(format!(
                "certificate: {} (ISSUED, covers {name})",
                c.cert.arn
            ));
            json!({ "domain": name })
        }
        None => {
            let uploaded = Iam::new(&clients.iam, meter)
                .certificates(Round::START)
                .await?
                .value;
            let iam = uploaded
                .iter()
                .filter(|c| c.status == crate::model::CertStatus::Issued)
                .filter(|c| c.names.iter().any(|n| net::covers(n, &name)))
                .max_by_key(|c| c.not_after);
            match iam {
                Some(c) => {
                    assumptions.push(format!(
                        "certificate: {} (IAM server certificate, covers {name}; AWS never renews it: consider \"request\": true to move to ACM)",
                        c.arn
                    ));
                    json!({ "arn": c.arn })
                }
                None => {
                    review.push(format!(
                        "no ISSUED ACM certificate covers {name} in {region}, nor an IAM server certificate: request or import one before `apply` (the plan will say so), or set \"request\": true"
                    ));
                    json!({ "domain": name })
                }
            }
        }
    };

    // The record after the switch.
    let stack = stack_of(&name);
    // Short enough that the switch propagates quickly, never above the TTL at rest.
    let transition = transition_for(old_ttl);
    let apex = name == zone.name;
    let dns_record = if apex {
        json!({"name": name, "type": "A", "to": "load_balancer", "transition_ttl": transition})
    } else {
        json!({"name": name, "type": "CNAME", "to": "load_balancer", "ttl": old_ttl, "transition_ttl": transition})
    };
    assumptions.push(if redirect_at_lb {
        format!("stack: {stack} (load balancer {stack}, groups {stack}-lb, {stack}-app)")
    } else {
        format!(
            "stack: {stack} (load balancer {stack}, groups {stack}-lb, {stack}-http, {stack}-app)"
        )
    });
    assumptions.push(if redirect_at_lb {
        format!("listeners: 80 answers a 301 to https itself (no port-80 server needed), 443 (TLS ends at the load balancer) → port {APP_PORT}")
    } else {
        format!("listeners: 80 → the targets' port 80 (nginx redirects to https), 443 (TLS ends at the load balancer) → port {APP_PORT}")
    });
    assumptions.push(format!(
        "health check: HTTP {HEALTH_PATH} on port {APP_PORT}, expecting 200: it must answer without basic auth (`reconcile backend` prints the nginx and Django parts)"
    ));
    assumptions.push(format!(
        "health check timing: every {}s, healthy after {} passing checks while the site moves (health_check.transition), then every {}s, healthy after {} at rest (AWS's defaults; no target group of the stack exists yet to take them from)",
        FAST.0, FAST.1, REST.0, REST.1
    ));
    if !neighbours.is_empty() {
        assumptions.push(format!(
            "left as they are: {} (same address as {name}, not in the manifest): once the backend's public rules go they no longer reach the backends; add them under dns.records to move them too",
            neighbours.join(", ")
        ));
    }
    assumptions.push(if apex {
        format!("record: {name} becomes an alias A record (a CNAME cannot stand at the zone apex); its TTL is lowered to {transition}s before the switch")
    } else {
        format!("record: {name} becomes a CNAME to the load balancer, TTL {old_ttl}s at rest and {transition}s while it changes")
    });

    let targets: Vec<&str> = targets.iter().map(|t| t.id.as_str()).collect();
    let health = |port: Option<u16>| {
        let mut h = json!({
            "path": HEALTH_PATH,
            "matcher": "200",
            "interval_seconds": REST.0,
            "healthy_threshold": REST.1,
            "transition": { "interval_seconds": FAST.0, "healthy_threshold": FAST.1 },
        });
        if let Some(p) = port {
            h.as_object_mut().map(|o| o.insert("port".into(), json!(p)));
        }
        h
    };
    // Port 80: redirected by the load balancer itself, or forwarded to the backends' port
    // 80 (whose nginx redirects), with a target group of its own.
    let app = json!({ "port": APP_PORT, "protocol": "HTTP", "health_check": health(None), "targets": targets });
    let (port_80, target_groups) = if redirect_at_lb {
        (
            json!({ "port": 80, "protocol": "HTTP", "redirect": "https" }),
            json!({ "app": app }),
        )
    } else {
        (
            json!({ "port": 80, "protocol": "HTTP", "forward": "http" }),
            json!({
                "http": { "port": 80, "protocol": "HTTP", "health_check": health(Some(APP_PORT)), "targets": targets },
                "app": app
            }),
        )
    };
    let manifest = json!({
        "version": 1,
        "stack": stack,
        "region": region,
        "vpc": vpc,
        "certificates": { "site": certificate },
        "security_groups": {
            "lb": {
                "description": format!("Public entry for {name}"),
                "ingress": [ { "ports": [80, 443], "cidrs": ["0.0.0.0/0", "::/0"] } ]
            },
            "backend": {
                "existing": backend.id,
                "exclusive": exclusive,
                "ingress": merge_rules(ingress)
            }
        },
        "target_groups": target_groups,
        "load_balancer": {
            "scheme": "internet-facing",
            "subnets": chosen.iter().map(|(s, _)| s.clone()).collect::<Vec<_>>(),
            "security_groups": ["lb"],
            "listeners": [
                port_80,
                { "port": 443, "protocol": "HTTPS", "certificate": "site", "forward": "app" }
            ]
        },
        "dns": { "zone": zone.name, "records": [dns_record] }
    });
    found(manifest, assumptions, review)
}

/// `reconcile init --direct`: the manifest of the way back for a site behind a stack's
/// load balancer: the record leads to the instances behind it again (an A record to their
/// public addresses), the backend's group admits 80 and 443 from the internet, and there is
/// no load balancer, so that its plan is the article's migration backwards. Reads only.
pub async fn init_direct(
    clients: &Clients,
    meter: &Meter,
    name: &str,
    zone: Option<&str>,
    region: &str,
) -> Result<Found, Error> {
    let name = net::normalize_dns(name);
    let route53 = Route53::new(&clients.route53, meter);
    let ec2 = Ec2::new(&clients.ec2, meter);
    let elb = Elbv2::new(&clients.elbv2, meter);
    let mut assumptions = Vec::new();
    let mut review = Vec::new();
    let zone = find_zone(&route53, &name, zone).await?;
    let records = route53
        .records(&zone.id, |n| n == name, |_| false, Round::START)
        .await?
        .value;
    let record = pick_record(&name, &zone, &records)?;
    // Where it leads: an alias's target, or a CNAME's value.
    let target = match (&record.alias, &record.kind) {
        (Some(a), _) => a.dns_name.clone(),
        (None, RecordKind::Cname) => record.values.first().cloned().unwrap_or_default(),
        (None, _) => {
            return Err(Error::NotBehindLoadBalancer {
                name,
                value: record.values.join(", "),
            })
        }
    };
    let lbs = elb.load_balancers(&[], Round::START).await?.value;
    let Some(lb) = lbs
        .iter()
        .find(|l| net::normalize_dns(&l.dns_name) == target)
    else {
        return Err(Error::NotBehindLoadBalancer {
            name,
            value: target,
        });
    };
    let tags = elb
        .tags(std::slice::from_ref(&lb.arn), Round::START)
        .await?
        .value;
    let Some(stack) = tags
        .get(&lb.arn)
        .and_then(|t| t.get(crate::names::STACK_TAG))
        .cloned()
    else {
        return Err(Error::Unsupported(format!(
            "{name} leads to load balancer {}, which no reconcile stack owns (no {} tag); init --direct writes the way back for a stack's own load balancer",
            lb.name,
            crate::names::STACK_TAG
        )));
    };
    let old_ttl = record.ttl;

    // The instances behind it: every target registered in the groups its listeners use.
    let listeners = elb
        .listeners(&lb.arn, Round::START)
        .await?
        .value
        .unwrap_or_default();
    let groups: BTreeSet<&String> = listeners
        .iter()
        .flat_map(|l| l.forward.iter().chain(&l.standby))
        .collect();
    let healths =
        futures::future::try_join_all(groups.iter().map(|g| elb.target_health(g, Round::START)))
            .await?;
    let ids: BTreeSet<String> = healths
        .into_iter()
        .filter_map(|h| h.value)
        .flatten()
        .map(|t| t.id)
        .collect();
    let ids: Vec<String> = ids.into_iter().collect();
    let instances = ec2.instances_by_id(&ids, Round::START).await?.value;
    let running: Vec<&ObservedInstance> = instances
        .iter()
        .filter(|i| i.state == crate::model::InstanceState::Running)
        .collect();
    let addresses: Vec<String> = {
        let mut a: Vec<String> = running.iter().filter_map(|i| i.public_ip.clone()).collect();
        a.sort();
        a
    };
    if addresses.is_empty() {
        return Err(Error::Unsupported(format!(
            "none of the instances behind load balancer {} ({}) is running with a public address; the way back needs one the record can lead to",
            lb.name,
            if ids.is_empty() { "none registered".to_owned() } else { ids.join(", ") }
        )));
    }
    for i in running.iter().filter(|i| i.public_ip.is_none()) {
        review.push(format!(
            "{} has no public address and will take no traffic once {name} leads to the instances",
            i.id
        ));
    }
    assumptions.push(format!(
        "record: {name} becomes an A record to {} (the public addresses of {})",
        addresses.join(", "),
        running
            .iter()
            .filter(|i| i.public_ip.is_some())
            .map(|i| i.id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    review.push("a public address that is not an elastic IP changes when its instance stops; give each instance an elastic IP before the switch".to_owned());

    // The backend group: the one every instance has, preferring one that admits the load
    // balancer's group.
    let admits_lb = |g: &crate::model::ObservedSg| {
        g.rules
            .iter()
            .any(|r| matches!(&r.key.source, Source::Group(id) if lb.security_groups.contains(id)))
    };
    let (_, backend) = shared_group(&ec2, &running, &name, admits_lb).await?;
    let backend = &backend;
    // Its rules: the public web ports open again; the rules admitting the load balancer
    // go with it; the rest stays.
    let mut ingress = vec![json!({"ports": [80, 443], "cidrs": ["0.0.0.0/0", "::/0"]})];
    let mut exclusive = true;
    for r in &backend.rules {
        let k = &r.key;
        if matches!(&k.source, Source::Group(id) if lb.security_groups.contains(id)) {
            continue;
        }
        if k.is_from_internet() && (k.admits_tcp(80) || k.admits_tcp(443)) {
            continue;
        }
        match manifest_rule(r) {
            Some(rule) => ingress.push(rule),
            None => {
                exclusive = false;
                review.push(format!(
                    "the rule {k} cannot be written in a manifest (TCP ports only), so `exclusive` is off: remove the rules admitting the load balancer by hand after the switch"
                ));
            }
        }
    }
    assumptions.push(format!(
        "backend security group: {} ({}) opens 80 and 443 to the internet before the switch, and its rules admitting the load balancer go after it",
        backend.id, backend.name
    ));
    // TTLs: the record's own at rest (an alias has none: 300 s), short while it changes.
    let ttl = old_ttl.unwrap_or(300);
    if old_ttl.is_none() {
        assumptions.push(format!(
            "TTL: 300s at rest (an alias record has none of its own); while it changes, {name} is served 60s answers by the load balancer's alias"
        ));
    }
    let transition = transition_for(ttl);
    assumptions.push(format!(
        "stack: {stack} (from the load balancer's tag); its load balancer {}, listeners, target groups and their groups are deleted once the answers leading to it have expired",
        lb.name
    ));
    let manifest = json!({
        "version": 1,
        "stack": stack,
        "region": region,
        "vpc": lb.vpc,
        "security_groups": {
            "backend": {
                "existing": backend.id,
                "exclusive": exclusive,
                "ingress": merge_rules(ingress)
            }
        },
        "dns": { "zone": zone.name, "records": [
            {"name": name, "type": "A", "values": addresses, "ttl": ttl, "transition_ttl": transition}
        ] }
    });
    found(manifest, assumptions, review)
}

/// The zone named `zone`, or else the closest parent domain of `name` that has one.
async fn find_zone(
    route53: &Route53,
    name: &str,
    zone: Option<&str>,
) -> Result<ObservedZone, Error> {
    // The zone: given, or the closest parent domain that has one.
    let candidates: Vec<String> = match zone {
        Some(z) => vec![net::normalize_dns(z)],
        None => {
            let labels: Vec<&str> = name.split('.').collect();
            (0..labels.len().saturating_sub(1))
                .map(|i| labels[i..].join("."))
                .collect()
        }
    };
    let mut found_zone: Option<ObservedZone> = None;
    for c in &candidates {
        if let Some(z) = route53.zone_named(c, Round::START).await?.value {
            found_zone = Some(z);
            break;
        }
    }
    let Some(zone) = found_zone else {
        return Err(Error::NoZone {
            name: name.to_owned(),
            tried: candidates.join(", "),
        });
    };
    Ok(zone)
}

/// A live rule as a manifest's ingress rule; `None` when a manifest cannot say it (not
/// TCP, or a range of more than 16 ports).
fn manifest_rule(r: &crate::model::ObservedRule) -> Option<Value> {
    let k = &r.key;
    let width = k.to_port - k.from_port;
    if k.protocol != IpProtocol::Tcp || !(0..16).contains(&width) || k.from_port <= 0 {
        return None;
    }
    let ports: Vec<i32> = (k.from_port..=k.to_port).collect();
    let mut rule = json!({ "ports": ports });
    match &k.source {
        Source::Cidr(c) => rule["cidrs"] = json!([c]),
        Source::Group(g) => rule["from"] = json!(g),
        Source::Key(key) => rule["from"] = json!(key),
    }
    if let Some(d) = &r.description {
        rule["description"] = json!(d);
    }
    Some(rule)
}

/// Rules as a person would write them: rules differing only in their networks become one
/// rule with those networks, then rules differing only in their ports one with those ports.
fn merge_rules(rules: Vec<Value>) -> Vec<Value> {
    fn merge(rules: Vec<Value>, field: &str, by: &[&str]) -> Vec<Value> {
        let mut out: Vec<Value> = Vec::new();
        for r in rules {
            let same = |o: &Value| {
                by.iter().all(|k| o.get(*k) == r.get(*k))
                    && o.get(field).is_some() == r.get(field).is_some()
            };
            match out.iter_mut().find(|o| same(o)) {
                Some(o) => {
                    if let (Some(Value::Array(into)), Some(Value::Array(more))) =
                        (o.get_mut(field), r.get(field))
                    {
                        for v in more {
                            if !into.contains(v) {
                                into.push(v.clone());
                            }
                        }
                    }
                }
                None => out.push(r),
            }
        }
        out
    }
    let by_network = merge(rules, "cidrs", &["ports", "from", "description"]);
    merge(by_network, "ports", &["cidrs", "from", "description"])
}

/// The security group every one of `instances` has (read by id), preferring one that
/// `prefer` picks; with how many they share.
async fn shared_group(
    ec2: &Ec2,
    instances: &[&ObservedInstance],
    name: &str,
    prefer: impl Fn(&crate::model::ObservedSg) -> bool,
) -> Result<(usize, crate::model::ObservedSg), Error> {
    let common: Vec<String> = instances
        .first()
        .map(|i| {
            i.groups
                .iter()
                .filter(|g| instances.iter().all(|x| x.groups.contains(g)))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let groups = ec2
        .security_groups_by_id(&common, Round::START)
        .await?
        .value;
    let n = groups.len();
    let chosen = groups.iter().position(&prefer).unwrap_or(0);
    groups
        .into_iter()
        .nth(chosen)
        .map(|g| (n, g))
        .ok_or_else(|| {
            Error::Unsupported(format!(
                "the instances behind {name} share no security group to manage"
            ))
        })
}

/// The TTL while a record changes: a quarter of `ttl`, between 1 s and 300 s, never above
/// `ttl` itself.
fn transition_for(ttl: u32) -> u32 {
    (ttl / 4).clamp(1, 300).min(ttl.max(1))
}

/// The manifest init wrote, checked as `validate` checks one: one that does not validate
/// is a bug in init.
fn found(manifest: Value, assumptions: Vec<String>, review: Vec<String>) -> Result<Found, Error> {
    let text = serde_json::to_string_pretty(&manifest).unwrap_or_default();
    if let Err(d) = crate::manifest::from_str("init", &text) {
        return Err(Error::Bug(d.to_string()));
    }
    Ok(Found {
        manifest,
        assumptions,
        review,
    })
}

fn pick_record<'r>(
    name: &str,
    zone: &ObservedZone,
    records: &'r [ObservedRecord],
) -> Result<&'r ObservedRecord, Error> {
    let web: Vec<&ObservedRecord> = records
        .iter()
        .filter(|r| r.name == name && r.kind.leads_to_site())
        .collect();
    web.iter()
        .find(|r| r.kind == RecordKind::Cname)
        .or_else(|| web.iter().find(|r| r.kind == RecordKind::A))
        .or_else(|| web.first())
        .copied()
        .ok_or_else(|| {
            let other: Vec<String> = records
                .iter()
                .filter(|r| r.name == name)
                .map(|r| r.kind.to_string())
                .collect();
            Error::NoRecord {
                name: name.to_owned(),
                zone: zone.name.clone(),
                found: if other.is_empty() {
                    String::new()
                } else {
                    format!(" (it has only: {})", other.join(", "))
                },
            }
        })
}

#[cfg(test)]
mod tests {
    use super::stack_of;

    #[test]
    fn stack_ids_from_names() {
        assert_eq!(stack_of("www.example.com"), "www-example");
        assert_eq!(stack_of("example.com"), "example");
        assert_eq!(stack_of("shop.eu.example.co.uk"), "shop-eu-example-co");
        assert!(stack_of("a-very-long-subdomain-name.of-some-company.example.com").len() <= 24);
        assert_eq!(stack_of("sg-1.example.com"), "site-1-example");
    }
}
