//! EC2 reads: security groups with their ingress rules, one rule per (protocol, port range,
//! source), as the project's own types. The writes are in `ec2/write.rs`.

mod inventory;
mod lock;
mod write;

use crate::aws::Operation;
use aws_sdk_ec2::types::{Filter, IpPermission, SecurityGroup};
use aws_sdk_ec2::Client;

use super::{need, paginate, sdk_error, try_join_all, Answer, Meter, Result, Round};
use crate::manifest::net;
use crate::model::{IpProtocol, ObservedRule, ObservedSg, RuleKey, Source, Tags};

/// The largest page `DescribeSecurityGroups` gives.
const PAGE_SIZE: i32 = 1000;

/// The most values one filter of a describe takes.
pub const FILTER_VALUES: usize = 200;

/// One account and region's EC2 security groups.
#[derive(Debug, Clone)]
pub struct Ec2 {
    client: Client,
    meter: Meter,
}

impl Ec2 {
    pub fn new(client: &Client, meter: &Meter) -> Ec2 {
        Ec2 {
            client: client.clone(),
            meter: meter.clone(),
        }
    }

    /// Every security group of these VPCs, in one request (and its pages) per
    /// [`FILTER_VALUES`] VPCs.
    pub async fn security_groups_in_vpcs(
        &self,
        vpcs: &[String],
        after: Round,
    ) -> Result<Answer<Vec<ObservedSg>>> {
        self.describe_chunked("vpc-id", vpcs, after).await
    }

    /// The security groups with these ids, wherever they live. An id that does not exist
    /// is left out (asked by filter, so that it is not an error as `GroupIds` would make it).
    pub async fn security_groups_by_id(
        &self,
        ids: &[String],
        after: Round,
    ) -> Result<Answer<Vec<ObservedSg>>> {
        self.describe_chunked("group-id", ids, after).await
    }

    /// One filtered describe per [`FILTER_VALUES`] values, sent together; none for none.
    async fn describe_chunked(
        &self,
        filter: &str,
        values: &[String],
        after: Round,
    ) -> Result<Answer<Vec<ObservedSg>>> {
        chunked(
            values,
            after,
            |g: &ObservedSg| g.id.clone(),
            |chunk| self.describe(filter, chunk, after),
        )
        .await
    }

    async fn describe(
        &self,
        filter: &str,
        values: &[String],
        after: Round,
    ) -> Result<Answer<Vec<ObservedSg>>> {
        const OP: Operation = Operation::DescribeSecurityGroups;
        let filter = &self::filter(filter, values);
        let mut answer = paginate(&self.meter, OP, after, |token: Option<String>| async move {
            let out = self
                .client
                .describe_security_groups()
                .filters(filter.clone())
                .max_results(PAGE_SIZE)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| sdk_error(OP, e))?;
            let groups = out
                .security_groups()
                .iter()
                .map(security_group)
                .collect::<Result<Vec<_>>>()?;
            Ok((groups, out.next_token().map(str::to_owned)))
        })
        .await?;
        answer.value.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(answer)
    }
}

/// A describe of many values by filter: one request per [`FILTER_VALUES`] values, sent
/// together (none for none), as one answer with every item once (by `key`), sorted, at the
/// latest round.
async fn chunked<'a, T, F, Fut>(
    values: &'a [String],
    after: Round,
    key: impl Fn(&T) -> String,
    describe: F,
) -> Result<Answer<Vec<T>>>
where
    F: Fn(&'a [String]) -> Fut,
    Fut: std::future::Future<Output = Result<Answer<Vec<T>>>>,
{
    let answers = try_join_all(values.chunks(FILTER_VALUES).map(describe)).await?;
    let mut value: Vec<T> = Vec::new();
    let mut round = after;
    for a in answers {
        value.extend(a.value);
        round = round.max(a.round);
    }
    value.sort_by_key(&key);
    value.dedup_by(|a, b| key(a) == key(b));
    Ok(Answer { value, round })
}

/// An EC2 filter of one name and several values.
fn filter(name: &str, values: &[String]) -> Filter {
    Filter::builder()
        .name(name)
        .set_values(Some(values.to_vec()))
        .build()
}

fn security_group(g: &SecurityGroup) -> Result<ObservedSg> {
    const OP: Operation = Operation::DescribeSecurityGroups;
    Ok(ObservedSg {
        id: need(g.group_id(), OP, "GroupId")?.to_owned(),
        name: g.group_name().unwrap_or("").to_owned(),
        vpc: g.vpc_id().unwrap_or("").to_owned(),
        description: g.description().unwrap_or("").to_owned(),
        tags: g
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?.to_owned(), t.value().unwrap_or("").to_owned())))
            .collect::<Tags>(),
        rules: rules(g.ip_permissions()),
    })
}

