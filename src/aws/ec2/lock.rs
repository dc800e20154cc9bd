//! EC2 calls behind the apply lock: a security group with a fixed name, which EC2 creates
//! at most once per VPC (`InvalidGroup.Duplicate` for a second), read back to catch the
//! rare double success of simultaneous callers.

use crate::aws::Operation;
use aws_sdk_ec2::types::Filter;

use super::write::ec2_tags;
use super::{security_group, Ec2};
use crate::aws::{sdk_error, Result, Round};
use crate::model::{ObservedSg, Tags};

impl Ec2 {
    /// Creates the lock group; `None` when a group of that name exists already.
    pub async fn create_lock_group(
        &self,
        name: &str,
        description: &str,
        vpc: &str,
        tags: &Tags,
    ) -> Result<Option<String>> {
        match self.send_create_group(name, description, vpc, tags).await {
            Ok(id) => Ok(Some(id)),
            Err(e) if e.code() == Some("InvalidGroup.Duplicate") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every group named `name` in `vpc`.
    pub async fn groups_named(&self, name: &str, vpc: &str) -> Result<Vec<ObservedSg>> {
        const OP: Operation = Operation::DescribeSecurityGroups;
        self.meter.record(OP, Round::START);
        let filter = |n: &str, v: &str| Filter::builder().name(n).values(v).build();
        let out = self
            .client
            .describe_security_groups()
            .filters(filter("vpc-id", vpc))
            .filters(filter("group-name", name))
            .send()
            .await
            .map_err(|e| sdk_error(OP, e))?;
        out.security_groups()
            .iter()
            .map(security_group)
            .filter(|g| g.as_ref().map_or(true, |g| g.name == name))
            .collect()
    }

    /// Sets `tags` on a resource (adding or overwriting those keys).
    pub async fn set_tags(&self, id: &str, tags: &Tags) -> Result<()> {
        const OP: Operation = Operation::CreateTags;
        self.meter
            .send(
                OP,
                self.client
                    .create_tags()
                    .resources(id)
                    .set_tags(Some(ec2_tags(tags)))
                    .send(),
            )
            .await?;
        Ok(())
    }
}
