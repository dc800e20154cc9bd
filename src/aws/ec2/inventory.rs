//! EC2 reads for `reconcile init`: the instances behind an address, their neighbours in a
//! security group, and the VPC's subnets with their availability zones.

use crate::aws::Operation;
use aws_sdk_ec2::types::Instance;

use super::{chunked, Ec2};
use crate::aws::{paginate, sdk_error, Answer, Result, Round};
use crate::model::{ObservedInstance, ObservedSubnet};

fn instance(i: &Instance) -> ObservedInstance {
    ObservedInstance {
        id: i.instance_id().unwrap_or_default().to_owned(),
        state: i
            .state()
            .and_then(|s| s.name())
            .map_or("unknown", |n| n.as_str())
            .into(),
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
        Ok(self.instances(filter, values, Round::START).await?.value)
    }

    /// The instances with these ids. Asked by filter: an id that does not exist is left
    /// out, not an error that would hide the others.
    pub async fn instances_by_id(
        &self,
        ids: &[String],
        after: Round,
    ) -> Result<Answer<Vec<ObservedInstance>>> {
        self.instances("instance-id", ids, after).await
    }

    /// The instances matching an EC2 filter, in the read's rounds.
    pub async fn instances_by_filter(
        &self,
        filter: &str,
        values: &[String],
        after: Round,
    ) -> Result<Answer<Vec<ObservedInstance>>> {
        self.instances(filter, values, after).await
    }

    /// One request per [`super::FILTER_VALUES`] values, sent together; none for none.
    async fn instances(
        &self,
        filter: &str,
        values: &[String],
        after: Round,
    ) -> Result<Answer<Vec<ObservedInstance>>> {
        chunked(
            values,
            after,
            |i: &ObservedInstance| i.id.clone(),
            |chunk| self.instances_answer(filter, chunk, after),
        )
        .await
    }

    async fn instances_answer(
        &self,
        filter: &str,
        values: &[String],
        after: Round,
    ) -> Result<Answer<Vec<ObservedInstance>>> {
        const OP: Operation = Operation::DescribeInstances;
        let filter = &super::filter(filter, values);
        paginate(&self.meter, OP, after, |token: Option<String>| async move {
            let out = self
                .client
                .describe_instances()
                .filters(filter.clone())
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| sdk_error(OP, e))?;
            let found = out
                .reservations()
                .iter()
                .flat_map(|r| r.instances())
                .map(instance)
                .collect();
            Ok((found, out.next_token().map(str::to_owned)))
        })
        .await
    }

    /// The subnets of a VPC with their availability zones.
    pub async fn subnets(&self, vpc: &str) -> Result<Vec<ObservedSubnet>> {
        Ok(self
            .subnets_where("vpc-id", &[vpc.to_owned()], Round::START)
            .await?
            .value)
    }

    /// The subnets with these ids, wherever they are (left out when they do not exist).
    pub async fn subnets_by_id(
        &self,
        ids: &[String],
        after: Round,
    ) -> Result<Answer<Vec<ObservedSubnet>>> {
        self.subnets_where("subnet-id", ids, after).await
    }

    /// One request per [`super::FILTER_VALUES`] values, sent together; none for none.
    async fn subnets_where(
        &self,
        filter: &str,
        values: &[String],
        after: Round,
    ) -> Result<Answer<Vec<ObservedSubnet>>> {
        chunked(
            values,
            after,
            |s: &ObservedSubnet| s.id.clone(),
            |chunk| self.subnets_answer(filter, chunk, after),
        )
        .await
    }

    async fn subnets_answer(
        &self,
        filter: &str,
        values: &[String],
        after: Round,
    ) -> Result<Answer<Vec<ObservedSubnet>>> {
        const OP: Operation = Operation::DescribeSubnets;
        let filter = &super::filter(filter, values);
        paginate(&self.meter, OP, after, |token: Option<String>| async move {
            let out = self
                .client
                .describe_subnets()
                .filters(filter.clone())
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| sdk_error(OP, e))?;
            let found = out
                .subnets()
                .iter()
                .map(|s| ObservedSubnet {
                    id: s.subnet_id().unwrap_or_default().to_owned(),
                    zone: s.availability_zone().unwrap_or_default().to_owned(),
                    vpc: s.vpc_id().unwrap_or_default().to_owned(),
                })
                .collect();
            Ok((found, out.next_token().map(str::to_owned)))
        })
        .await
    }
}
