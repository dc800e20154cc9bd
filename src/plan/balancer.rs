//! The load-balancer part of the diff: the load balancer (kept, changed in place, or
//! replaced under the alternate name with DNS moved first) and its listeners.

use crate::manifest::DEFAULT_SSL_POLICY;
use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use super::diff::{attr, resource, Differ};
use super::id::{LbPart, ListenerPart};
use super::{Action, CertRef, Change, LbRef, NodeId, Op, Serve, SgRef, Tagged, Tags, TgRef};
use crate::model::{
    owned_by, Desired, Headers, LbAttr, LbAttributes, ListenerTo, ObservedLb, ObservedListener,
    ResponseHeader,
};
use crate::names;

/// Said of an HTTPS listener whose TLS policy the manifest leaves to the default.
fn defaulted_policy(defaulted: bool) -> String {
    if defaulted {
        format!("; ssl_policy not set: {DEFAULT_SSL_POLICY} (TLS 1.3 and 1.2), the default, rather than the API's own ELBSecurityPolicy-2016-08")
    } else {
        String::new()
    }
}

impl<'a> Differ<'a> {
    /// The tags the stack's load balancer carries: the manifest's, and the ports whose
    /// response headers the stack manages ([`names::HEADERS_TAG`]) when there are any, or
    /// when `live` lists some (the list then shrinks, down to empty, never to absent: the
    /// tag is how a later run knows to look).
    fn lb_tags(&self, live: Option<&Tags>) -> Tags {
        let mut tags = self.d.tags.clone();
        let ports = self
            .d
            .load_balancer
            .as_ref()
            .map(|lb| lb.header_ports())
            .unwrap_or_default();
        if !ports.is_empty() || live.is_some_and(|t| t.contains_key(names::HEADERS_TAG)) {
            tags.insert(
                names::HEADERS_TAG.to_owned(),
                names::header_ports_value(ports),
            );
        }
        tags
    }

