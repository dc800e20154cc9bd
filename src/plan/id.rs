//! Typed node ids. Every node of a plan is named by a [`NodeId`]: which resource, by its
//! manifest key (or AWS name for what the manifest no longer declares), and which part of
//! it the node changes or waits for. Ordering rules and the executor match on these; the
//! text form (`tg.app.create`, `gate.dns.www.example.com.old-ttl`) exists only for people
//! and for the JSON documents, and reads back to the same id.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::model::RecordKind;

/// A part of a security group the stack creates or keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GroupPart {
    /// A group made by hand, taken over: tagged with the stack before anything else.
    Adopt,
    Create,
    Tags,
    RulesAdd,
    RulesDescribe,
    RulesRemove,
}

/// A part of a target group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TgPart {
    Adopt,
    Create,
    Tags,
    /// Its health check set to the manifest's (resting) values, in place.
    Health,
    /// Its health check set to the faster transition values before the plan waits on it.
    HealthTransition,
    /// Its resting health check set again once the move is over.
    HealthRest,
    TargetsAdd,
    TargetsRemove,
}

/// A part of the serving load balancer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LbPart {
    Adopt,
    Create,
    Tags,
    Subnets,
    SecurityGroups,
    /// Its attributes (deletion protection, idle timeout, access logs...).
    Attributes,
}

/// A change to a listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ListenerPart {
    Create,
    /// A new target group attached with weight zero, before traffic moves to it.
    Attach,
    Update,
    /// Its response headers (listener attributes) set.
    Headers,
    /// Groups on standby detached once the plan no longer needs them health-checked there.
    Detach,
    Delete,
}

/// A certificate the stack requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CertPart {
    Request,
    /// Its DNS validation records written into the zone.
    Validation,
}

/// A change to a managed DNS record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RecordPart {
    Create,
    LowerTtl,
    Switch,
    RestoreTtl,
    SetTtl,
    /// A step of a staged cutover, by the new value's share (text `weight-<percent>`).
    Weigh(u8),
}

/// A wait in a record's choreography.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DnsWait {
    /// Route53 in sync after the TTL was lowered.
    Lowered,
    /// The old TTL waited out.
    OldTtl,
    /// Route53 in sync after the switch.
    Switched,
    /// Answers given before the switch waited out.
    OldAnswers,
    /// The site asked through the load balancer by the record's name, before the switch.
    Probe,
    /// Route53 in sync after a cutover step (text `weighed-<percent>`).
    Weighed(u8),
    /// A cutover step held and watched (text `bake-<percent>`).
    Bake(u8),
}

/// `<head>.<prefix><percent>` → (head, percent), the percent written as `u8` writes it.
fn split_percent<'s>(s: &'s str, prefix: &str) -> Option<(&'s str, u8)> {
    let (head, n) = s.rsplit_once(&format!(".{prefix}"))?;
    let p: u8 = n.parse().ok()?;
    (!head.is_empty() && p.to_string() == n).then_some((head, p))
}

/// A gate's id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GateId {
    LbActive,
    Healthy {
        key: String,
    },
    /// A certificate the run waits for ACM to issue, by manifest key.
    CertIssued {
        key: String,
    },
    Rules {
        key: String,
    },
    Dns {
        record: String,
        wait: DnsWait,
    },
}

