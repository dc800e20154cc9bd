//! One read of everything a set of manifests speaks about, with the fewest requests: list
//! calls instead of lookups that fail on a missing name, each made once for all the stacks
//! of a region, batches where AWS takes them, and every request sent as soon as the
//! answers it needs are in (independent chains run together). The answers are then split
//! per stack, each stack getting exactly what a read of it alone would give.
//!
//! For the example manifest this is at most 12 requests in 3 rounds, empty or converged;
//! for N stacks, the listings of round 1 are made once, and round 2 grows by about three
//! requests per stack (its load balancer's listeners, its two target groups' health):
//!
//! - round 1: `DescribeLoadBalancers`, `DescribeTargetGroups`, `DescribeSecurityGroups`
//!   (the VPCs', one filter of several values), `ListHostedZonesByName` per distinct zone,
//!   `ListCertificates` (when a certificate is asked for by domain), `DescribeCertificate`
//!   per distinct certificate pinned by ARN, `DescribeInstances` (the targets, by filter);
//! - round 2: `DescribeListeners` per load balancer and `DescribeTargetHealth` per target
//!   group (AWS has no batch for either), `DescribeTags` (20 ARNs a call, across stacks),
//!   `ListResourceRecordSets` per zone; and only when needed, `DescribeSecurityGroups` for
//!   groups named by id outside every VPC read, `DescribeCertificate` for listed
//!   certificates whose names the listing left out, `DescribeSubnets` where a load balancer
//!   is to be placed, and `DescribeTags` for another owner's load balancer a managed record
//!   leads to.
//!
//! A later page of a listing is one round later, and so is everything that needs it. Each
//! request is counted for the run and for every stack whose answer it served (see
//! [`Meter::serving`]).

mod scope;

use std::collections::{BTreeMap, BTreeSet};

use crate::aws::acm::{Acm, ListedCert};
use crate::aws::ec2::Ec2;
use crate::aws::elbv2::{Elbv2, TAGS_PER_CALL};
use crate::aws::iam::Iam;
use crate::aws::route53::Route53;
use crate::aws::settle::{self, LISTED_SETTLE};
use crate::aws::{self, try_join_all, Clients, Meter, Round};
use crate::manifest::net::{self, CertStore};
use crate::model::{
    Desired, Observed, ObservedCert, ObservedInstance, ObservedLb, ObservedListener, ObservedSg,
    ObservedSubnet, ObservedTg, ObservedZone, RecordKind, Tags,
};

use scope::{Scope, Scopes};

type Result<T, E = aws::Error> = std::result::Result<T, E>;

/// Reads the live state one desired model speaks about: [`observe_many`] of one stack.
pub async fn observe(clients: &Clients, meter: &Meter, desired: &Desired) -> Result<Observed> {
    observe_many(clients, meter, std::slice::from_ref(desired))
        .await?
        .pop()
        .ok_or_else(|| aws::Error::Bug("the read of one stack gave no state".into()))
}