    /// Decides the load balancer; returns the one that will serve and, when it exists
    /// already, its observed state.
    pub(super) fn load_balancer(&mut self) -> Option<(LbRef, Option<&'a ObservedLb>)> {
        let (d, o): (&'a Desired, &'a crate::model::Observed) = (self.d, self.o);
        let stack = &d.stack;
        let base = d.lb_name();
        let alt = names::alternate(&base);
        // The stack's: named after it, or taken over (by `adopt` now, or by an earlier
        // run: then it carries the stack's tag under its own name).
        let adopting = d.load_balancer.as_ref().and_then(|l| l.adopt.as_deref());
        let named: Vec<&'a ObservedLb> = o
            .load_balancers
            .iter()
            .filter(|l| {
                l.name == base
                    || l.name == alt
                    || Some(l.arn.as_str()) == adopting
                    || owned_by(&l.tags, stack)
            })
            .collect();
        let Some(dlb) = &d.load_balancer else {
            // The records lead elsewhere now: the stack's load balancers go once the answers
            // that lead to them have expired (their listeners go with them). One the stack
            // does not own is not its to delete, and nothing here needs its name.
            for l in named.iter().filter(|l| owned_by(&l.tags, stack)) {
                self.delete_lb(
                    l,
                    "the manifest declares no load balancer; deleted once DNS has moved away from it and the answers that lead to it have expired",
                );
            }
            return None;
        };
        if let Some(arn) = adopting {
            match named.iter().find(|l| l.arn == arn) {
                // Adopted by an earlier run, then replaced: the stack's own serves.
                None if named.iter().any(|l| owned_by(&l.tags, stack)) => {}
                None => {
                    self.block(
                        "load_balancer.adopt",
                        format!("load balancer {arn} does not exist"),
                        "check the ARN and the region (aws elbv2 describe-load-balancers), or remove `adopt` to have the stack create its own",
                    );
                    return None;
                }
                Some(l) if l.vpc != d.vpc => {
                    self.block(
                        "load_balancer.adopt",
                        format!("load balancer {} is in {}, not in the manifest's vpc {}", l.name, l.vpc, d.vpc),
                        "set `vpc` to the load balancer's VPC (its target groups and groups live there), or adopt another",
                    );
                    return None;
                }
                Some(l) => {
                    let node = (
                        NodeId::Balancer(LbPart::Adopt),
                        "load_balancer",
                        l.name.as_str(),
                    );
                    let on = Tagged::LoadBalancer { arn: l.arn.clone() };
                    let want = self.lb_tags(Some(&l.tags));
                    if !self.adopt_with("load_balancer.adopt", node, &l.tags, &want, on) {
                        return None;
                    }
                }
            }
        }
        let ours = |l: &ObservedLb| owned_by(&l.tags, stack) || Some(l.arn.as_str()) == adopting;
        if let Some(l) = named.iter().find(|l| !ours(l)) {
            self.conflict("load balancer", &l.name, &l.arn);
            return None;
        }
        let keeper = named
            .iter()
            .filter(|l| l.scheme == dlb.scheme)
            .max_by_key(|l| {
                (
                    l.state == crate::model::LbState::Active,
                    l.listeners.len(),
                    l.name == dlb.name,
                )
            })
            .copied();
        let groups: Vec<SgRef> = dlb.security_groups.iter().map(|g| self.sg_ref(g)).collect();
        let chosen = match keeper {
            Some(l) => {
                let lb = LbRef::Arn(l.arn.clone());
                let subnets: BTreeSet<String> = dlb.subnets.clone();
                if l.subnets != subnets {
                    self.change(
                        NodeId::Balancer(LbPart::Subnets),
                        Change {
                            resource: resource("load_balancer", &l.name, true),
                            action: Action::Update,
                            reason: "subnets differ from the manifest; changed in place".into(),
                            attrs: vec![attr(
                                "subnets",
                                Some(json!(l.subnets)),
                                Some(json!(subnets)),
                            )],
                            op: Op::SetSubnets {
                                lb: lb.clone(),
                                subnets: subnets.into_iter().collect(),
                            },
                        },
                    );
                }
                let want: BTreeSet<String> = groups
                    .iter()
                    .map(|g| match g {
                        SgRef::Id(id) => id.clone(),
                        SgRef::New(k) => format!("(new group {k})"),
                    })
                    .collect();
                if l.security_groups != want {
                    self.change(
                        NodeId::Balancer(LbPart::SecurityGroups),
                        Change {
                            resource: resource("load_balancer", &l.name, true),
                            action: Action::Update,
                            reason: "security groups differ from the manifest; changed in place"
                                .into(),
                            attrs: vec![attr(
                                "security_groups",
                                Some(json!(l.security_groups)),
                                Some(json!(want)),
                            )],
                            op: Op::SetSecurityGroups {
                                lb: lb.clone(),
                                groups: groups.clone(),
                            },
                        },
                    );
                }
                let want = self.lb_tags(Some(&l.tags));
                self.retag_to(
                    NodeId::Balancer(LbPart::Tags),
                    ("load_balancer", &l.name),
                    &l.tags,
                    &want,
                    Tagged::LoadBalancer { arn: l.arn.clone() },
                );
                self.out.lb_not_active = l.state != crate::model::LbState::Active;
                for other in named.iter().filter(|o| o.arn != l.arn) {
                    self.delete_lb(other, &format!("a leftover copy of {}", l.name));
                }
                self.lb_attributes(&lb, &l.name, l.attributes.as_ref());
                (lb, Some(l))
            }
            None => {
                let old = named.first().copied();
                // The replacement takes the other of the stack's two names (the stack's
                // base name when it replaces one taken over under a name of its own).
                let name = match old {
                    Some(o) if o.name == base || o.name == alt => names::alternate(&o.name),
                    _ => dlb.name.clone(),
                };
                let (action, reason, mut attrs) = match old {
                    Some(o) => (
                        Action::Replace,
                        format!("the scheme cannot change in place; {name} replaces {} and DNS moves before the old one goes", o.name),
                        vec![attr("scheme", Some(json!(o.scheme)), Some(json!(dlb.scheme)))],
                    ),
                    None => (
                        Action::Create,
                        "declared in the manifest and not found".to_owned(),
                        vec![attr("scheme", None, Some(json!(dlb.scheme)))],
                    ),
                };
                attrs.insert(
                    0,
                    attr("name", old.map(|o| json!(o.name)), Some(json!(name))),
                );
                attrs.push(attr("subnets", None, Some(json!(dlb.subnets))));
                self.change(
                    NodeId::Balancer(LbPart::Create),
                    Change {
                        resource: resource("load_balancer", &name, true),
                        action,
                        reason,
                        attrs,
                        op: Op::CreateLoadBalancer {
                            name: name.clone(),
                            scheme: dlb.scheme.clone(),
                            subnets: dlb.subnets.iter().cloned().collect(),
                            security_groups: groups,
                            tags: self.lb_tags(None),
                        },
                    },
                );
                for o in &named {
                    self.delete_lb(o, &format!("replaced by {name}"));
                }
                let lb = LbRef::New(name.clone());
                self.lb_attributes(&lb, &name, None);
                (lb, None)
            }
        };
        self.out.lb = Some(chosen.0.clone());
        Some(chosen)
    }

