//! The security-group part of the diff: groups the stack creates (owned whole), the rules
//! of `existing` groups (added, described, removed when `exclusive`), and owned groups that
//! left the manifest.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use super::diff::{attr, resource, Differ};
use super::id::GroupPart;
use super::{Action, Change, NodeId, Op, SgRef, Tagged};
use crate::model::{owned_by, GroupRef, RuleKey, Source};
use crate::names;

impl<'a> Differ<'a> {
    pub(super) fn security_groups(&mut self) {
        // First find every group, so that rules can refer to each other by id.
        let mut live = BTreeMap::new();
        for (key, dsg) in &self.d.security_groups {
            if let Some(id) = &dsg.adopt {
                let path = format!("security_groups.{key}.adopt");
                match self.o.sg_by_id(id) {
                    None => self.block(
                        path,
                        format!("security group {id} does not exist"),
                        "check the id and the region",
                    ),
                    Some(g) if g.vpc != self.d.vpc => self.block(
                        path,
                        format!("security group {id} is in {}, not in the manifest's vpc {}", g.vpc, self.d.vpc),
                        "adopt a group of the manifest's VPC, or correct `vpc`",
                    ),
                    // AWS never deletes a VPC's default group, and every instance
                    // launched without a group has it: it is not one to own.
                    Some(g) if g.is_vpc_default() => self.block(
                        path,
                        format!("security group {id} is its VPC's default group, which cannot be adopted"),
                        "name it by id where it is used (a load balancer's `security_groups` takes an sg- id), or as `existing` to manage its rules",
                    ),
                    Some(g) => {
                        let node = (NodeId::group(key, GroupPart::Adopt), "security_group", g.name.as_str());
                        let on = Tagged::SecurityGroup { id: g.id.clone() };
                        if self.adopt(&path, node, &g.tags, on) {
                            self.sg_ids.insert(key.clone(), id.clone());
                            live.insert(key.clone(), g);
                        }
                    }
                }
                continue;
            }
            match &dsg.existing {
                Some(id) => match self.o.sg_by_id(id) {
                    // The backends' group lives where the load balancer and its target
                    // groups are created: a group elsewhere means `vpc` is wrong.
                    Some(g) if g.vpc != self.d.vpc => self.block(
                        format!("security_groups.{key}.existing"),
                        format!(
                            "security group {id} is in {}, not in the manifest's vpc {}",
                            g.vpc, self.d.vpc
                        ),
                        "set `vpc` to the VPC of the backends (the load balancer, its groups and target groups are created there), or correct `existing`",
                    ),
                    Some(g) => {
                        self.sg_ids.insert(key.clone(), id.clone());
                        live.insert(key.clone(), g);
                    }
                    None => self.block(
                        format!("security_groups.{key}.existing"),
                        format!("security group {id} does not exist"),
                        "check the id and the region",
                    ),
                },
                None => {
                    let same_name: Vec<_> = self
                        .o
                        .security_groups
                        .iter()
                        .filter(|g| g.name == dsg.name && g.vpc == self.d.vpc)
                        .collect();
                    match same_name.iter().find(|g| owned_by(&g.tags, &self.d.stack)) {
                        Some(g) => {
                            self.sg_ids.insert(key.clone(), g.id.clone());
                            live.insert(key.clone(), *g);
                        }
                        None => {
                            if let Some(g) = same_name.first() {
                                self.conflict("security group", &dsg.name, &g.id);
                            }
                        }
                    }
                }
            }
        }
        let doomed = self.doomed_groups();
        for (key, dsg) in &self.d.security_groups {
            let owned = dsg.existing.is_none();
            let desired: BTreeMap<RuleKey, Option<String>> = dsg
                .rules
                .iter()
                .map(|(k, v)| (self.resolve_rule(k), v.clone()))
                .collect();
            let Some(g) = live.get(key) else {
                if owned && dsg.adopt.is_none() && !self.blocked_name(&dsg.name) {
                    self.create_group(key, dsg, desired);
                }
                continue;
            };
            let group = SgRef::Id(g.id.clone());
            if owned {
                self.retag(
                    NodeId::group(key, GroupPart::Tags),
                    "security_group",
                    &g.name,
                    &g.tags,
                    Tagged::SecurityGroup { id: g.id.clone() },
                );
            }
            let label = if owned {
                g.name.clone()
            } else {
                format!("{} ({key})", g.id)
            };
            let have: BTreeMap<&RuleKey, &Option<String>> =
                g.rules.iter().map(|r| (&r.key, &r.description)).collect();
            let adds: Vec<(RuleKey, Option<String>)> = desired
                .iter()
                .filter(|(k, _)| !have.contains_key(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let described: Vec<(RuleKey, Option<String>)> = desired
                .iter()
                .filter(|(k, want)| want.is_some() && have.get(k).is_some_and(|got| *got != *want))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            // A rule admitting a group the plan deletes goes too, exclusive or not: AWS
            // refuses to delete a group that a rule still names.
            let removes: Vec<RuleKey> = g
                .rules
                .iter()
                .filter(|r| !desired.contains_key(&r.key))
                .filter(|r| {
                    let names_doomed =
                        matches!(&r.key.source, Source::Group(id) if doomed.contains(id));
                    names_doomed || (dsg.exclusive && (owned || !self.admits_another_stack(&r.key)))
                })
                .map(|r| r.key.clone())
                .collect();
            if !adds.is_empty() {
                let attrs = adds
                    .iter()
                    .map(|(k, _)| attr("ingress", None, Some(json!(k.to_string()))))
                    .collect();
                self.change(
                    NodeId::group(key, GroupPart::RulesAdd),
                    Change {
                        resource: resource("security_group_rules", &label, owned),
                        action: Action::Create,
                        reason: "the manifest lists these rules and the group lacks them".into(),
                        attrs,
                        op: Op::AuthorizeIngress {
                            group: group.clone(),
                            rules: adds,
                        },
                    },
                );
            }
            if !described.is_empty() {
                let attrs = described
                    .iter()
                    .map(|(k, v)| {
                        let before = have.get(k).and_then(|d| d.as_ref()).map(|d| json!(d));
                        attr(
                            &format!("ingress[{k}].description"),
                            before,
                            v.as_ref().map(|d| json!(d)),
                        )
                    })
                    .collect();
                self.change(
                    NodeId::group(key, GroupPart::RulesDescribe),
                    Change {
                        resource: resource("security_group_rules", &label, owned),
                        action: Action::Update,
                        reason: "rule descriptions differ from the manifest".into(),
                        attrs,
                        op: Op::UpdateRuleDescriptions {
                            group: group.clone(),
                            rules: described,
                        },
                    },
                );
            }
            if !removes.is_empty() {
                let public = removes.iter().any(RuleKey::is_from_internet);
                let reason = if !owned && public {
                    "exclusive: the backend's public rules go last, once DNS has moved to the load balancer and old answers have expired"
                } else if owned {
                    "the stack owns this group whole; rules the manifest does not list are removed"
                } else {
                    "exclusive: rules the manifest does not list are removed once nothing depends on them"
                };
                let attrs = removes
                    .iter()
                    .map(|k| attr("ingress", Some(json!(k.to_string())), None))
                    .collect();
                self.change(
                    NodeId::group(key, GroupPart::RulesRemove),
                    Change {
                        resource: resource("security_group_rules", &label, owned),
                        action: Action::Delete,
                        reason: reason.into(),
                        attrs,
                        op: Op::RevokeIngress {
                            group,
                            rules: removes,
                            direct_path: !owned,
                        },
                    },
                );
            }
        }
    }

    /// Does a rule admit a group another reconcile stack owns (its load balancer's, say)?
    /// An `existing` group shared by several stacks keeps such rules even when
    /// `exclusive`: removing one would cut that stack's site off, and it is not this
    /// stack's to remove.
    fn admits_another_stack(&self, rule: &RuleKey) -> bool {
        let Source::Group(id) = &rule.source else {
            return false;
        };
        self.o.sg_by_id(id).is_some_and(|g| {
            g.tags
                .get(names::STACK_TAG)
                .is_some_and(|s| *s != self.d.stack)
        })
    }

    /// Is an AWS name taken by something the stack does not own? (Already reported.)
    pub(super) fn blocked_name(&self, name: &str) -> bool {
        self.taken.contains(name)
    }

    pub(super) fn create_group(
        &mut self,
        key: &str,
        dsg: &crate::model::DesiredSg,
        rules: BTreeMap<RuleKey, Option<String>>,
    ) {
        self.change(
            NodeId::group(key, GroupPart::Create),
            Change {
                resource: resource("security_group", &dsg.name, true),
                action: Action::Create,
                reason: "declared in the manifest and not found".into(),
                attrs: vec![
                    attr("name", None, Some(json!(dsg.name))),
                    attr("description", None, Some(json!(dsg.description))),
                    attr("vpc", None, Some(json!(self.d.vpc))),
                ],
                op: Op::CreateSecurityGroup {
                    key: key.to_owned(),
                    name: dsg.name.clone(),
                    description: dsg.description.clone(),
                    vpc: self.d.vpc.clone(),
                    tags: self.d.tags.clone(),
                },
            },
        );
        if rules.is_empty() {
            return;
        }
        let attrs = rules
            .keys()
            .map(|k| attr("ingress", None, Some(json!(k.to_string()))))
            .collect();
        self.change(
            NodeId::group(key, GroupPart::RulesAdd),
            Change {
                resource: resource("security_group_rules", &dsg.name, true),
                action: Action::Create,
                reason: "rules of the new group".into(),
                attrs,
                op: Op::AuthorizeIngress {
                    group: SgRef::New(key.to_owned()),
                    rules: rules.into_iter().collect(),
                },
            },
        );
    }

    /// A desired rule with `from` a key resolved to the group's id when the group exists.
    pub(super) fn resolve_rule(&self, k: &RuleKey) -> RuleKey {
        let Ok(rule) =
            k.resolve(|key| Ok::<_, std::convert::Infallible>(self.sg_ids.get(key).cloned()));
        rule
    }

    pub(super) fn sg_ref(&self, g: &GroupRef) -> SgRef {
        match g {
            GroupRef::Id(id) => SgRef::Id(id.clone()),
            GroupRef::Key(k) => match self.sg_ids.get(k) {
                Some(id) => SgRef::Id(id.clone()),
                None => SgRef::New(k.clone()),
            },
        }
    }

    /// Owned groups of the VPC that the manifest no longer declares: the plan deletes them.
    fn stale_groups(&self) -> Vec<&'a crate::model::ObservedSg> {
        let wanted: BTreeSet<&String> = self
            .d
            .security_groups
            .values()
            .filter(|g| g.existing.is_none() && g.adopt.is_none())
            .map(|g| &g.name)
            .collect();
        let o: &'a crate::model::Observed = self.o;
        o.security_groups
            .iter()
            .filter(|g| g.vpc == self.d.vpc && owned_by(&g.tags, &self.d.stack))
            .filter(|g| !wanted.contains(&g.name) && !self.d.adopts(&g.id))
            .collect()
    }

    /// The ids of the groups the plan deletes.
    fn doomed_groups(&self) -> BTreeSet<String> {
        self.stale_groups()
            .into_iter()
            .map(|g| g.id.clone())
            .collect()
    }

    /// Owned groups of the VPC that the manifest no longer declares.
    pub(super) fn stale_security_groups(&mut self) {
        for g in self.stale_groups() {
            self.change(
                NodeId::GroupDelete {
                    name: g.name.clone(),
                },
                Change {
                    resource: resource("security_group", &g.name, true),
                    action: Action::Delete,
                    reason: "owned by the stack and no longer in the manifest".into(),
                    attrs: vec![attr("id", Some(json!(g.id)), None)],
                    op: Op::DeleteSecurityGroup {
                        id: g.id.clone(),
                        name: g.name.clone(),
                    },
                },
            );
        }
    }
}