/// Reads the live state of several stacks of one region (one account) at once, on shared
/// clients: every listing once for all of them, per-resource reads batched across stacks
/// where AWS allows. Returns one state per desired model, in order. Resources that vanish
/// between two rounds (deleted meanwhile) are left out rather than reported half-read.
pub async fn observe_many(
    clients: &Clients,
    meter: &Meter,
    desired: &[Desired],
) -> Result<Vec<Observed>> {
    if desired.is_empty() {
        return Ok(Vec::new());
    }
    let scopes = Scopes(desired.iter().map(Scope::of).collect());
    let ((load_balancers, target_groups, others, subnets), groups, zones, certificates, instances) =
        tokio::try_join!(
            read_elb(clients, meter, &scopes),
            read_security_groups(clients, meter, &scopes),
            read_zones(clients, meter, &scopes),
            read_certificates(clients, meter, &scopes),
            read_instances(clients, meter, &scopes),
        )?;
    let mut observed: Vec<Observed> = scopes
        .0
        .iter()
        .zip(load_balancers)
        .zip(target_groups)
        .zip(zones)
        .zip(certificates)
        .map(
            |((((scope, load_balancers), target_groups), zone), certificates)| {
                let lb_groups: BTreeSet<String> = load_balancers
                    .iter()
                    .flat_map(|lb| lb.security_groups.iter().cloned())
                    .collect();
                let instances: Vec<ObservedInstance> = instances
                    .iter()
                    .filter(|i| {
                        scope.targets.contains(&i.id)
                            || i.public_ip
                                .as_ref()
                                .is_some_and(|a| scope.addresses.contains(a))
                            || i.public_dns
                                .as_ref()
                                .is_some_and(|n| scope.host_names.contains(n))
                    })
                    .cloned()
                    .collect();
                let subnets: Vec<ObservedSubnet> = subnets
                    .iter()
                    .filter(|s| scope.subnets.contains(&s.id))
                    .cloned()
                    .collect();
                // The groups that guard its instances, whatever the manifest says of them.
                let guards: BTreeSet<&String> = instances.iter().flat_map(|i| &i.groups).collect();
                let mut security_groups: Vec<ObservedSg> = groups
                    .iter()
                    .filter(|g| scope.wants_group(g, &lb_groups) || guards.contains(&g.id))
                    .cloned()
                    .collect();
                // The groups its groups' rules admit, for their owner tags: an exclusive
                // group keeps the rules that let another stack's load balancer in.
                let sources: BTreeSet<&String> = security_groups
                    .iter()
                    .flat_map(|g| &g.rules)
                    .filter_map(|r| match &r.key.source {
                        crate::model::Source::Group(id) => Some(id),
                        _ => None,
                    })
                    .collect();
                let extra: Vec<ObservedSg> = groups
                    .iter()
                    .filter(|g| sources.contains(&g.id))
                    .filter(|g| !security_groups.iter().any(|k| k.id == g.id))
                    .cloned()
                    .collect();
                security_groups.extend(extra);
                security_groups.sort_by(|a, b| a.id.cmp(&b.id));
                Observed {
                    load_balancers,
                    target_groups,
                    security_groups,
                    certificates,
                    zone,
                    instances,
                    subnets,
                    foreign_load_balancers: vec![],
                }
            },
        )
        .collect();
    assign_foreign(&scopes, &mut observed, &others);
    read_certificate_tags(clients, meter, &scopes, &mut observed).await?;
    Ok(observed)
}

/// For each stack that requests a certificate: the tags of the ACM certificates it read
/// that it may have requested earlier, those no load balancer uses and those its own
/// listeners use (a certificate in use elsewhere is never the stack's to delete). Each
/// ARN is read once for every stack that needs it; one gone meanwhile keeps no tags.
async fn read_certificate_tags(
    clients: &Clients,
    meter: &Meter,
    scopes: &Scopes,
    observed: &mut [Observed],
) -> Result<()> {
    let mut wanted: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (scope, o) in scopes.0.iter().zip(observed.iter()) {
        if scope.requested_domains.is_empty() {
            continue;
        }
        let on_listeners: BTreeSet<&String> = o
            .load_balancers
            .iter()
            .flat_map(|lb| &lb.listeners)
            .flat_map(|l| &l.certificates)
            .collect();
        for c in &o.certificates {
            if c.store == CertStore::Acm
                && (c.in_use != Some(true) || on_listeners.contains(&c.arn))
            {
                wanted
                    .entry(c.arn.clone())
                    .or_default()
                    .push(scope.stack.clone());
            }
        }
    }
    let reads = wanted.into_iter().map(|(arn, stacks)| {
        let acm = Acm::new(&clients.acm, &meter.serving(stacks));
        async move {
            let answer = acm.tags(&arn, Round(1)).await?;
            Ok::<_, crate::aws::Error>((arn, answer.value))
        }
    });
    let tags: BTreeMap<String, crate::model::Tags> = try_join_all(reads)
        .await?
        .into_iter()
        .filter_map(|(arn, t)| Some((arn, t?)))
        .collect();
    for o in observed.iter_mut() {
        for c in &mut o.certificates {
            if let Some(t) = tags.get(&c.arn) {
                c.tags = t.clone();
            }
        }
    }
    Ok(())
}

