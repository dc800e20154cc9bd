//! What each node of a plan reads and writes in the model of AWS ([`super::model`]), so that
//! the checker ([`super`]) knows which nodes commute and which ones the availability
//! invariant can see. See docs/architecture.md, "Why the reduced check is a proof".
//!
//! A node's *footprint* is a list of the parts of the world it touches, each with how:
//! read, written, or one of two updates of a group's targets that commute with each
//! other (registering or deregistering targets, and attaching or detaching the group by a
//! listener change: the targets of a group no load balancer uses are `unused`, those of
//! one attached are health-checked from `initial`, whichever came first). Two nodes are
//! *independent* when no part one writes is touched by the other: then running them in
//! either order gives the same world, and neither can fail or succeed because of the
//! other. A node that touches what is not listed precisely (a deletion that AWS refuses
//! while anything uses what it deletes, the probe and the bake, which read the whole
//! serving path) is *global*: dependent on every other node.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::{Observed, Source};

use crate::plan::{CertRef, Gate, LbRef, Node, NodeKind, Op, RecordValue, SgRef, Tagged, TgRef};

/// A part of the model's world.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Part {
    /// The records at a name, and the history of the answers they gave.
    Dns(String),
    /// The run's clock (moved by the TTL waits and the bakes).
    Clock,
    /// The DNS names of every load balancer seen so far.
    SeenLbs,
    /// A security group: its rules and tags (by id, or `new:` and its manifest key).
    Sg(String),
    /// A security group's name in a VPC (EC2 refuses a second).
    SgName(String),
    /// A target group: whether it exists, its settings and tags.
    Tg(String),
    /// A target group's targets, their health and the load balancers it serves.
    TgTargets(String),
    /// A target group's name (ELB refuses a second).
    TgName(String),
    /// A load balancer: whether it exists, its DNS name, its tags.
    Lb(String),
    /// A load balancer's state (`provisioning`, `active`).
    LbState(String),
    /// A load balancer's security groups.
    LbGroups(String),
    /// A load balancer's subnets and attributes (deletion protection among them).
    LbSettings(String),
    /// A load balancer's name.
    LbName(String),
    /// A listener: a load balancer's and a port's.
    Listener(String, u16),
    /// A certificate: whether it exists, and its status.
    Cert(String),
}

/// How a node touches a part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Read,
    Write,
    /// Registers or deregisters targets of a group.
    Members,
    /// Attaches a group to a load balancer or detaches it (a listener change).
    Attach,
    /// Moves the clock on (a wait): two waits commute.
    Advance,
    /// Changes the resource's tags only (adoption, `SetTags`). Ordered against every other
    /// touch of the resource, since the ownership check of a change reads its tags; but the
    /// serving invariant reads no tag, so it never makes the change visible to it.
    Tags,
}

/// Do two touches of one part commute?
fn commute(a: Mode, b: Mode) -> bool {
    matches!(
        (a, b),
        (Mode::Read, Mode::Read)
            | (Mode::Members, Mode::Attach)
            | (Mode::Attach, Mode::Members)
            | (Mode::Advance, Mode::Advance)
    )
}

/// What one node touches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Footprint {
    /// Dependent on every other node.
    pub global: bool,
    pub touches: Vec<(Part, Mode)>,
}

impl Footprint {
    fn global() -> Footprint {
        Footprint {
            global: true,
            touches: vec![],
        }
    }

    fn read(&mut self, p: Part) -> &mut Self {
        self.touches.push((p, Mode::Read));
        self
    }

    fn write(&mut self, p: Part) -> &mut Self {
        self.touches.push((p, Mode::Write));
        self
    }

    fn with(&mut self, p: Part, m: Mode) -> &mut Self {
        self.touches.push((p, m));
        self
    }

    /// Are the two nodes dependent: may the order they run in matter?
    pub fn conflicts(&self, other: &Footprint) -> bool {
        self.global
            || other.global
            || self.touches.iter().any(|(p, m)| {
                other
                    .touches
                    .iter()
                    .any(|(q, n)| p == q && !commute(*m, *n))
            })
    }