    /// The load balancer's attributes set to the manifest's: on the one kept, those that
    /// differ (one not read is left as it is); on a new one, those not at AWS's default.
    fn lb_attributes(&mut self, lb: &LbRef, name: &str, live: Option<&LbAttributes>) {
        let Some(dlb) = &self.d.load_balancer else {
            return;
        };
        let defaults = LbAttr::from_aws([]);
        let before = match (lb, live) {
            (LbRef::New(_), _) => &defaults,
            (LbRef::Arn(_), Some(live)) => live,
            (LbRef::Arn(_), None) => return,
        };
        let set: BTreeMap<LbAttr, String> = dlb
            .attributes
            .iter()
            .filter(|(a, v)| before.get(a) != Some(v))
            .map(|(a, v)| (*a, v.clone()))
            .collect();
        if set.is_empty() {
            return;
        }
        let attrs = set
            .iter()
            .map(|(a, v)| {
                attr(
                    &format!("attributes.{}", a.field()),
                    before.get(a).map(|b| json!(b)),
                    Some(json!(v)),
                )
            })
            .collect();
        let reason = match lb {
            LbRef::New(_) => "the manifest's attributes where they differ from AWS's defaults (drop_invalid_header_fields is on unless the manifest turns it off)",
            LbRef::Arn(_) => "attributes differ from the manifest (an attribute it leaves out is compared with its default); set in place",
        };
        self.change(
            NodeId::Balancer(LbPart::Attributes),
            Change {
                resource: resource("load_balancer", name, true),
                action: Action::Update,
                reason: reason.into(),
                attrs,
                op: Op::SetLbAttributes {
                    lb: lb.clone(),
                    attributes: set,
                },
            },
        );
    }

    pub(super) fn delete_lb(&mut self, l: &ObservedLb, reason: &str) {
        let id = l.arn.rsplit('/').next().unwrap_or(&l.name).to_owned();
        let protected = l
            .attributes
            .as_ref()
            .and_then(|a| a.get(&LbAttr::DeletionProtection))
            .is_some_and(|v| v == "true");
        if protected {
            self.change(
                NodeId::BalancerUnprotect { id: id.clone() },
                Change {
                    resource: resource("load_balancer", &l.name, true),
                    action: Action::Update,
                    reason: "deletion protection is on: turned off right before the load balancer is deleted".into(),
                    attrs: vec![attr(
                        "attributes.deletion_protection",
                        Some(json!("true")),
                        Some(json!("false")),
                    )],
                    op: Op::Unprotect {
                        arn: l.arn.clone(),
                        name: l.name.clone(),
                    },
                },
            );
        }
        self.change(
            NodeId::BalancerDelete { id },
            Change {
                resource: resource("load_balancer", &l.name, true),
                action: Action::Delete,
                reason: reason.to_owned(),
                attrs: vec![attr("arn", Some(json!(l.arn)), None)],
                op: Op::DeleteLoadBalancer {
                    arn: l.arn.clone(),
                    name: l.name.clone(),
                },
            },
        );
    }