/// The load balancers outside a stack's names that its managed records lead to now, with
/// their tags (read with the stack's own): a record served by another stack's load
/// balancer is another stack's, or this one's under its old name.
fn assign_foreign(scopes: &Scopes, observed: &mut [Observed], others: &[ObservedLb]) {
    let normal = crate::manifest::net::normalize_dns;
    for (scope, o) in scopes.0.iter().zip(observed.iter_mut()) {
        let leads_to: BTreeSet<String> = o
            .zone
            .iter()
            .flat_map(|z| &z.records)
            .filter(|r| scope.record_names.contains(&r.name))
            .flat_map(|r| {
                r.alias.iter().map(|a| a.dns_name.clone()).chain(
                    r.values
                        .iter()
                        .filter(|_| r.kind == RecordKind::Cname)
                        .cloned(),
                )
            })
            .collect();
        o.foreign_load_balancers = others
            .iter()
            .filter(|l| leads_to.contains(&normal(&l.dns_name)))
            .cloned()
            .collect();
    }
}

/// Per stack: load balancers with listeners and tags; target groups with tags and target
/// health.
async fn read_elb(
    clients: &Clients,
    meter: &Meter,
    scopes: &Scopes,
) -> Result<(
    Vec<Vec<ObservedLb>>,
    Vec<Vec<ObservedTg>>,
    Vec<ObservedLb>,
    Vec<ObservedSubnet>,
)> {
    let elb_for = |stacks: Vec<String>| Elbv2::new(&clients.elbv2, &meter.serving(stacks));
    let everyone = elb_for(scopes.stacks_where(|_| true));
    let names = scopes.union(|s| &s.load_balancer_names);
    let prefixes = scopes.union(|s| std::iter::once(&s.name_prefix));
    let (mut lbs, mut tgs) = tokio::try_join!(
        everyone.load_balancers(&names, Round::START),
        everyone.target_groups(&prefixes, Round::START),
    )?;
    // The account's other load balancers are kept bare: a managed record may lead to one.
    let mut others: Vec<ObservedLb>;
    (lbs.value, others) = std::mem::take(&mut lbs.value)
        .into_iter()
        .partition(|lb| scopes.0.iter().any(|s| s.wants_load_balancer(lb)));
    // Each stack's target groups: by name, adopted, or used by its load balancers.
    let stack_lbs: BTreeMap<&str, BTreeSet<String>> = scopes
        .0
        .iter()
        .map(|s| {
            let arns = lbs.value.iter().filter(|lb| s.wants_load_balancer(lb));
            (s.stack.as_str(), arns.map(|lb| lb.arn.clone()).collect())
        })
        .collect();
    let no_lbs = BTreeSet::new();
    let wants_tg = |s: &Scope, tg: &ObservedTg| {
        s.wants_target_group(tg, stack_lbs.get(s.stack.as_str()).unwrap_or(&no_lbs))
    };
    let other_tgs: Vec<ObservedTg>;
    (tgs.value, other_tgs) = std::mem::take(&mut tgs.value)
        .into_iter()
        .partition(|tg| scopes.0.iter().any(|s| wants_tg(s, tg)));

    // Tags: every ARN once, and a stack's ARNs in one call when they fit, so that a call
    // serves few stacks and a stack's count does not depend on its neighbours.
    let mut batches: Vec<(Vec<String>, Vec<String>)> = Vec::new();
    let mut batch_of: BTreeMap<&str, usize> = BTreeMap::new();
    for s in &scopes.0 {
        let lb_arns = lbs.value.iter().filter(|lb| s.wants_load_balancer(lb));
        let tg_arns = tgs.value.iter().filter(|tg| wants_tg(s, tg));
        let mut new = Vec::new();
        for arn in lb_arns.map(|lb| &lb.arn).chain(tg_arns.map(|tg| &tg.arn)) {
            match batch_of.get(arn.as_str()).and_then(|&i| batches.get_mut(i)) {
                Some((_, owners)) => owners.push(s.stack.clone()),
                None => new.push(arn.as_str()),
            }
        }
        for chunk in new.chunks(TAGS_PER_CALL) {
            let fits = batches
                .last()
                .is_some_and(|(arns, _)| arns.len() + chunk.len() <= TAGS_PER_CALL);
            if !fits {
                batches.push((Vec::new(), Vec::new()));
            }
            let i = batches.len() - 1;
            if let Some((arns, owners)) = batches.last_mut() {
                arns.extend(chunk.iter().map(|a| (*a).to_owned()));
                owners.push(s.stack.clone());
            }
            batch_of.extend(chunk.iter().map(|a| (*a, i)));
        }
    }
    // The other load balancers' tags too, in calls of their own for every stack: one that
    // carries a stack's tag under a name of its own was adopted by it earlier, and a record
    // may lead to another stack's.
    for chunk in others.chunks(TAGS_PER_CALL) {
        let arns = chunk.iter().map(|lb| lb.arn.clone()).collect();
        batches.push((arns, scopes.stacks_where(|_| true)));
    }
    let after_both = lbs.round.max(tgs.round);
    let tag_calls = batches.into_iter().map(|(arns, owners)| {
        let elb = elb_for(owners);
        async move { elb.tags(&arns, after_both).await }
    });
    let after_lbs = lbs.round;
    let listener_calls = lbs.value.iter().map(|lb| {
        let elb = elb_for(scopes.stacks_where(|s| s.wants_load_balancer(lb)));
        // Just listed: a "not found" now is AWS not knowing it everywhere yet, as a rule.
        async move {
            settle::until_found(
                LISTED_SETTLE,
                |a: &aws::Answer<Option<_>>| a.value.is_some(),
                || elb.listeners(&lb.arn, after_lbs),
            )
            .await
        }
    });
    // Subnets matter only where a load balancer is to be placed: a stack whose load balancer
    // already sits in the manifest's subnets asks nothing.
    let placing: Vec<String> = scopes.stacks_where(|s| {
        !lbs.value
            .iter()
            .any(|lb| s.wants_load_balancer(lb) && lb.subnets == s.subnets)
    });
    let subnet_ids = scopes.union(|s| s.subnets.iter().filter(|_| placing.contains(&s.stack)));
    let subnets_call = {
        let ec2 = Ec2::new(&clients.ec2, &meter.serving(placing.clone()));
        let after = lbs.round;
        async move { ec2.subnets_by_id(&subnet_ids, after).await }
    };
    let after_tgs = tgs.round;
    let health_calls = tgs.value.iter().map(|tg| {
        let elb = elb_for(scopes.stacks_where(|s| wants_tg(s, tg)));
        async move {
            settle::until_found(
                LISTED_SETTLE,
                |a: &aws::Answer<Option<_>>| a.value.is_some(),
                || elb.target_health(&tg.arn, after_tgs),
            )
            .await
        }
    });
    // Their attributes, beside the listeners (deletion protection matters to one the plan
    // deletes as much as the rest to one it keeps).
    let attribute_calls = lbs.value.iter().map(|lb| {
        let elb = elb_for(scopes.stacks_where(|s| s.wants_load_balancer(lb)));
        async move { elb.lb_attributes(&lb.arn, after_lbs).await }
    });
    let (listeners, attributes, tag_answers, health, subnets) = tokio::try_join!(
        try_join_all(listener_calls),
        try_join_all(attribute_calls),
        try_join_all(tag_calls),
        try_join_all(health_calls),
        subnets_call,
    )?;
    let listener_round = listeners
        .iter()
        .map(|a| a.round)
        .max()
        .unwrap_or(Round::START);
    let tag_round = tag_answers
        .iter()
        .map(|a| a.round)
        .max()
        .unwrap_or(Round::START);
    let tags: BTreeMap<String, Tags> = tag_answers.into_iter().flat_map(|a| a.value).collect();

    let mut load_balancers: Vec<ObservedLb> = lbs
        .value
        .into_iter()
        .zip(listeners.into_iter().zip(attributes))
        .filter_map(|(mut lb, (listeners, attributes))| {
            lb.listeners = listeners.value?;
            lb.attributes = attributes.value;
            lb.tags = tags.get(&lb.arn).cloned().unwrap_or_default();
            Some(lb)
        })
        .collect();
    // The response headers of the listeners whose headers the stacks manage: known from
    // the manifests and the load balancers' tags, so read in the round after both.
    let after_listeners = listener_round.max(tag_round);
    try_join_all(load_balancers.iter_mut().map(|lb| {
        let wanting: Vec<&Scope> = scopes
            .0
            .iter()
            .filter(|s| s.wants_load_balancer(lb))
            .collect();
        let elb = elb_for(wanting.iter().map(|s| s.stack.clone()).collect());
        async move {
            let tags = lb.tags.clone();
            read_headers(&elb, &mut lb.listeners, after_listeners, |l| {
                wanting.iter().any(|s| s.wants_headers(&tags, l))
            })
            .await
        }
    }))
    .await?;
    load_balancers.sort_by(|a, b| (&a.name, &a.arn).cmp(&(&b.name, &b.arn)));
    let mut target_groups: Vec<ObservedTg> = tgs
        .value
        .into_iter()
        .zip(health)
        .filter_map(|(mut tg, targets)| {
            // A draining target is on its way out: AWS lists it for the deregistration
            // delay, but it is no longer registered and serves no new request.
            tg.targets = targets.value?;
            tg.targets
                .retain(|t| t.state != crate::model::TargetState::Draining);
            tg.tags = tags.get(&tg.arn).cloned().unwrap_or_default();
            Some(tg)
        })
        .collect();
    target_groups.sort_by(|a, b| (&a.name, &a.arn).cmp(&(&b.name, &b.arn)));

    for lb in &mut others {
        lb.tags = tags.get(&lb.arn).cloned().unwrap_or_default();
    }
    let (mut lbs, mut tgs): (Vec<Vec<ObservedLb>>, Vec<Vec<ObservedTg>>) = scopes
        .0
        .iter()
        .map(|s| {
            let lbs = load_balancers
                .iter()
                .filter(|lb| s.wants_load_balancer(lb))
                .cloned()
                .collect();
            let tgs = target_groups
                .iter()
                .filter(|tg| wants_tg(s, tg))
                .cloned()
                .collect();
            (lbs, tgs)
        })
        .unzip();
    let after_tags = tag_round.max(after_both);
    read_adopted_earlier(
        &elb_for,
        scopes,
        (&mut lbs, &mut tgs),
        (&mut others, &other_tgs),
        after_tags,
    )
    .await?;
    Ok((lbs, tgs, others, subnets.value))
}