/// Ingress permissions expanded to one rule per (protocol, port range, source), sorted by
/// key. A permission holds several sources; AWS and moto group them differently, and a
/// rule is added and revoked one source at a time. Rule ids are not in this answer (only
/// `DescribeSecurityGroupRules` has them, at one more request), so `id` stays `None`.
fn rules(permissions: &[IpPermission]) -> Vec<ObservedRule> {
    let mut rules = Vec::new();
    for p in permissions {
        let protocol = protocol(p.ip_protocol().unwrap_or("-1"));
        // All-traffic permissions carry no ports; AWS's own rule listing says -1 for them.
        let (from_port, to_port) = (p.from_port().unwrap_or(-1), p.to_port().unwrap_or(-1));
        let mut add = |source: Source, description: Option<&str>| {
            rules.push(ObservedRule {
                id: None,
                key: RuleKey {
                    protocol: protocol.clone(),
                    from_port,
                    to_port,
                    source,
                },
                description: description.filter(|d| !d.is_empty()).map(str::to_owned),
            });
        };
        for r in p.ip_ranges() {
            if let Some(cidr) = r.cidr_ip() {
                add(Source::Cidr(canonical_cidr(cidr)), r.description());
            }
        }
        for r in p.ipv6_ranges() {
            if let Some(cidr) = r.cidr_ipv6() {
                add(Source::Cidr(canonical_cidr(cidr)), r.description());
            }
        }
        for pair in p.user_id_group_pairs() {
            if let Some(id) = pair.group_id() {
                add(Source::Group(id.to_owned()), pair.description());
            }
        }
        // The model has no prefix-list source: keep the id as the (unparseable) network,
        // so that the rule is seen rather than silently dropped.
        for pl in p.prefix_list_ids() {
            if let Some(id) = pl.prefix_list_id() {
                add(Source::Cidr(id.to_owned()), pl.description());
            }
        }
    }
    rules.sort_by(|a, b| a.key.cmp(&b.key));
    rules
}

/// A CIDR in canonical form, or as given when it does not parse.
fn canonical_cidr(cidr: &str) -> String {
    net::parse_cidr(cidr).map_or_else(|_| cidr.to_owned(), |c| c.to_string())
}

/// Protocol names as the manifest spells them (AWS answers with a name for these and a
/// number for the others).
fn protocol(p: &str) -> IpProtocol {
    match p {
        "6" => IpProtocol::Tcp,
        "17" => "udp".into(),
        "1" => "icmp".into(),
        "58" => "icmpv6".into(),
        other => other.to_ascii_lowercase().into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::types::{IpRange, Ipv6Range, UserIdGroupPair};

    #[test]
    fn permissions_expand_to_one_rule_per_source() {
        let p = IpPermission::builder()
            .ip_protocol("tcp")
            .from_port(80)
            .to_port(80)
            .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
            .ip_ranges(
                IpRange::builder()
                    .cidr_ip("198.51.100.7/24")
                    .description("not canonical")
                    .build(),
            )
            .ipv6_ranges(Ipv6Range::builder().cidr_ipv6("2001:0db8::/32").build())
            .user_id_group_pairs(UserIdGroupPair::builder().group_id("sg-0123abcd").build())
            .build();
        let all = IpPermission::builder()
            .ip_protocol("-1")
            .ip_ranges(IpRange::builder().cidr_ip("10.0.0.0/8").build())
            .build();
        let got: Vec<String> = rules(&[p, all]).iter().map(|r| r.key.to_string()).collect();
        assert_eq!(
            got,
            vec![
                "all/-1 from 10.0.0.0/8",
                "tcp/80 from 0.0.0.0/0",
                "tcp/80 from 198.51.100.7/24",
                "tcp/80 from 2001:db8::/32",
                "tcp/80 from sg-0123abcd",
            ]
        );
    }
}
