//! EC2 writes: security groups and their ingress rules. Each is safe to repeat: a create
//! finds the stack's own group from an earlier run, rules already there (or already gone)
//! are skipped, a group already deleted is success.

use crate::aws::Operation;
use std::future::Future;

use aws_sdk_ec2::types::{
    IpPermission, IpRange, Ipv6Range, PrefixListId, ResourceType, Tag, TagSpecification,
    UserIdGroupPair,
};

use super::Ec2;
use crate::aws::{need, sdk_error, settle, Error, Result, Round};
use crate::model::{owned_by, RuleKey, Source, Tags};
use crate::names;

impl Ec2 {
    /// Creates a security group tagged `tags` at creation; returns its id. When a group of
    /// that name exists in the VPC and carries the same `reconcile:stack` tag (an earlier
    /// run that stopped after its create), returns that group's id instead; any other
    /// group of that name is AWS's `InvalidGroup.Duplicate`.
    pub async fn create_security_group(
        &self,
        name: &str,
        description: &str,
        vpc: &str,
        tags: &Tags,
    ) -> Result<String> {
        let sent = self.send_create_group(name, description, vpc, tags).await;
        match sent {
            Ok(id) => Ok(id),
            Err(e) if e.code() == Some("InvalidGroup.Duplicate") => {
                match self.group_named(name, vpc, tags).await? {
                    Some(id) => Ok(id),
                    None => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// One `CreateSecurityGroup` call, tagged at creation; the new group's id.
    pub(super) async fn send_create_group(
        &self,
        name: &str,
        description: &str,
        vpc: &str,
        tags: &Tags,
    ) -> Result<String> {
        const OP: Operation = Operation::CreateSecurityGroup;
        self.meter.record(OP, Round::START);
        let out = self
            .client
            .create_security_group()
            .group_name(name)
            .description(description)
            .vpc_id(vpc)
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::SecurityGroup)
                    .set_tags(Some(ec2_tags(tags)))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| sdk_error(OP, e))?;
        let id = need(out.group_id(), OP, "GroupId")?;
        settle::created(id);
        Ok(id.to_owned())
    }

    /// The id of the group `name` in `vpc` if it carries the `reconcile:stack` tag of `tags`.
    async fn group_named(&self, name: &str, vpc: &str, tags: &Tags) -> Result<Option<String>> {
        let Some(stack) = tags.get(names::STACK_TAG) else {
            return Ok(None);
        };
        Ok(self
            .groups_named(name, vpc)
            .await?
            .into_iter()
            .find(|g| owned_by(&g.tags, stack))
            .map(|g| g.id))
    }

    /// Adds ingress rules, each with its description, in one call. Rules already present
    /// are skipped (AWS refuses the whole call then, so it is retried rule by rule).
    pub async fn authorize_ingress(
        &self,
        group_id: &str,
        rules: &[(RuleKey, Option<String>)],
    ) -> Result<()> {
        const OP: Operation = Operation::AuthorizeSecurityGroupIngress;
        let permissions = rules
            .iter()
            .map(|(key, description)| permission(key, description.as_deref()))
            .collect::<Result<Vec<_>>>()?;
        all_or_each(permissions, "InvalidPermission.Duplicate", |p| async move {
            self.meter
                .send(
                    OP,
                    self.client
                        .authorize_security_group_ingress()
                        .group_id(group_id)
                        .set_ip_permissions(Some(p))
                        .send(),
                )
                .await
                .map(|_| ())
        })
        .await
    }

    /// Removes ingress rules in one call. Rules already gone are skipped (AWS refuses the
    /// whole call then, so it is retried rule by rule).
    pub async fn revoke_ingress(&self, group_id: &str, rules: &[RuleKey]) -> Result<()> {
        const OP: Operation = Operation::RevokeSecurityGroupIngress;
        let permissions = rules
            .iter()
            .map(|key| permission(key, None))
            .collect::<Result<Vec<_>>>()?;
        all_or_each(permissions, "InvalidPermission.NotFound", |p| async move {
            self.meter
                .send(
                    OP,
                    self.client
                        .revoke_security_group_ingress()
                        .group_id(group_id)
                        .set_ip_permissions(Some(p))
                        .send(),
                )
                .await
                .map(|_| ())
        })
        .await
    }

    /// Sets the descriptions of existing ingress rules; `None` clears one.
    pub async fn update_rule_descriptions(
        &self,
        group_id: &str,
        rules: &[(RuleKey, Option<String>)],
    ) -> Result<()> {
        const OP: Operation = Operation::UpdateSecurityGroupRuleDescriptionsIngress;
        if rules.is_empty() {
            return Ok(());
        }
        // AWS clears a description left out; moto keeps it. An empty one clears it on both
        // (and reads back as no description).
        let permissions = rules
            .iter()
            .map(|(key, description)| permission(key, Some(description.as_deref().unwrap_or(""))))
            .collect::<Result<Vec<_>>>()?;
        self.meter
            .send(
                OP,
                self.client
                    .update_security_group_rule_descriptions_ingress()
                    .group_id(group_id)
                    .set_ip_permissions(Some(permissions))
                    .send(),
            )
            .await?;
        Ok(())
    }

    /// Deletes a security group; one already gone is success. A group this process
    /// created a moment ago that EC2 says it does not know is not gone: EC2 does not know
    /// it yet, and the delete is tried again until it does.
    pub async fn delete_security_group(&self, id: &str) -> Result<()> {
        const OP: Operation = Operation::DeleteSecurityGroup;
        let mut attempt = 0;
        loop {
            let sent = self
                .meter
                .send(OP, self.client.delete_security_group().group_id(id).send())
                .await;
            match sent {
                Ok(_) => return Ok(()),
                Err(e) if e.code() == Some("InvalidGroup.NotFound") && settle::is_fresh(id) => {
                    tokio::time::sleep(settle::pause(attempt)).await;
                    attempt += 1;
                }
                Err(e) if e.code() == Some("InvalidGroup.NotFound") => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }
}

impl Ec2 {
    /// What keeps a security group from being deleted, as far as EC2 tells: the network
    /// interfaces that have it (a load balancer's linger for minutes after it is
    /// deleted) and the groups whose rules name it.
    pub async fn dependents_of(&self, group_id: &str) -> Result<Vec<String>> {
        const ENIS: Operation = Operation::DescribeNetworkInterfaces;
        const GROUPS: Operation = Operation::DescribeSecurityGroups;
        let filter = |n: &str| {
            aws_sdk_ec2::types::Filter::builder()
                .name(n)
                .values(group_id)
                .build()
        };
        self.meter.record(ENIS, Round::START);
        self.meter.record(GROUPS, Round::START);
        let (enis, groups) = tokio::join!(
            self.client
                .describe_network_interfaces()
                .filters(filter("group-id"))
                .send(),
            self.client
                .describe_security_groups()
                .filters(filter("ip-permission.group-id"))
                .send(),
        );
        let mut found = Vec::new();
        for eni in enis.map_err(|e| sdk_error(ENIS, e))?.network_interfaces() {
            let id = eni.network_interface_id().unwrap_or("?");
            match eni.description().filter(|d| !d.is_empty()) {
                Some(d) => found.push(format!("network interface {id} ({d})")),
                None => found.push(format!("network interface {id}")),
            }
        }
        for g in groups.map_err(|e| sdk_error(GROUPS, e))?.security_groups() {
            if let Some(id) = g.group_id().filter(|id| *id != group_id) {
                found.push(format!("a rule of security group {id}"));
            }
        }
        Ok(found)
    }
}

/// Sends every permission in one request; when AWS refuses it with `skip` (some of them
/// are already as wanted), sends them one at a time and skips those refused with `skip`.
/// (moto applies the permissions before the refused one, AWS none; both end the same.)
async fn all_or_each<F, Fut>(permissions: Vec<IpPermission>, skip: &str, send: F) -> Result<()>
where
    F: Fn(Vec<IpPermission>) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    if permissions.is_empty() {
        return Ok(());
    }
    let several = permissions.len() > 1;
    match send(permissions.clone()).await {
        Err(e) if e.code() == Some(skip) && several => {}
        Err(e) if e.code() == Some(skip) => return Ok(()),
        other => return other,
    }
    for p in permissions {
        match send(vec![p]).await {
            Err(e) if e.code() == Some(skip) => {}
            other => other?,
        }
    }
    Ok(())
}

/// One rule as an EC2 permission: its protocol and ports, and its one source with the
/// description.
fn permission(key: &RuleKey, description: Option<&str>) -> Result<IpPermission> {
    let p = IpPermission::builder()
        .ip_protocol(key.protocol.as_str())
        .from_port(key.from_port)
        .to_port(key.to_port);
    let p = match &key.source {
        // The read side keeps a prefix-list source as its id (see `rules` in ec2.rs).
        Source::Cidr(id) if id.starts_with("pl-") => p.prefix_list_ids(
            PrefixListId::builder()
                .prefix_list_id(id)
                .set_description(description.map(str::to_owned))
                .build(),
        ),
        Source::Cidr(cidr) if cidr.contains(':') => p.ipv6_ranges(
            Ipv6Range::builder()
                .cidr_ipv6(cidr)
                .set_description(description.map(str::to_owned))
                .build(),
        ),
        Source::Cidr(cidr) => p.ip_ranges(
            IpRange::builder()
                .cidr_ip(cidr)
                .set_description(description.map(str::to_owned))
                .build(),
        ),
        Source::Group(id) => p.user_id_group_pairs(
            UserIdGroupPair::builder()
                .group_id(id)
                .set_description(description.map(str::to_owned))
                .build(),
        ),
        Source::Key(k) => {
            return Err(Error::Bug(format!(
                "ingress rule {key} names the group by its manifest key {k:?}; the executor \
                 must resolve it to a group id first"
            )))
        }
    };
    Ok(p.build())
}

pub(super) fn ec2_tags(tags: &Tags) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_go_to_their_own_lists_with_descriptions() {
        let p = |source: Source| permission(&RuleKey::tcp(80, source), Some("web"));
        let v4 = p(Source::Cidr("0.0.0.0/0".into())).ok();
        assert_eq!(
            v4.as_ref()
                .map(|p| (p.ip_protocol(), p.from_port(), p.to_port())),
            Some((Some("tcp"), Some(80), Some(80)))
        );
        assert_eq!(
            v4.as_ref()
                .and_then(|p| p.ip_ranges().first())
                .and_then(|r| r.description()),
            Some("web")
        );
        let v6 = p(Source::Cidr("::/0".into())).ok();
        assert_eq!(
            v6.as_ref()
                .and_then(|p| p.ipv6_ranges().first())
                .and_then(|r| r.cidr_ipv6()),
            Some("::/0")
        );
        let group = p(Source::Group("sg-0123".into())).ok();
        assert_eq!(
            group
                .as_ref()
                .and_then(|p| p.user_id_group_pairs().first())
                .and_then(|g| g.group_id()),
            Some("sg-0123")
        );
        assert!(matches!(
            p(Source::Key("lb".into())),
            Err(Error::Bug(m)) if m.contains("\"lb\"")
        ));
    }
}