/// The response headers of the listeners `wanted`, one request each, sent together after
/// `after`; a listener gone meanwhile keeps `headers: None`, as if not read.
async fn read_headers(
    elb: &Elbv2,
    listeners: &mut [ObservedListener],
    after: Round,
    wanted: impl Fn(&ObservedListener) -> bool,
) -> Result<()> {
    let reads = listeners
        .iter()
        .enumerate()
        .filter(|(_, l)| wanted(l))
        .map(|(i, l)| {
            let arn = l.arn.clone();
            async move { Ok::<_, aws::Error>((i, elb.listener_headers(&arn, after).await?)) }
        });
    for (i, answer) in try_join_all(reads).await? {
        if let Some(l) = listeners.get_mut(i) {
            l.headers = answer.value;
        }
    }
    Ok(())
}

/// A load balancer of another name that carries a stack's tag is one the stack adopted
/// earlier (and whose `adopt` has left the manifest: the way back, `destroy`, or a run
/// resumed after the record moved away from it). It is read whole, with the target groups
/// attached to it (one round: its listeners, their tags and health), and joins the stack's own: the tag decides what is the stack's, so
/// that it is kept, moved away from and deleted like any of them, never orphaned.
async fn read_adopted_earlier(
    elb_for: &impl Fn(Vec<String>) -> Elbv2,
    scopes: &Scopes,
    (lbs, tgs): (&mut [Vec<ObservedLb>], &mut [Vec<ObservedTg>]),
    (others, other_tgs): (&mut Vec<ObservedLb>, &[ObservedTg]),
    after: Round,
) -> Result<()> {
    let owner = |l: &ObservedLb| {
        scopes
            .0
            .iter()
            .position(|s| crate::model::owned_by(&l.tags, &s.stack))
    };
    let mine: Vec<(usize, ObservedLb)>;
    let kept: Vec<ObservedLb>;
    (mine, kept) = {
        let (m, k): (Vec<_>, Vec<_>) = std::mem::take(others)
            .into_iter()
            .map(|l| (owner(&l), l))
            .partition(|(i, _)| i.is_some());
        (
            m.into_iter().filter_map(|(i, l)| Some((i?, l))).collect(),
            k.into_iter().map(|(_, l)| l).collect(),
        )
    };
    *others = kept;
    if mine.is_empty() {
        return Ok(());
    }
    let elb = elb_for(
        mine.iter()
            .map(|(i, _)| scopes.0[*i].stack.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
    );
    // Its target groups by AWS's own list of the load balancers each serves, so that they
    // are read beside its listeners (one round, not two).
    let used: Vec<(usize, ObservedTg)> = mine
        .iter()
        .flat_map(|(i, lb)| {
            other_tgs
                .iter()
                .filter(|t| t.load_balancers.contains(&lb.arn))
                .map(|t| (*i, t.clone()))
        })
        .collect();
    let arns: Vec<String> = used.iter().map(|(_, t)| t.arn.clone()).collect();
    let (attributes, listeners, tags, health) = tokio::try_join!(
        try_join_all(mine.iter().map(|(_, l)| elb.lb_attributes(&l.arn, after))),
        try_join_all(mine.iter().map(|(i, l)| {
            let scope = &scopes.0[*i];
            let elb = &elb;
            async move {
                let mut listeners = elb.listeners(&l.arn, after).await?;
                if let Some(list) = listeners.value.as_mut() {
                    read_headers(elb, list, listeners.round, |x| {
                        scope.wants_headers(&l.tags, x)
                    })
                    .await?;
                }
                Ok::<_, aws::Error>(listeners)
            }
        })),
        async {
            if arns.is_empty() {
                Ok(aws::Answer {
                    value: BTreeMap::new(),
                    round: after,
                })
            } else {
                elb.tags(&arns, after).await
            }
        },
        try_join_all(used.iter().map(|(_, t)| elb.target_health(&t.arn, after))),
    )?;
    let mut found: Vec<(usize, ObservedLb)> = Vec::new();
    for ((i, mut lb), (answer, attributes)) in
        mine.into_iter().zip(listeners.into_iter().zip(attributes))
    {
        // Deleted meanwhile: left out, as any resource that vanishes between two rounds.
        let Some(listeners) = answer.value else {
            continue;
        };
        lb.listeners = listeners;
        lb.attributes = attributes.value;
        found.push((i, lb));
    }
    for ((i, mut t), targets) in used.into_iter().zip(health) {
        let Some(mut targets) = targets.value else {
            continue;
        };
        targets.retain(|h| h.state != crate::model::TargetState::Draining);
        t.targets = targets;
        t.tags = tags.value.get(&t.arn).cloned().unwrap_or_default();
        tgs[i].push(t);
    }
    for (i, lb) in found {
        lbs[i].push(lb);
    }
    Ok(())
}

/// The groups of every stack's VPC, in one request, and, one round later in another, the
/// groups named by id that none of those VPCs holds. Each stack keeps those it speaks
/// about ([`Scope::wants_group`]).
async fn read_security_groups(
    clients: &Clients,
    meter: &Meter,
    scopes: &Scopes,
) -> Result<Vec<ObservedSg>> {
    let vpcs = scopes.union(|s| std::iter::once(&s.vpc));
    let everyone = Ec2::new(&clients.ec2, &meter.serving(scopes.stacks_where(|_| true)));
    let in_vpcs = everyone
        .security_groups_in_vpcs(&vpcs, Round::START)
        .await?;
    let missing: Vec<String> = scopes
        .union(|s| &s.group_ids)
        .into_iter()
        .filter(|id| !in_vpcs.value.iter().any(|g| &g.id == id))
        .collect();
    let asking = scopes.stacks_where(|s| missing.iter().any(|id| s.group_ids.contains(id)));
    let elsewhere = Ec2::new(&clients.ec2, &meter.serving(asking))
        .security_groups_by_id(&missing, in_vpcs.round)
        .await?;
    let mut groups = in_vpcs.value;
    groups.extend(elsewhere.value);
    groups.sort_by(|a, b| a.id.cmp(&b.id));
    groups.dedup_by(|a, b| a.id == b.id);
    // Apply locks come and go with runs; they are not part of any stack's state.
    groups.retain(|g| !g.tags.contains_key(crate::names::LOCK_TAG));
    Ok(groups)
}

/// The instances the stacks' target groups list, asked once for every stack in round 1
/// (by filter: one that does not exist is left out, for the plan to report).
async fn read_instances(
    clients: &Clients,
    meter: &Meter,
    scopes: &Scopes,
) -> Result<Vec<ObservedInstance>> {
    let targets = scopes.union(|s| &s.targets);
    let addresses = scopes.union(|s| &s.addresses);
    let host_names = scopes.union(|s| &s.host_names);
    let (by_id, by_address, by_name) = (
        Ec2::new(
            &clients.ec2,
            &meter.serving(scopes.stacks_where(|s| !s.targets.is_empty())),
        ),
        Ec2::new(
            &clients.ec2,
            &meter.serving(scopes.stacks_where(|s| !s.addresses.is_empty())),
        ),
        Ec2::new(
            &clients.ec2,
            &meter.serving(scopes.stacks_where(|s| !s.host_names.is_empty())),
        ),
    );
    // The instances behind a record's own values: by public address or public DNS name.
    let (mut found, a, n) = tokio::try_join!(
        by_id.instances_by_id(&targets, Round::START),
        by_address.instances_by_filter("ip-address", &addresses, Round::START),
        by_name.instances_by_filter("dns-name", &host_names, Round::START),
    )?;
    found.value.extend(a.value);
    found.value.extend(n.value);
    found.value.sort_by(|x, y| x.id.cmp(&y.id));
    found.value.dedup_by(|x, y| x.id == y.id);
    Ok(found.value)
}

/// Per stack: the zone named under `dns` with the records the manifest speaks about. Each
/// zone is looked up and listed once, for every stack that names it.
async fn read_zones(
    clients: &Clients,
    meter: &Meter,
    scopes: &Scopes,
) -> Result<Vec<Option<ObservedZone>>> {
    let names = scopes.union(|s| s.zone.iter());
    let zones = try_join_all(names.iter().map(|name| {
        let wanted_by: Vec<&Scope> = scopes
            .0
            .iter()
            .filter(|s| s.zone.as_ref() == Some(name))
            .collect();
        let route53 = Route53::new(
            &clients.route53,
            &meter.serving(wanted_by.iter().map(|s| s.stack.clone())),
        );
        async move { read_zone(&route53, name, &wanted_by).await }
    }))
    .await?;
    Ok(scopes
        .0
        .iter()
        .map(|s| {
            let i = names.iter().position(|n| Some(n) == s.zone.as_ref())?;
            let mut zone = zones.get(i)?.clone()?;
            let (kept, others): (Vec<_>, Vec<_>) = std::mem::take(&mut zone.records)
                .into_iter()
                .partition(|r| s.keeps_record(&r.name));
            let values: BTreeSet<&String> = kept
                .iter()
                .filter(|r| is_address(r))
                .flat_map(|r| &r.values)
                .collect();
            zone.neighbours = others
                .into_iter()
                .filter(|r| is_address(r) && r.values.iter().any(|v| values.contains(v)))
                .collect();
            zone.records = kept;
            Some(zone)
        })
        .collect())
}

/// An A, AAAA or CNAME record with values (not an alias).
fn is_address(r: &crate::model::ObservedRecord) -> bool {
    r.alias.is_none() && r.kind.leads_to_site()
}

/// The zone `name` with every record: those any of `wanted_by` speaks about, and the
/// address records among the rest (the stacks' neighbours are picked from them).
async fn read_zone(
    route53: &Route53,
    name: &str,
    wanted_by: &[&Scope],
) -> Result<Option<ObservedZone>> {
    let found = route53.zone_named(name, Round::START).await?;
    let Some(mut zone) = found.value else {
        return Ok(None);
    };
    let records = route53
        .records(
            &zone.id,
            |n| wanted_by.iter().any(|s| s.keeps_record(n)),
            is_address,
            found.round,
        )
        .await?;
    zone.records = records.value;
    Ok(Some(zone))
}

/// Per stack: the certificates it pins by ARN (from ACM or IAM, as the ARN says; a
/// missing one is left out), and, when it
/// asks for a certificate by domain, every ISSUED one. A listed certificate whose known
/// names do not settle a stack's question is described for its full list of names; one
/// whose domain already covers every domain the stack asks for is not, so when the listing
/// leaves out the alternative names (moto does) its `names` holds only its domain. The
/// listing is made once; each ARN is described at most once, for every stack that needs it.
async fn read_certificates(
    clients: &Clients,
    meter: &Meter,
    scopes: &Scopes,
) -> Result<Vec<Vec<ObservedCert>>> {
    let acm_for = |stacks: Vec<String>| Acm::new(&clients.acm, &meter.serving(stacks));
    let by_domain = scopes.stacks_where(|s| !s.cert_domains.is_empty());
    let listing = async {
        if by_domain.is_empty() {
            Ok(None)
        } else {
            let pending = scopes.0.iter().any(|s| !s.requested_domains.is_empty());
            acm_for(by_domain.clone())
                .issued(pending, Round::START)
                .await
                .map(Some)
        }
    };
    let pinned_arns = scopes.union(|s| &s.cert_arns);
    let pinned_calls = pinned_arns.iter().map(|arn| {
        let stacks = scopes.stacks_where(|s| s.cert_arns.contains(arn));
        let acm = acm_for(stacks.clone());
        let iam = Iam::new(&clients.iam, &meter.serving(stacks));
        async move {
            match net::cert_store(arn) {
                Some(CertStore::Iam) => iam.certificate(arn, Round::START).await,
                _ => acm.certificate(arn, Round::START).await,
            }
        }
    });
    let (listed, pinned) = tokio::try_join!(listing, try_join_all(pinned_calls))?;
    // Every certificate described, by the ARN it was asked for.
    let mut described: BTreeMap<String, ObservedCert> = pinned_arns
        .iter()
        .zip(pinned)
        .filter_map(|(arn, a)| Some((arn.clone(), a.value?)))
        .collect();
    let (listed, listed_round) = match listed {
        Some(l) => (l.value, l.round),
        None => (Vec::new(), Round::START),
    };
    let unsettled: Vec<(&str, Vec<String>)> = listed
        .iter()
        .filter(|l| !described.contains_key(&l.cert.arn))
        .map(|l| {
            let stacks = scopes.stacks_where(|s| needs_description(s, l));
            (l.cert.arn.as_str(), stacks)
        })
        .filter(|(_, stacks)| !stacks.is_empty())
        .collect();
    let more = try_join_all(unsettled.into_iter().map(|(arn, stacks)| {
        let acm = acm_for(stacks);
        async move {
            let answer = acm.certificate(arn, listed_round).await?;
            Ok((arn.to_owned(), answer.value))
        }
    }))
    .await?;
    described.extend(more.into_iter().filter_map(|(arn, c)| Some((arn, c?))));

    Ok(scopes
        .0
        .iter()
        .map(|s| {
            let mut certs: BTreeMap<String, ObservedCert> = s
                .cert_arns
                .iter()
                .filter_map(|arn| described.get(arn))
                .map(|c| (c.arn.clone(), c.clone()))
                .collect();
            if !s.cert_domains.is_empty() {
                for l in &listed {
                    if certs.contains_key(&l.cert.arn) {
                        continue;
                    }
                    let cert = if settles(s, l) {
                        Some(&l.cert)
                    } else {
                        described.get(&l.cert.arn)
                    };
                    if let Some(c) = cert {
                        certs.insert(c.arn.clone(), c.clone());
                    }
                }
            }
            certs.into_values().collect()
        })
        .collect())
}

/// Do the names the listing gave settle every domain this stack asks for? A pending
/// certificate for a domain the stack requests never does: its validation records are only
/// in its description.
fn settles(s: &Scope, l: &ListedCert) -> bool {
    let awaits_validation = l.cert.status != crate::model::CertStatus::Issued
        && s.requested_domains.contains(&l.cert.domain);
    (l.names_complete || s.covers_every_domain(&l.cert.names)) && !awaits_validation
}

/// Must this stack see the full names of a listed certificate it does not pin?
fn needs_description(s: &Scope, l: &ListedCert) -> bool {
    !s.cert_domains.is_empty() && !s.cert_arns.contains(&l.cert.arn) && !settles(s, l)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Compiles only if the reads can be spawned on a multi-threaded runtime.
    #[allow(dead_code)]
    fn observe_is_send(clients: &Clients, meter: &Meter, one: &Desired, many: &[Desired]) {
        fn send<T: Send>(_: T) {}
        send(observe(clients, meter, one));
        send(observe_many(clients, meter, many));
    }
}