/// A node of the plan graph.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NodeId {
    /// A security group the manifest declares, by key.
    Group {
        key: String,
        part: GroupPart,
    },
    /// An owned security group the manifest no longer declares, by AWS name.
    GroupDelete {
        name: String,
    },
    /// A target group the manifest declares, by key.
    TargetGroup {
        key: String,
        part: TgPart,
    },
    /// An owned target group that goes, by AWS name.
    TargetGroupDelete {
        name: String,
    },
    /// The load balancer that serves once the plan has run.
    Balancer(LbPart),
    /// A load balancer that goes, by the last part of its ARN.
    BalancerDelete {
        id: String,
    },
    /// Its deletion protection turned off, just before it goes.
    BalancerUnprotect {
        id: String,
    },
    Listener {
        port: u16,
        part: ListenerPart,
    },
    /// A certificate the manifest has the stack request, by key.
    Certificate {
        key: String,
        part: CertPart,
    },
    /// A certificate the stack requested and no longer uses, by the last part of its ARN.
    CertificateDelete {
        id: String,
    },
    Record {
        name: String,
        kind: RecordKind,
        part: RecordPart,
    },
    /// The wait marker beside a record, cleared at the end.
    Marker {
        record: String,
    },
    Gate(GateId),
}

impl NodeId {
    pub fn group(key: &str, part: GroupPart) -> Self {
        NodeId::Group {
            key: key.to_owned(),
            part,
        }
    }

    pub fn tg(key: &str, part: TgPart) -> Self {
        NodeId::TargetGroup {
            key: key.to_owned(),
            part,
        }
    }

    pub fn healthy(key: &str) -> Self {
        NodeId::Gate(GateId::Healthy {
            key: key.to_owned(),
        })
    }

    pub fn dns_gate(record: &str, wait: DnsWait) -> Self {
        NodeId::Gate(GateId::Dns {
            record: record.to_owned(),
            wait,
        })
    }
}

const GROUP_PARTS: [(GroupPart, &str); 6] = [
    (GroupPart::Adopt, "adopt"),
    (GroupPart::Create, "create"),
    (GroupPart::Tags, "tags"),
    (GroupPart::RulesAdd, "rules.add"),
    (GroupPart::RulesDescribe, "rules.describe"),
    (GroupPart::RulesRemove, "rules.remove"),
];
const TG_PARTS: [(TgPart, &str); 8] = [
    (TgPart::Adopt, "adopt"),
    (TgPart::Create, "create"),
    (TgPart::Tags, "tags"),
    (TgPart::Health, "health"),
    (TgPart::HealthTransition, "health.transition"),
    (TgPart::HealthRest, "health.rest"),
    (TgPart::TargetsAdd, "targets.add"),
    (TgPart::TargetsRemove, "targets.remove"),
];
const LB_PARTS: [(LbPart, &str); 6] = [
    (LbPart::Adopt, "adopt"),
    (LbPart::Create, "create"),
    (LbPart::Tags, "tags"),
    (LbPart::Subnets, "subnets"),
    (LbPart::SecurityGroups, "security_groups"),
    (LbPart::Attributes, "attributes"),
];
const CERT_PARTS: [(CertPart, &str); 2] = [
    (CertPart::Request, "request"),
    (CertPart::Validation, "validation"),
];
const LISTENER_PARTS: [(ListenerPart, &str); 6] = [
    (ListenerPart::Create, "create"),
    (ListenerPart::Attach, "attach"),
    (ListenerPart::Update, "update"),
    (ListenerPart::Headers, "headers"),
    (ListenerPart::Detach, "detach"),
    (ListenerPart::Delete, "delete"),
];
const RECORD_PARTS: [(RecordPart, &str); 5] = [
    (RecordPart::Create, "create"),
    (RecordPart::LowerTtl, "lower-ttl"),
    (RecordPart::Switch, "switch"),
    (RecordPart::RestoreTtl, "restore-ttl"),
    (RecordPart::SetTtl, "set-ttl"),
];
const DNS_WAITS: [(DnsWait, &str); 5] = [
    (DnsWait::Lowered, "lowered"),
    (DnsWait::OldTtl, "old-ttl"),
    (DnsWait::Switched, "switched"),
    (DnsWait::OldAnswers, "old-answers"),
    (DnsWait::Probe, "probe"),
];

