//! `reconcile init` on a site already behind a load balancer: the manifest that describes
//! that load balancer, its listeners, target groups and groups as they are, so that its
//! plan changes nothing but ownership. One made by hand is adopted (`adopt` on the load
//! balancer, each target group and each of its own security groups: `apply` tags them
//! first); one a stack owns is written plainly under that stack's names.

use crate::manifest::DEFAULT_SSL_POLICY;
use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Map, Value};

use super::{manifest_rule, shared_group, transition_for, Error, Found};
use crate::aws::ec2::Ec2;
use crate::aws::elbv2::Elbv2;
use crate::aws::{try_join_all, Round};
use crate::manifest::net;
use crate::model::{
    HealthPort, LbAttr, LbAttributes, ObservedInstance, ObservedLb, ObservedListener,
    ObservedRecord, ObservedSg, ObservedTg, ObservedZone, Protocol, Redirect, ResponseHeader,
    Source, Tags,
};
use crate::names;

/// The load balancer a record leads to and the zone's records for the name.
pub(super) struct Behind<'a> {
    pub name: &'a str,
    pub zone: &'a ObservedZone,
    /// The name's address records that lead to the load balancer.
    pub records: Vec<&'a ObservedRecord>,
    pub lb: &'a ObservedLb,
    pub region: &'a str,
}

/// Whose the load balancer is: the stack it carries the tag of, or nobody's (made by hand,
/// to be adopted under a stack named after the host).
enum Owner {
    Stack(String),
    Nobody(String),
}

impl Owner {
    fn stack(&self) -> &str {
        match self {
            Owner::Stack(s) | Owner::Nobody(s) => s,
        }
    }

    fn owns(&self, tags: &Tags) -> bool {
        matches!(self, Owner::Stack(s) if crate::model::owned_by(tags, s))
    }

    /// The manifest key of a resource the stack owns, from its derived name.
    fn key_in(&self, name: &str) -> Option<String> {
        names::key_of(self.stack(), name)
    }
}