    /// Does the node change a part the serving invariant reads (anything but reading it or
    /// its tags)?
    pub fn changes_served(&self, which: impl Fn(&Part) -> bool) -> bool {
        self.global
            || self
                .touches
                .iter()
                .any(|(p, m)| !matches!(m, Mode::Read | Mode::Tags) && which(p))
    }
}

fn sg(g: &SgRef) -> Part {
    match g {
        SgRef::Id(id) => Part::Sg(format!("id:{id}")),
        SgRef::New(k) => Part::Sg(format!("new:{k}")),
    }
}

fn tg_name(t: &TgRef) -> String {
    match t {
        TgRef::Arn(a) => format!("arn:{a}"),
        TgRef::New { key, .. } => format!("new:{key}"),
    }
}

fn lb_name(l: &LbRef) -> String {
    match l {
        LbRef::Arn(a) => format!("arn:{a}"),
        LbRef::New(n) => format!("new:{n}"),
    }
}

fn cert_name(c: &CertRef) -> String {
    match c {
        CertRef::Arn(a) | CertRef::Issuing { arn: Some(a), .. } => format!("arn:{a}"),
        CertRef::Issuing { key, arn: None } => format!("new:{key}"),
    }
}

/// The footprints of a plan's nodes, from the plan and the state it starts from.
pub struct Footprints {
    pub of: Vec<Footprint>,
}

impl Footprints {
    /// `watched`: the records whose answers the model follows (a change of another record
    /// does not depend on the clock).
    pub fn new(observed: &Observed, nodes: &[Node], watched: &[String]) -> Footprints {
        let mut cx = Context::new(observed, nodes);
        cx.watched = watched.to_vec();
        Footprints {
            of: nodes.iter().map(|n| cx.footprint(n)).collect(),
        }
    }
}

/// What a footprint needs beyond its node: which load balancer holds a listener, every
/// group a listener may forward to or hold on standby during the run, the validation
/// records of each certificate.
struct Context<'a> {
    observed: &'a Observed,
    /// A listener's load balancer, by the listener's ARN.
    lb_of_listener: BTreeMap<&'a str, String>,
    /// The groups a listener uses at some point of the run: now, and in any change of it.
    groups: BTreeMap<(String, u16), BTreeSet<String>>,
    /// The names a certificate requested by the plan covers, by key.
    requested: BTreeMap<&'a str, &'a [String]>,
    /// Every load balancer of the run: read, or created by the plan.
    lbs: BTreeSet<String>,
    /// Every security group of the run: read, or created by the plan.
    sgs: BTreeSet<String>,
    /// The records whose answers the model follows.
    watched: Vec<String>,
}