fn text<P: PartialEq + Copy>(table: &[(P, &'static str)], part: P) -> &'static str {
    table
        .iter()
        .find(|(p, _)| *p == part)
        .map_or("?", |(_, t)| t)
}

/// `head.<part>` → (head, part), for the part whose text ends `s`.
fn split<'s, P: Copy>(table: &[(P, &str)], s: &'s str) -> Option<(&'s str, P)> {
    table.iter().find_map(|(p, t)| {
        let head = s.strip_suffix(t)?.strip_suffix('.')?;
        (!head.is_empty()).then_some((head, *p))
    })
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeId::Group { key, part } => write!(f, "sg.{key}.{}", text(&GROUP_PARTS, *part)),
            NodeId::GroupDelete { name } => write!(f, "sg.{name}.delete"),
            NodeId::TargetGroup { key, part } => {
                write!(f, "tg.{key}.{}", text(&TG_PARTS, *part))
            }
            NodeId::TargetGroupDelete { name } => write!(f, "tg.{name}.delete"),
            NodeId::Balancer(part) => write!(f, "lb.{}", text(&LB_PARTS, *part)),
            NodeId::BalancerDelete { id } => write!(f, "lb.{id}.delete"),
            NodeId::BalancerUnprotect { id } => write!(f, "lb.{id}.unprotect"),
            NodeId::Listener { port, part } => {
                write!(f, "listener.{port}.{}", text(&LISTENER_PARTS, *part))
            }
            NodeId::Record {
                name,
                kind,
                part: RecordPart::Weigh(p),
            } => write!(f, "dns.{name}.{kind}.weight-{p}"),
            NodeId::Record { name, kind, part } => {
                write!(f, "dns.{name}.{kind}.{}", text(&RECORD_PARTS, *part))
            }
            NodeId::Marker { record } => write!(f, "dns.{record}.marker.clear"),
            NodeId::Gate(GateId::LbActive) => f.write_str("gate.lb.active"),
            NodeId::Gate(GateId::Healthy { key }) => write!(f, "gate.tg.{key}.healthy"),
            NodeId::Gate(GateId::Rules { key }) => write!(f, "gate.sg.{key}.rules"),
            NodeId::Gate(GateId::CertIssued { key }) => write!(f, "gate.cert.{key}.issued"),
            NodeId::Certificate { key, part } => {
                write!(f, "cert.{key}.{}", text(&CERT_PARTS, *part))
            }
            NodeId::CertificateDelete { id } => write!(f, "cert.{id}.delete"),
            NodeId::Gate(GateId::Dns { record, wait }) => match wait {
                DnsWait::Weighed(p) => write!(f, "gate.dns.{record}.weighed-{p}"),
                DnsWait::Bake(p) => write!(f, "gate.dns.{record}.bake-{p}"),
                _ => write!(f, "gate.dns.{record}.{}", text(&DNS_WAITS, *wait)),
            },
        }
    }
}

/// Text that names no node a plan can hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("\"{0}\" is not a node id reconcile writes")]
pub struct BadNodeId(pub String);

impl FromStr for NodeId {
    type Err = BadNodeId;

