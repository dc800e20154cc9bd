//! EC2 reads for `reconcile init`: the instances behind an address, their neighbours in a
//! security group, and the VPC's subnets with their availability zones.

use aws_sdk_ec2::types::{Filter, Instance};

use super::{Ec2, SERVICE};
use crate::aws::{paginate, sdk_error, Result, Round};
use crate::model::{ObservedInstance, ObservedSubnet};

fn instance(i: &Instance) -> ObservedInstance {
    ObservedInstance {
        id: i.instance_id().unwrap_or_default().to_owned(),
        state: i
            .state()
            .and_then(|s| s.name())
            .map_or("unknown", |n| n.as_str())
            .to_owned(),
        vpc: i.vpc_id().unwrap_or_default().to_owned(),
        subnet: i.subnet_id().unwrap_or_default().to_owned(),
        groups: i
            .security_groups()
            .iter()
            .filter_map(|g| g.group_id().map(str::to_owned))
            .collect(),
        public_ip: i.public_ip_address().map(str::to_owned),
        public_dns: i
            .public_dns_name()
            .filter(|d| !d.is_empty())
            .map(crate::manifest::net::normalize_dns),
    }
}

impl Ec2 {
    /// Instances matching an EC2 filter (`ip-address`, `dns-name`, `instance.group-id`...).
    pub async fn instances_where(
        &self,
        filter: &str,
        values: &[String],
    ) -> Result<Vec<ObservedInstance>> {
        const OP: &str = "DescribeInstances";
        if values.is_empty() {
            return Ok(vec![]);
        }
        let filter = Filter::builder()
            .name(filter)
            .set_values(Some(values.to_vec()))
            .build();
        let filter = &filter;
        let answer = paginate(
            &self.meter,
            OP,
            Round::START,
            |token: Option<String>| async move {
                let out = self
                    .client
                    .describe_instances()
                    .filters(filter.clone())
                    .set_next_token(token)
                    .send()
                    .await
                    .map_err(|e| sdk_error(SERVICE, OP, e))?;
                let found = out
                    .reservations()
                    .iter()
                    .flat_map(|r| r.instances())
                    .map(instance)
                    .collect();
                Ok((found, out.next_token().map(str::to_owned)))
            },
        )
        .await?;
        let mut found = answer.value;
        found.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(found)
    }

    /// The subnets of a VPC with their availability zones.
    pub async fn subnets(&self, vpc: &str) -> Result<Vec<ObservedSubnet>> {
        const OP: &str = "DescribeSubnets";
        self.meter.record(OP, Round::START);
        let out = self
            .client
            .describe_subnets()
            .filters(Filter::builder().name("vpc-id").values(vpc).build())
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, OP, e))?;
        let mut subnets: Vec<ObservedSubnet> = out
            .subnets()
            .iter()
            .map(|s| ObservedSubnet {
                id: s.subnet_id().unwrap_or_default().to_owned(),
                zone: s.availability_zone().unwrap_or_default().to_owned(),
            })
            .collect();
        subnets.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(subnets)
    }
}