pub(super) async fn init_behind(ec2: &Ec2, elb: &Elbv2, b: Behind<'_>) -> Result<Found, Error> {
    let Behind {
        name,
        zone,
        records,
        lb,
        region,
    } = b;
    let mut assumptions = Vec::new();
    let mut review = Vec::new();
    let lb_tags = elb
        .tags(std::slice::from_ref(&lb.arn), Round::START)
        .await?
        .value
        .remove(&lb.arn)
        .unwrap_or_default();
    let owner = match lb_tags.get(names::STACK_TAG) {
        Some(s) => Owner::Stack(s.clone()),
        None => Owner::Nobody(super::stack_of(name)),
    };
    let stack = owner.stack().to_owned();
    let adopting = matches!(owner, Owner::Nobody(_));

    // Listeners: each forwards to one target group, with an ACM certificate for HTTPS.
    let listeners = elb
        .listeners(&lb.arn, Round::START)
        .await?
        .value
        .unwrap_or_default();
    if listeners.is_empty() {
        return Err(Error::Unsupported(format!(
            "load balancer {} has no listener: there is no site behind it to describe",
            lb.name
        )));
    }
    for l in &listeners {
        if !matches!(l.protocol, Protocol::Http | Protocol::Https) {
            return Err(Error::Unsupported(format!(
                "listener {} of {} is {}; reconcile manages HTTP and HTTPS listeners",
                l.port, lb.name, l.protocol
            )));
        }
        let to_https = l.redirect.as_ref() == Some(&Redirect::https());
        match (l.forward.as_slice(), l.standby.is_empty()) {
            ([_], true) => {}
            ([], _) if to_https && l.protocol == Protocol::Http => {}
            ([], _) => {
                return Err(Error::Unsupported(format!(
                    "listener {} of {} neither forwards to a target group nor redirects to https on 443 with the same host, path and query (a fixed response, or another redirect?); reconcile's listeners do one of the two",
                    l.port, lb.name
                )))
            }
            _ => {
                return Err(Error::Unsupported(format!(
                    "listener {} of {} splits its traffic between several target groups; reconcile's listeners forward to one: finish or undo the split first",
                    l.port, lb.name
                )))
            }
        }
    }
    // Their response headers, so that the manifest describes them as they are.
    let headers = try_join_all(
        listeners
            .iter()
            .map(|l| elb.listener_headers(&l.arn, Round::START)),
    )
    .await?;
    let listeners: Vec<ObservedListener> = listeners
        .into_iter()
        .zip(headers)
        .map(|(mut l, h)| {
            l.headers = h.value;
            l
        })
        .collect();
    let used: BTreeSet<&String> = listeners.iter().flat_map(|l| &l.forward).collect();
    let all = elb.target_groups(&[], Round::START).await?.value;
    let tgs: Vec<&ObservedTg> = all.iter().filter(|t| used.contains(&t.arn)).collect();
    let tg_arns: Vec<String> = tgs.iter().map(|t| t.arn.clone()).collect();
    let (tg_tags, healths) = tokio::try_join!(
        async { elb.tags(&tg_arns, Round::START).await },
        futures::future::try_join_all(tgs.iter().map(|t| elb.target_health(&t.arn, Round::START))),
    )?;
    let tg_tags = tg_tags.value;

    // Target groups: keyed by the stack's names, or by protocol and port when adopted.
    let mut tg_keys: BTreeMap<String, String> = BTreeMap::new();
    let mut target_groups = Map::new();
    let mut instance_ids: BTreeSet<String> = BTreeSet::new();
    for (t, health) in tgs.iter().zip(healths) {
        let tags = tg_tags.get(&t.arn).cloned().unwrap_or_default();
        let owned = owner.owns(&tags);
        if let Some(other) = tags.get(names::STACK_TAG).filter(|s| **s != stack) {
            return Err(Error::Unsupported(format!(
                "target group {} of load balancer {} belongs to stack {other}; a load balancer and its groups have one owner",
                t.name, lb.name
            )));
        }
        let key = match owner.key_in(&t.name).filter(|_| owned) {
            Some(k) => k,
            None => {
                let base = format!("{}-{}", t.protocol.as_str().to_ascii_lowercase(), t.port);
                let mut key = base.clone();
                let mut n = 2;
                while target_groups.contains_key(&key) {
                    key = format!("{base}-{n}");
                    n += 1;
                }
                key
            }
        };
        let targets: Vec<String> = health
            .value
            .unwrap_or_default()
            .into_iter()
            .filter(|h| h.state != crate::model::TargetState::Draining)
            .map(|h| h.id)
            .collect();
        instance_ids.extend(targets.iter().cloned());
        let h = &t.health;
        let mut hc = json!({
            "protocol": h.protocol,
            "path": h.path,
            "matcher": h.matcher,
            "interval_seconds": h.interval_seconds,
            "timeout_seconds": h.timeout_seconds,
            "healthy_threshold": h.healthy_threshold,
            "unhealthy_threshold": h.unhealthy_threshold,
        });
        if let HealthPort::Port(p) = h.port {
            hc["port"] = json!(p);
        }
        let mut tg = json!({
            "port": t.port,
            "protocol": t.protocol,
            "health_check": hc,
            "targets": targets,
        });
        if !owned {
            tg["adopt"] = json!(t.arn);
        }
        tg_keys.insert(t.arn.clone(), key.clone());
        target_groups.insert(key, tg);
    }
    if target_groups.values().any(|t| t.get("adopt").is_some()) {
        assumptions.push(format!(
            "target groups: {} adopted (tagged with the stack, then managed; they keep their names)",
            tgs.iter()
                .filter(|t| !owner.owns(tg_tags.get(&t.arn).unwrap_or(&Tags::new())))
                .map(|t| t.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }

    // Security groups: the load balancer's own (adopted when made by hand; the VPC's
    // default group and one whose rules a manifest cannot say are named by id instead), and
    // the backends' group, whose rules are managed and kept as they are.
    let instances = ec2
        .instances_by_id(
            &instance_ids.iter().cloned().collect::<Vec<_>>(),
            Round::START,
        )
        .await?
        .value;
    let lb_group_ids: Vec<String> = lb.security_groups.iter().cloned().collect();
    let lb_groups = ec2
        .security_groups_by_id(&lb_group_ids, Round::START)
        .await?
        .value;
    let mut security_groups = Map::new();
    let mut lb_refs: Vec<Value> = Vec::new();
    let mut group_keys: BTreeMap<String, String> = BTreeMap::new();
    for g in &lb_groups {
        let owned = owner.owns(&g.tags);
        let key = owner.key_in(&g.name).filter(|_| owned).unwrap_or_else(|| {
            if security_groups.contains_key("lb") {
                format!("lb-{}", security_groups.len() + 1)
            } else {
                "lb".to_owned()
            }
        });
        let rules: Option<Vec<Value>> = g.rules.iter().map(manifest_rule).collect();
        let foreign = g.tags.get(names::STACK_TAG).is_some_and(|s| *s != stack);
        match rules {
            Some(rules) if (owned || !g.is_vpc_default()) && !foreign => {
                let mut sg = json!({ "ingress": super::merge_rules(rules) });
                if owned {
                    sg["description"] = json!(g.description);
                } else {
                    sg["adopt"] = json!(g.id);
                }
                group_keys.insert(g.id.clone(), key.clone());
                security_groups.insert(key.clone(), sg);
                lb_refs.push(json!(key));
            }
            _ => {
                review.push(format!(
                    "the load balancer's group {} ({}) is named by id, not adopted ({}): its rules stay as they are",
                    g.id,
                    g.name,
                    if g.is_vpc_default() { "the VPC's default group" } else if foreign { "another stack owns it" } else { "a rule of it cannot be written in a manifest" }
                ));
                lb_refs.push(json!(g.id));
            }
        }
    }
    // A rule naming one of the groups above by id names it by key.
    let by_key = |v: &mut Value| {
        if let Some(from) = v.get("from").and_then(Value::as_str) {
            if let Some(k) = group_keys.get(from) {
                v["from"] = json!(k);
            }
        }
    };
    for sg in security_groups.values_mut() {
        if let Some(rules) = sg.get_mut("ingress").and_then(Value::as_array_mut) {
            rules.iter_mut().for_each(by_key);
        }
    }
    let running: Vec<&ObservedInstance> = instances.iter().collect();
    if !running.is_empty() {
        let admits_lb = |g: &ObservedSg| {
            g.rules.iter().any(
                |r| matches!(&r.key.source, Source::Group(id) if lb.security_groups.contains(id)),
            )
        };
        let (_, backend) = shared_group(ec2, &running, name, admits_lb).await?;
        if !group_keys.contains_key(&backend.id) {
            // Kept as it is: the rules a manifest can say (the web ports open to the
            // internet left out, which validation refuses beside the load balancer's
            // group), not exclusive, so that nothing is removed.
            let mut ingress: Vec<Value> = Vec::new();
            let mut public = Vec::new();
            for r in &backend.rules {
                let web = [80, 443].into_iter().chain(tgs.iter().map(|t| t.port));
                if r.key.is_from_internet() && { web }.any(|p| r.key.admits_tcp(p)) {
                    public.push(r.key.to_string());
                    continue;
                }
                if let Some(mut rule) = manifest_rule(r) {
                    by_key(&mut rule);
                    ingress.push(rule);
                }
            }
            if !public.is_empty() {
                review.push(format!(
                    "the backends' group {} still admits the internet ({}); once {name} has led to the load balancer for longer than its old TTL, set `exclusive` to true to close them (the plan removes them)",
                    backend.id,
                    public.join(", ")
                ));
            }
            security_groups.insert(
                "backend".to_owned(),
                json!({ "existing": backend.id, "exclusive": false, "ingress": super::merge_rules(ingress) }),
            );
            assumptions.push(format!(
                "backend security group: {} ({}), its rules managed (none removed: `exclusive` is off)",
                backend.id, backend.name
            ));
        }
    } else {
        review.push(format!(
            "no target is registered behind {}: the plan will find nothing to serve",
            lb.name
        ));
    }

    // Certificates: pinned by ARN, so that nothing moves.
    let mut certificates = Map::new();
    let mut cert_keys: BTreeMap<String, String> = BTreeMap::new();
    for arn in listeners.iter().filter_map(|l| l.certificates.first()) {
        if cert_keys.contains_key(arn) {
            continue;
        }
        if net::cert_store(arn).is_none() {
            return Err(Error::Unsupported(format!(
                "a listener of {} uses certificate {arn}, which is neither ACM's nor an IAM server certificate",
                lb.name
            )));
        }
        let key = if certificates.is_empty() {
            "site".to_owned()
        } else {
            format!("site-{}", certificates.len() + 1)
        };
        certificates.insert(key.clone(), json!({ "arn": arn }));
        cert_keys.insert(arn.clone(), key);
    }
    let listeners_json: Vec<Value> = listeners
        .iter()
        .map(|l| {
            let mut v = json!({ "port": l.port, "protocol": l.protocol });
            match l.forward.first().and_then(|a| tg_keys.get(a)) {
                Some(key) => v["forward"] = json!(key),
                None => v["redirect"] = json!("https"),
            }
            if let Some(k) = l.certificates.first().and_then(|a| cert_keys.get(a)) {
                v["certificate"] = json!(k);
            }
            // Pinned as it is: left out, the plan would move it to the default.
            let https = l.protocol == Protocol::Https;
            if let Some(p) = l
                .ssl_policy
                .as_ref()
                .filter(|p| https && *p != DEFAULT_SSL_POLICY)
            {
                v["ssl_policy"] = json!(p);
            }
            let headers = l.headers.clone().unwrap_or_default();
            if !headers.is_empty() {
                v["headers"] = headers
                    .iter()
                    .map(|(h, value)| {
                        let value = match h {
                            ResponseHeader::Server => json!(value == "true"),
                            _ => json!(value),
                        };
                        (h.field().to_owned(), value)
                    })
                    .collect::<serde_json::Map<_, _>>()
                    .into();
            }
            v
        })
        .collect();
    let mut load_balancer = json!({
        "scheme": lb.scheme,
        "subnets": lb.subnets,
        "security_groups": lb_refs,
        "listeners": listeners_json,
    });
    if adopting {
        load_balancer["adopt"] = json!(lb.arn);
    }
    // Its attributes where they differ from the manifest's defaults, as they are.
    let live = elb.lb_attributes(&lb.arn, Round::START).await?.value;
    if let Some(attributes) = live.as_ref().map(attributes_as_they_are) {
        if !attributes.is_empty() {
            load_balancer["attributes"] = Value::Object(attributes);
        }
    }

    // The records as they are: each still leads to the load balancer.
    let dns_records: Vec<Value> = records
        .iter()
        .map(|r| match r.ttl {
            Some(ttl) if r.alias.is_none() => json!({
                "name": name, "type": r.kind, "to": "load_balancer", "ttl": ttl,
                "transition_ttl": transition_for(ttl)
            }),
            _ => json!({ "name": name, "type": r.kind, "to": "load_balancer" }),
        })
        .collect();
    assumptions.push(match &owner {
        Owner::Stack(s) => format!(
            "stack: {s} (from the load balancer's tag); the manifest describes it as it is"
        ),
        Owner::Nobody(s) => format!(
            "stack: {s}; load balancer {} is adopted: `apply` tags it {}={s} first (with its target groups and own security groups), then manages it; it keeps its name",
            lb.name,
            names::STACK_TAG
        ),
    });
    review.push(
        "the plan of this manifest should change nothing but ownership; review any other change it shows before applying".to_owned(),
    );
    let manifest = json!({
        "version": 1,
        "stack": stack,
        "region": region,
        "vpc": lb.vpc,
        "certificates": certificates,
        "security_groups": security_groups,
        "target_groups": target_groups,
        "load_balancer": load_balancer,
        "dns": { "zone": zone.name, "records": dns_records }
    });
    // The site as it is may not be one reconcile can manage (no HTTPS listener, say):
    // that is the site's to change, not a fault of init.
    let text = serde_json::to_string_pretty(&manifest).unwrap_or_default();
    if let Err(d) = crate::manifest::from_str("init", &text) {
        return Err(Error::Unsupported(format!(
            "the site behind load balancer {} cannot be described as it is by a manifest reconcile accepts:\n{d}",
            lb.name
        )));
    }
    Ok(Found {
        manifest,
        assumptions,
        review,
    })
}

/// The `attributes` of a manifest that keeps a load balancer's attributes as they are:
/// those that differ from the manifest's defaults.
fn attributes_as_they_are(live: &LbAttributes) -> Map<String, Value> {
    let defaults = LbAttr::from_manifest(None);
    let differs = |a: LbAttr| live.get(&a) != defaults.get(&a);
    let value = |a: LbAttr| live.get(&a).cloned().unwrap_or_default();
    let mut out = Map::new();
    for a in [LbAttr::DropInvalidHeaderFields, LbAttr::DeletionProtection] {
        if differs(a) {
            out.insert(a.field().to_owned(), json!(value(a) == "true"));
        }
    }
    if differs(LbAttr::IdleTimeout) {
        if let Ok(secs) = value(LbAttr::IdleTimeout).parse::<i64>() {
            out.insert("idle_timeout".into(), json!(secs));
        }
    }
    if differs(LbAttr::DesyncMitigationMode) {
        out.insert(
            "desync_mitigation_mode".into(),
            json!(value(LbAttr::DesyncMitigationMode)),
        );
    }
    if value(LbAttr::AccessLogsEnabled) == "true" {
        let mut logs = Map::new();
        logs.insert("bucket".into(), json!(value(LbAttr::AccessLogsBucket)));
        let prefix = value(LbAttr::AccessLogsPrefix);
        if !prefix.is_empty() {
            logs.insert("prefix".into(), json!(prefix));
        }
        out.insert("access_logs".into(), Value::Object(logs));
    }
    out
}