impl<'a> Context<'a> {
    fn new(observed: &'a Observed, nodes: &'a [Node]) -> Context<'a> {
        let mut lb_of_listener = BTreeMap::new();
        let mut groups: BTreeMap<(String, u16), BTreeSet<String>> = BTreeMap::new();
        for l in observed
            .load_balancers
            .iter()
            .chain(&observed.foreign_load_balancers)
        {
            for x in &l.listeners {
                lb_of_listener.insert(x.arn.as_str(), format!("arn:{}", l.arn));
                groups
                    .entry((format!("arn:{}", l.arn), x.port))
                    .or_default()
                    .extend(
                        x.forward
                            .iter()
                            .chain(&x.standby)
                            .map(|t| format!("arn:{t}")),
                    );
            }
        }
        let mut requested = BTreeMap::new();
        let mut lbs: BTreeSet<String> = observed
            .load_balancers
            .iter()
            .map(|l| format!("arn:{}", l.arn))
            .collect();
        let mut sgs: BTreeSet<String> = observed
            .security_groups
            .iter()
            .map(|g| format!("id:{}", g.id))
            .collect();
        let mut cx = Context {
            observed,
            lb_of_listener,
            groups: BTreeMap::new(),
            requested: BTreeMap::new(),
            lbs: BTreeSet::new(),
            sgs: BTreeSet::new(),
            watched: vec![],
        };
        for n in nodes {
            let NodeKind::Change(c) = &n.kind else {
                continue;
            };
            let used: Vec<String> = match &c.op {
                Op::CreateListener { serve, .. } | Op::ModifyListener { serve, .. } => {
                    serve.target_group().map(tg_name).into_iter().collect()
                }
                Op::AttachStandby { tg, .. } => vec![tg_name(tg)],
                Op::DetachStandby { serving, .. } => {
                    serving.iter().map(|a| format!("arn:{a}")).collect()
                }
                Op::RequestCertificate { key, names, .. } => {
                    requested.insert(key.as_str(), names.as_slice());
                    continue;
                }
                Op::CreateLoadBalancer { name, .. } => {
                    lbs.insert(format!("new:{name}"));
                    continue;
                }
                Op::CreateSecurityGroup { key, .. } => {
                    sgs.insert(format!("new:{key}"));
                    continue;
                }
                _ => continue,
            };
            if let Some(l) = cx.listener(&c.op) {
                groups.entry(l).or_default().extend(used);
            }
        }
        cx.groups = groups;
        cx.requested = requested;
        cx.lbs = lbs;
        cx.sgs = sgs;
        cx
    }

    /// The listener a change is about, as (load balancer, port).
    fn listener(&self, op: &Op) -> Option<(String, u16)> {
        match op {
            Op::CreateListener { lb, port, .. } => Some((lb_name(lb), *port)),
            Op::ModifyListener { arn, port, .. }
            | Op::AttachStandby { arn, port, .. }
            | Op::DetachStandby { arn, port, .. }
            | Op::SetListenerHeaders { arn, port, .. }
            | Op::DeleteListener { arn, port } => self
                .lb_of_listener
                .get(arn.as_str())
                .map(|lb| (lb.clone(), *port)),
            _ => None,
        }
    }

    /// The names of the validation records ACM asks for a certificate (None when the model
    /// would not know the certificate).
    fn validation(&self, c: &CertRef) -> Option<Vec<String>> {
        match c {
            CertRef::Arn(a) | CertRef::Issuing { arn: Some(a), .. } => self
                .observed
                .certificates
                .iter()
                .find(|x| &x.arn == a)
                .map(|x| x.validation.iter().map(|v| v.name.clone()).collect()),
            CertRef::Issuing { key, arn: None } => self.requested.get(key.as_str()).map(|n| {
                super::model::requested_validation(n)
                    .into_iter()
                    .map(|v| v.name)
                    .collect()
            }),
        }
    }

    fn footprint(&self, node: &Node) -> Footprint {
        let mut f = Footprint::default();
        match &node.kind {
            NodeKind::Gate(g) => match g {
                Gate::LbActive { lb } => {
                    f.read(Part::Lb(lb_name(lb)))
                        .write(Part::LbState(lb_name(lb)));
                }
                Gate::TargetsHealthy { tg, .. } => {
                    f.read(Part::Tg(tg_name(tg)))
                        .write(Part::TgTargets(tg_name(tg)));
                }
                Gate::RulesInPlace { group, .. } => {
                    f.read(sg(group));
                }
                Gate::DnsInSync { .. } => {}
                Gate::CertIssued { cert, .. } => {
                    let Some(names) = self.validation(cert) else {
                        return Footprint::global();
                    };
                    f.write(Part::Cert(cert_name(cert)));
                    for n in names {
                        f.read(Part::Dns(n));
                    }
                }
                Gate::WaitTtl { .. } => {
                    f.with(Part::Clock, Mode::Advance);
                }
                // They read the whole serving path (and the bake's revert writes a record).
                Gate::Probe(_) | Gate::Bake { .. } => return Footprint::global(),
            },
            NodeKind::Change(c) => return self.op(&c.op),
        }
        f
    }

    fn op(&self, op: &Op) -> Footprint {
        let mut f = Footprint::default();
        match op {
            Op::CreateSecurityGroup { key, name, vpc, .. } => {
                f.write(Part::Sg(format!("new:{key}")))
                    .write(Part::SgName(format!("{vpc}/{name}")));
            }
            Op::AuthorizeIngress { group, rules } | Op::UpdateRuleDescriptions { group, rules } => {
                f.write(sg(group));
                for (k, _) in rules {
                    if let Source::Key(key) = &k.source {
                        f.read(Part::Sg(format!("new:{key}")));
                    }
                }
            }
            Op::RevokeIngress { group, rules, .. } => {
                f.write(sg(group));
                for k in rules {
                    if let Source::Key(key) = &k.source {
                        f.read(Part::Sg(format!("new:{key}")));
                    }
                }
            }
            Op::CreateTargetGroup { key, name, .. } => {
                f.write(Part::Tg(format!("new:{key}")))
                    .write(Part::TgTargets(format!("new:{key}")))
                    .write(Part::TgName(name.clone()));
            }
            Op::ModifyHealthCheck { tg, .. } => {
                f.write(Part::Tg(tg_name(tg)));
            }
            Op::SetTags { resource, .. } | Op::Adopt { resource, .. } => {
                let part = match resource {
                    Tagged::LoadBalancer { arn } => Part::Lb(format!("arn:{arn}")),
                    Tagged::TargetGroup { arn } => Part::Tg(format!("arn:{arn}")),
                    Tagged::SecurityGroup { id } => Part::Sg(format!("id:{id}")),
                };
                f.with(part, Mode::Tags);
            }
            Op::RegisterTargets { tg, .. } | Op::DeregisterTargets { tg, .. } => {
                f.read(Part::Tg(tg_name(tg)))
                    .with(Part::TgTargets(tg_name(tg)), Mode::Members);
            }
            // Refused while a listener forwards to it: every listener that may.
            Op::DeleteTargetGroup { arn, name, .. } => {
                let me = format!("arn:{arn}");
                f.write(Part::Tg(me.clone()))
                    .write(Part::TgTargets(me.clone()))
                    .write(Part::TgName(name.clone()));
                for ((lb, port), groups) in &self.groups {
                    if groups.contains(&me) {
                        f.read(Part::Listener(lb.clone(), *port));
                    }
                }
            }
            Op::CreateLoadBalancer {
                name,
                security_groups,
                ..
            } => {
                let me = format!("new:{name}");
                f.write(Part::Lb(me.clone()))
                    .write(Part::LbState(me.clone()))
                    .write(Part::LbGroups(me.clone()))
                    .write(Part::LbSettings(me))
                    .write(Part::LbName(name.clone()))
                    .write(Part::SeenLbs);
                for g in security_groups {
                    f.read(sg(g));
                }
            }
            Op::SetSubnets { lb, .. } | Op::SetLbAttributes { lb, .. } => {
                f.read(Part::Lb(lb_name(lb)))
                    .write(Part::LbSettings(lb_name(lb)));
            }
            Op::SetSecurityGroups { lb, groups } => {
                f.read(Part::Lb(lb_name(lb)))
                    .write(Part::LbGroups(lb_name(lb)));
                for g in groups {
                    f.read(sg(g));
                }
            }
            Op::Unprotect { arn, .. } => {
                f.read(Part::Lb(format!("arn:{arn}")))
                    .write(Part::LbSettings(format!("arn:{arn}")));
            }
            Op::RequestCertificate { key, .. } => {
                f.write(Part::Cert(format!("new:{key}")));
            }
            Op::WriteValidation { cert, .. } => {
                let Some(names) = self.validation(cert) else {
                    return Footprint::global();
                };
                f.read(Part::Cert(cert_name(cert)));
                for n in names {
                    f.write(Part::Dns(n));
                }
            }
            // Refused while a load balancer uses it or a rule of another group names it.
            Op::DeleteSecurityGroup { id, name } => {
                let Some(g) = self.observed.sg_by_id(id) else {
                    return Footprint::global();
                };
                f.write(Part::Sg(format!("id:{id}")))
                    .write(Part::SgName(format!("{}/{name}", g.vpc)));
                for lb in &self.lbs {
                    f.read(Part::LbGroups(lb.clone()));
                }
                for other in self.sgs.iter().filter(|x| **x != format!("id:{id}")) {
                    f.read(Part::Sg(other.clone()));
                }
            }
            // Its listeners go with it, and the groups they used are detached.
            Op::DeleteLoadBalancer { arn, name } => {
                let me = format!("arn:{arn}");
                f.write(Part::Lb(me.clone()))
                    .write(Part::LbState(me.clone()))
                    .write(Part::LbGroups(me.clone()))
                    .write(Part::LbSettings(me.clone()))
                    .write(Part::LbName(name.clone()));
                let mut attached: BTreeSet<&String> = BTreeSet::new();
                for ((lb, port), groups) in self.groups.iter().filter(|((lb, _), _)| *lb == me) {
                    f.write(Part::Listener(lb.clone(), *port));
                    attached.extend(groups);
                }
                let observed: Vec<String> = self
                    .observed
                    .target_groups
                    .iter()
                    .filter(|t| t.load_balancers.contains(arn))
                    .map(|t| format!("arn:{}", t.arn))
                    .collect();
                attached.extend(&observed);
                for t in attached {
                    f.read(Part::Tg(t.clone()))
                        .with(Part::TgTargets(t.clone()), Mode::Attach);
                }
            }
            // Refused while a listener of any load balancer uses it: dependent on every
            // node.
            Op::DeleteCertificate { .. } => return Footprint::global(),
            Op::CreateListener {
                lb,
                port,
                certificate,
                serve,
                ..
            } => {
                f.write(Part::Listener(lb_name(lb), *port))
                    .read(Part::Lb(lb_name(lb)));
                if let Some(c) = certificate {
                    f.read(Part::Cert(cert_name(c)));
                }
                if let Some(t) = serve.target_group() {
                    f.read(Part::Tg(tg_name(t)))
                        .with(Part::TgTargets(tg_name(t)), Mode::Attach);
                }
            }
            Op::AttachStandby { .. }
            | Op::ModifyListener { .. }
            | Op::DetachStandby { .. }
            | Op::DeleteListener { .. }
            | Op::SetListenerHeaders { .. } => {
                let Some(l) = self.listener(op) else {
                    return Footprint::global();
                };
                f.write(Part::Listener(l.0.clone(), l.1))
                    .read(Part::Lb(l.0.clone()));
                if let Op::ModifyListener {
                    certificate: Some(c),
                    ..
                } = op
                {
                    f.read(Part::Cert(cert_name(c)));
                }
                if !matches!(op, Op::SetListenerHeaders { .. }) {
                    for t in self.groups.get(&l).into_iter().flatten() {
                        f.read(Part::Tg(t.clone()))
                            .with(Part::TgTargets(t.clone()), Mode::Attach);
                    }
                }
            }
            Op::SetRecord {
                name, value, mark, ..
            } => {
                // The history of a followed record's answers ends them at the clock's time.
                f.write(Part::Dns(name.clone()));
                if self.watched.contains(name) {
                    f.read(Part::Clock);
                }
                if let Some(m) = mark {
                    f.write(Part::Dns(m.record.clone()));
                }
                if let RecordValue::LoadBalancer(lb) = value {
                    f.read(Part::Lb(lb_name(lb)));
                }
            }
            Op::ClearMarker { record, .. } => {
                f.write(Part::Dns(record.name.clone()));
            }
        }
        f
    }
}