    fn from_str(s: &str) -> Result<Self, BadNodeId> {
        let bad = || BadNodeId(s.to_owned());
        let owned = |h: &str| h.to_owned();
        if let Some(rest) = s.strip_prefix("gate.") {
            if rest == "lb.active" {
                return Ok(NodeId::Gate(GateId::LbActive));
            }
            if let Some(key) = rest
                .strip_prefix("tg.")
                .and_then(|r| r.strip_suffix(".healthy"))
                .filter(|k| !k.is_empty())
            {
                return Ok(NodeId::healthy(key));
            }
            if let Some(key) = rest
                .strip_prefix("sg.")
                .and_then(|r| r.strip_suffix(".rules"))
                .filter(|k| !k.is_empty())
            {
                return Ok(NodeId::Gate(GateId::Rules { key: owned(key) }));
            }
            if let Some(key) = rest
                .strip_prefix("cert.")
                .and_then(|r| r.strip_suffix(".issued"))
                .filter(|k| !k.is_empty())
            {
                return Ok(NodeId::Gate(GateId::CertIssued { key: owned(key) }));
            }
            if let Some(r) = rest.strip_prefix("dns.") {
                if let Some((record, p)) = split_percent(r, "weighed-") {
                    return Ok(NodeId::dns_gate(record, DnsWait::Weighed(p)));
                }
                if let Some((record, p)) = split_percent(r, "bake-") {
                    return Ok(NodeId::dns_gate(record, DnsWait::Bake(p)));
                }
            }
            if let Some((record, wait)) =
                rest.strip_prefix("dns.").and_then(|r| split(&DNS_WAITS, r))
            {
                return Ok(NodeId::dns_gate(record, wait));
            }
            return Err(bad());
        }
        if let Some(rest) = s.strip_prefix("cert.") {
            if let Some(id) = rest.strip_suffix(".delete").filter(|n| !n.is_empty()) {
                return Ok(NodeId::CertificateDelete { id: owned(id) });
            }
            let (key, part) = split(&CERT_PARTS, rest).ok_or_else(bad)?;
            return Ok(NodeId::Certificate {
                key: owned(key),
                part,
            });
        }
        if let Some(rest) = s.strip_prefix("sg.") {
            if let Some(name) = rest.strip_suffix(".delete").filter(|n| !n.is_empty()) {
                return Ok(NodeId::GroupDelete { name: owned(name) });
            }
            let (key, part) = split(&GROUP_PARTS, rest).ok_or_else(bad)?;
            return Ok(NodeId::group(key, part));
        }
        if let Some(rest) = s.strip_prefix("tg.") {
            if let Some(name) = rest.strip_suffix(".delete").filter(|n| !n.is_empty()) {
                return Ok(NodeId::TargetGroupDelete { name: owned(name) });
            }
            let (key, part) = split(&TG_PARTS, rest).ok_or_else(bad)?;
            return Ok(NodeId::tg(key, part));
        }
        if let Some(rest) = s.strip_prefix("lb.") {
            if let Some(id) = rest.strip_suffix(".delete").filter(|n| !n.is_empty()) {
                return Ok(NodeId::BalancerDelete { id: owned(id) });
            }
            if let Some(id) = rest.strip_suffix(".unprotect").filter(|n| !n.is_empty()) {
                return Ok(NodeId::BalancerUnprotect { id: owned(id) });
            }
            let part = LB_PARTS
                .iter()
                .find(|(_, t)| *t == rest)
                .map(|(p, _)| *p)
                .ok_or_else(bad)?;
            return Ok(NodeId::Balancer(part));
        }
        if let Some(rest) = s.strip_prefix("listener.") {
            let (port, part) = split(&LISTENER_PARTS, rest).ok_or_else(bad)?;
            let port = port.parse().map_err(|_| bad())?;
            return Ok(NodeId::Listener { port, part });
        }
        if let Some(rest) = s.strip_prefix("dns.") {
            if let Some(record) = rest.strip_suffix(".marker.clear").filter(|n| !n.is_empty()) {
                return Ok(NodeId::Marker {
                    record: owned(record),
                });
            }
            let (head, part) = match split_percent(rest, "weight-") {
                Some((head, p)) => (head, RecordPart::Weigh(p)),
                None => split(&RECORD_PARTS, rest).ok_or_else(bad)?,
            };
            let (name, kind) = head.rsplit_once('.').ok_or_else(bad)?;
            if name.is_empty() || kind.is_empty() {
                return Err(bad());
            }
            return Ok(NodeId::Record {
                name: owned(name),
                kind: kind.into(),
                part,
            });
        }
        Err(bad())
    }
}