    pub(super) fn listeners(&mut self, lb: Option<&(LbRef, Option<&'a ObservedLb>)>) {
        let Some((lb_ref, live)) = lb else { return };
        let live_listeners = live.map(|l| l.listeners.as_slice()).unwrap_or_default();
        let Some(dlb) = &self.d.load_balancer else {
            return;
        };
        // What each listener is to answer with: its target group resolved, or its redirect.
        let serves: BTreeMap<u16, Serve> = dlb
            .listeners
            .iter()
            .filter_map(|(port, dl)| {
                let serve = match &dl.to {
                    ListenerTo::Forward(key) => Serve::Forward(self.tg_refs.get(key)?.clone()),
                    ListenerTo::Redirect(r) => Serve::Redirect(r.clone()),
                };
                Some((*port, serve))
            })
            .collect();
        let answers_right = |l: &ObservedListener, serve: &Serve| match serve {
            Serve::Forward(TgRef::Arn(arn)) => l.forward == [arn.clone()] && l.redirect.is_none(),
            Serve::Forward(TgRef::New { .. }) => false,
            Serve::Redirect(r) => l.forward.is_empty() && l.redirect.as_ref() == Some(r),
        };
        // A listener that already answers as the manifest asks and is left as it is: where a
        // group for a listener that forwards nothing yet (one that redirects) is attached on
        // standby, to be health-checked before traffic moves to it.
        let steady: Vec<&ObservedListener> = live_listeners
            .iter()
            .filter(|l| serves.get(&l.port).is_some_and(|s| answers_right(l, s)))
            .filter(|l| matches!(serves.get(&l.port), Some(Serve::Forward(_))))
            .collect();
        // Port → the groups this plan attaches on standby there for another listener.
        let mut hosted: BTreeMap<u16, Vec<String>> = BTreeMap::new();
        for (port, dl) in &dlb.listeners {
            let Some(serve) = serves.get(port).cloned() else {
                continue;
            };
            let cert: Option<CertRef> = match &dl.certificate {
                Some(k) => match self.cert_refs.get(k) {
                    Some(c) => Some(c.clone()),
                    None => continue, // already a blocker
                },
                None => None,
            };
            // As the plan shows it: the ARN, or the certificate being issued.
            let cert_shown = cert.as_ref().map(|c| match c {
                CertRef::Arn(a) | CertRef::Issuing { arn: Some(a), .. } => json!(a),
                CertRef::Issuing { key, arn: None } => {
                    json!(format!("(certificate \"{key}\" requested by this run)"))
                }
            });
            let label = |serve: &Serve| match serve {
                Serve::Forward(TgRef::Arn(arn)) => (
                    "forward",
                    self.o
                        .tg_by_arn(arn)
                        .map_or(arn.clone(), |t| t.name.clone()),
                ),
                Serve::Forward(TgRef::New { name, .. }) => ("forward", name.clone()),
                Serve::Redirect(r) => ("redirect", r.to_string()),
            };
            let (what, shown) = label(&serve);
            let name = format!("{port}/{}", dl.protocol);
            let policy = dl.ssl_policy.as_ref().map(|p| p.name.clone());
            let defaulted = dl.ssl_policy.as_ref().is_some_and(|p| p.defaulted);
            // The headers the stack manages here: the manifest's, or none at all on a
            // listener whose headers it managed before (the tag lists it).
            let managed: Option<Headers> = dl.headers.clone().or_else(|| {
                live.and_then(|lb| lb.tags.get(names::HEADERS_TAG))
                    .is_some_and(|v| names::header_ports(v).contains(port))
                    .then(Headers::new)
            });
            let want = managed.clone().unwrap_or_default();
            let header_attrs = |live: Option<&Headers>| {
                ResponseHeader::ALL
                    .into_iter()
                    .filter_map(|h| {
                        let before = live.and_then(|l| l.get(&h));
                        let after = want.get(&h);
                        (before != after).then(|| {
                            attr(
                                &format!("headers.{}", h.field()),
                                before.map(|v| json!(v)),
                                after.map(|v| json!(v)),
                            )
                        })
                    })
                    .collect::<Vec<_>>()
            };
            match live_listeners.iter().find(|l| l.port == *port) {
                None => {
                    let mut attrs: Vec<_> = vec![
                        attr("protocol", None, Some(json!(dl.protocol))),
                        attr(what, None, Some(json!(shown))),
                        attr("certificate", None, cert_shown.clone()),
                        attr("ssl_policy", None, policy.as_ref().map(|p| json!(p))),
                    ]
                    .into_iter()
                    .filter(|a| a.after.is_some())
                    .collect();
                    attrs.extend(header_attrs(None));
                    self.change(
                        NodeId::Listener {
                            port: *port,
                            part: ListenerPart::Create,
                        },
                        Change {
                            resource: resource("listener", &name, true),
                            action: Action::Create,
                            reason: format!(
                                "declared in the manifest and not found{}",
                                defaulted_policy(defaulted)
                            ),
                            attrs,
                            op: Op::CreateListener {
                                lb: lb_ref.clone(),
                                port: *port,
                                protocol: dl.protocol.clone(),
                                certificate: cert,
                                ssl_policy: policy,
                                serve,
                                headers: want.clone(),
                            },
                        },
                    )
                }
                Some(l) => {
                    let mut attrs = Vec::new();
                    if l.protocol != dl.protocol {
                        attrs.push(attr(
                            "protocol",
                            Some(json!(l.protocol)),
                            Some(json!(dl.protocol)),
                        ));
                    }
                    let live_cert = l.certificates.first().cloned();
                    let same_cert = match &cert {
                        Some(CertRef::Arn(a)) => live_cert.as_ref() == Some(a),
                        Some(CertRef::Issuing { .. }) => false,
                        None => live_cert.is_none(),
                    };
                    if !same_cert {
                        attrs.push(attr(
                            "certificate",
                            live_cert.map(|c| json!(c)),
                            cert_shown.clone(),
                        ));
                    }
                    let mut policy_changes = false;
                    if let Some(p) = &policy {
                        if l.ssl_policy.as_ref() != Some(p) {
                            policy_changes = true;
                            attrs.push(attr(
                                "ssl_policy",
                                l.ssl_policy.as_ref().map(|c| json!(c)),
                                Some(json!(p)),
                            ));
                        }
                    }
                    // Compared where the stack manages them (and they were read: one the
                    // read missed, gone meanwhile, is only set, which is safe to repeat).
                    let live_headers = l.headers.as_ref();
                    if managed.is_some() && (live_headers.is_some() || !want.is_empty()) {
                        let changes = header_attrs(live_headers);
                        if !changes.is_empty() {
                            let set = ResponseHeader::ALL
                                .into_iter()
                                .filter(|h| live_headers.and_then(|l| l.get(h)) != want.get(h))
                                .map(|h| {
                                    let v = want.get(&h).map_or(h.unset(), String::as_str);
                                    (h, v.to_owned())
                                })
                                .collect();
                            self.change(
                                NodeId::Listener {
                                    port: *port,
                                    part: ListenerPart::Headers,
                                },
                                Change {
                                    resource: resource("listener", &name, true),
                                    action: Action::Update,
                                    reason: "response headers differ from the manifest (listener attributes); a header the manifest no longer sets is removed".into(),
                                    attrs: changes,
                                    op: Op::SetListenerHeaders {
                                        arn: l.arn.clone(),
                                        port: *port,
                                        headers: set,
                                    },
                                },
                            );
                        }
                    }
                    let right = answers_right(l, &serve);
                    if !right {
                        let before = match &l.redirect {
                            Some(r) => format!("redirect {r}"),
                            None => l
                                .forward
                                .iter()
                                .map(|a| self.o.tg_by_arn(a).map_or(a.clone(), |t| t.name.clone()))
                                .collect::<Vec<_>>()
                                .join(", "),
                        };
                        let after = match what {
                            "redirect" => format!("redirect {shown}"),
                            _ => shown.clone(),
                        };
                        attrs.push(attr(what, Some(json!(before)), Some(json!(after))));
                    }
                    // A group no listener of this load balancer uses is attached with
                    // weight zero first: AWS health-checks only groups in use (their targets
                    // are `unused` until then, `initial` for a while after), so it is
                    // verified healthy before traffic moves. Whether it is in use comes from
                    // the listeners read, not from the group's own list of load balancers
                    // (moto keeps a load balancer there after its listener moved away).
                    let moves_to = match (&serve, right) {
                        (Serve::Forward(tg), false) => Some(tg.clone()),
                        _ => None,
                    };
                    if let Some(tg) = &moves_to {
                        let attached = match tg {
                            TgRef::Arn(arn) => live.is_some_and(|lb| {
                                lb.listeners
                                    .iter()
                                    .any(|x| x.forward.contains(arn) || x.standby.contains(arn))
                            }),
                            TgRef::New { .. } => false,
                        };
                        // On this listener when it forwards already; on a steady one when
                        // it does not (a redirect: a forward to a group on standby alone
                        // would answer 503 to everyone).
                        let host = if l.forward.is_empty() {
                            steady.iter().find(|x| x.port != *port).copied()
                        } else {
                            Some(l)
                        };
                        match host {
                            _ if attached => {}
                            Some(h) => {
                                let (_, group) = label(&Serve::Forward(tg.clone()));
                                if h.port != *port {
                                    hosted.entry(h.port).or_default().push(group.clone());
                                }
                                self.change(
                                    NodeId::Listener {
                                        port: h.port,
                                        part: ListenerPart::Attach,
                                    },
                                    Change {
                                        resource: resource("listener", &format!("{}/{}", h.port, h.protocol), true),
                                        action: Action::Update,
                                        reason: if h.port == *port {
                                            "attach the new group with weight 0, so that it is health-checked before it takes traffic".into()
                                        } else {
                                            format!("attach the group for listener {port} with weight 0 here, so that it is health-checked before {port} forwards to it (detached once it does)")
                                        },
                                        attrs: vec![attr("standby", None, Some(json!(group)))],
                                        op: Op::AttachStandby {
                                            arn: h.arn.clone(),
                                            port: h.port,
                                            protocol: h.protocol.clone(),
                                            certificate: h.certificates.first().cloned(),
                                            serving: h.forward.clone(),
                                            tg: tg.clone(),
                                        },
                                    },
                                );
                            }
                            None => self.block(
                                format!("listener {port}"),
                                format!("listener {port} is to forward to {shown} instead of redirecting, and no listener of the load balancer that stays as it is forwards anywhere: there is nowhere to health-check the group before traffic moves to it"),
                                "first apply a manifest in which another listener (443) forwards as it does now, then this one",
                            ),
                        }
                    }
                    if !attrs.is_empty() {
                        self.change(
                            NodeId::Listener {
                                port: *port,
                                part: ListenerPart::Update,
                            },
                            Change {
                                resource: resource("listener", &name, true),
                                action: Action::Update,
                                reason: format!(
                                    "differs from the manifest; changed in place{}",
                                    defaulted_policy(policy_changes && defaulted)
                                ),
                                attrs,
                                op: Op::ModifyListener {
                                    arn: l.arn.clone(),
                                    port: *port,
                                    protocol: dl.protocol.clone(),
                                    certificate: cert,
                                    ssl_policy: policy,
                                    serve,
                                    moves_traffic: moves_to.is_some(),
                                },
                            },
                        );
                    }
                }
            }
        }
        // A steady listener keeps nothing on standby once the plan is done: what this plan
        // attached to it for another listener, and what an earlier run left there, is
        // detached after everything is built, verified and moved.
        for l in &steady {
            let mut on_standby: Vec<String> = l
                .standby
                .iter()
                .map(|a| self.o.tg_by_arn(a).map_or(a.clone(), |t| t.name.clone()))
                .collect();
            on_standby.extend(hosted.get(&l.port).into_iter().flatten().cloned());
            if on_standby.is_empty() {
                continue;
            }
            if hosted.get(&l.port).is_some_and(|h| h.len() > 1) {
                self.block(
                    format!("listener {}", l.port),
                    format!(
                        "two groups would wait on standby on listener {} at once",
                        l.port
                    ),
                    "move one listener at a time: apply a manifest with one of the changes first",
                );
                continue;
            }
            self.change(
                NodeId::Listener {
                    port: l.port,
                    part: ListenerPart::Detach,
                },
                Change {
                    resource: resource("listener", &format!("{}/{}", l.port, l.protocol), true),
                    action: Action::Update,
                    reason: "groups on standby here are health-checked elsewhere now, or by nobody: detached".into(),
                    attrs: vec![attr("standby", Some(json!(on_standby.join(", "))), None)],
                    op: Op::DetachStandby {
                        arn: l.arn.clone(),
                        port: l.port,
                        protocol: l.protocol.clone(),
                        certificate: l.certificates.first().cloned(),
                        serving: l.forward.clone(),
                    },
                },
            );
        }
        for l in live_listeners {
            if !dlb.listeners.contains_key(&l.port) {
                self.change(
                    NodeId::Listener {
                        port: l.port,
                        part: ListenerPart::Delete,
                    },
                    Change {
                        resource: resource("listener", &format!("{}/{}", l.port, l.protocol), true),
                        action: Action::Delete,
                        reason: "no longer in the manifest".into(),
                        attrs: vec![attr("port", Some(json!(l.port)), None)],
                        op: Op::DeleteListener {
                            arn: l.arn.clone(),
                            port: l.port,
                        },
                    },
                );
            }
        }
    }
}