impl Serialize for NodeId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for NodeId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn name() -> impl Strategy<Value = String> {
        // Keys and names with dots and dashes, as DNS names and manifest keys may have.
        "[a-z0-9_-]{1,6}(\\.[a-z0-9_-]{1,6}){0,3}"
    }

    fn id() -> impl Strategy<Value = NodeId> {
        let pick = |n: usize| 0..n;
        prop_oneof![
            (name(), pick(GROUP_PARTS.len()))
                .prop_map(|(key, i)| NodeId::group(&key, GROUP_PARTS[i].0)),
            name().prop_map(|name| NodeId::GroupDelete { name }),
            (name(), pick(TG_PARTS.len())).prop_map(|(key, i)| NodeId::tg(&key, TG_PARTS[i].0)),
            name().prop_map(|name| NodeId::TargetGroupDelete { name }),
            pick(LB_PARTS.len()).prop_map(|i| NodeId::Balancer(LB_PARTS[i].0)),
            name().prop_map(|id| NodeId::BalancerDelete { id }),
            name().prop_map(|id| NodeId::BalancerUnprotect { id }),
            (any::<u16>(), pick(LISTENER_PARTS.len())).prop_map(|(port, i)| NodeId::Listener {
                port,
                part: LISTENER_PARTS[i].0
            }),
            (name(), "(A|AAAA|CNAME)", pick(5)).prop_map(|(name, kind, i)| NodeId::Record {
                name,
                kind: kind.into(),
                part: RECORD_PARTS[i].0
            }),
            name().prop_map(|record| NodeId::Marker { record }),
            Just(NodeId::Gate(GateId::LbActive)),
            name().prop_map(|k| NodeId::healthy(&k)),
            name().prop_map(|key| NodeId::Gate(GateId::Rules { key })),
            name().prop_map(|key| NodeId::Gate(GateId::CertIssued { key })),
            (name(), pick(CERT_PARTS.len())).prop_map(|(key, i)| NodeId::Certificate {
                key,
                part: CERT_PARTS[i].0
            }),
            name().prop_map(|id| NodeId::CertificateDelete { id }),
            (name(), pick(DNS_WAITS.len())).prop_map(|(r, i)| NodeId::dns_gate(&r, DNS_WAITS[i].0)),
            (name(), "(A|AAAA|CNAME)", any::<u8>()).prop_map(|(name, kind, p)| NodeId::Record {
                name,
                kind: kind.into(),
                part: RecordPart::Weigh(p)
            }),
            (name(), any::<u8>(), any::<bool>()).prop_map(|(r, p, bake)| NodeId::dns_gate(
                &r,
                if bake {
                    DnsWait::Bake(p)
                } else {
                    DnsWait::Weighed(p)
                }
            )),
        ]
    }

    proptest! {
        /// The text of an id reads back to the same id, and two ids never share a text.
        #[test]
        fn text_round_trips(a in id(), b in id()) {
            prop_assert_eq!(a.to_string().parse::<NodeId>(), Ok(a.clone()));
            prop_assert_eq!(a == b, a.to_string() == b.to_string());
        }
    }

    #[test]
    fn known_texts() {
        for s in [
            "sg.lb.create",
            "sg.web.rules.remove",
            "sg.www-example-old.delete",
            "tg.app.targets.add",
            "tg.app.health.transition",
            "tg.app.health.rest",
            "lb.security_groups",
            "lb.abc123.delete",
            "cert.0a1b2c3d-4e5f-6789-abcd-ef0123456789.delete",
            "listener.443.attach",
            "dns.www.example.com.CNAME.lower-ttl",
            "dns.www.example.com.marker.clear",
            "gate.dns.www.example.com.old-answers",
            "gate.tg.app.healthy",
        ] {
            assert_eq!(
                s.parse::<NodeId>().map(|id| id.to_string()),
                Ok(s.to_owned())
            );
        }
        for s in [
            "",
            "sg.",
            "sg..create",
            "lb.nope",
            "listener.x.create",
            "gate.tg..healthy",
            "dns.x.switch",
        ] {
            assert!(s.parse::<NodeId>().is_err(), "{s}");
        }
    }
}
