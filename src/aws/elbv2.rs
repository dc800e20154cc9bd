//! Elastic Load Balancing (v2) reads: load balancers, listeners, target groups, target
//! health and tags, as the project's own types. The writes are in `elbv2/write.rs`.

mod write;

pub use write::ListenerAction;

use crate::aws::Operation;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, Listener, LoadBalancer, Tag, TargetGroup, TargetHealthDescription,
};
use aws_sdk_elasticloadbalancingv2::Client;

use super::settle::{self, LISTED_SETTLE};
use super::{need, paginate, sdk_error, try_join_all, Answer, Meter, Result, Round};
use crate::manifest::net;
use crate::model::{
    Headers, HealthCheck, LbAttr, LbAttributes, ObservedLb, ObservedListener, ObservedTg, Protocol,
    Redirect, RedirectStatus, ResponseHeader, Tags, TargetHealth,
};

/// The largest page the describe operations give.
const PAGE_SIZE: i32 = 400;

/// The most ARNs one `DescribeTags` takes.
pub const TAGS_PER_CALL: usize = 20;

/// One account and region's Elastic Load Balancing.
#[derive(Debug, Clone)]
pub struct Elbv2 {
    client: Client,
    meter: Meter,
}

impl Elbv2 {
    pub fn new(client: &Client, meter: &Meter) -> Elbv2 {
        Elbv2 {
            client: client.clone(),
            meter: meter.clone(),
        }
    }

    /// Every load balancer of the account and region, without listeners or tags (every
    /// page): asking by name fails as soon as one name is missing on AWS, and moto's answer
    /// then depends on the order of the names. One named in `names` that cannot be read is
    /// an error; any other (a network or gateway load balancer, say) is left out then.
    pub async fn load_balancers(
        &self,
        names: &[String],
        after: Round,
    ) -> Result<Answer<Vec<ObservedLb>>> {
        const OP: Operation = Operation::DescribeLoadBalancers;
        paginate(
            &self.meter,
            OP,
            after,
            |marker: Option<String>| async move {
                let out = self
                    .client
                    .describe_load_balancers()
                    .page_size(PAGE_SIZE)
                    .set_marker(marker)
                    .send()
                    .await
                    .map_err(|e| sdk_error(OP, e))?;
                let mut all = Vec::new();
                for lb in out.load_balancers() {
                    let named = lb
                        .load_balancer_name()
                        .is_some_and(|n| names.iter().any(|want| want == n));
                    match load_balancer(lb) {
                        Ok(l) => all.push(l),
                        Err(e) if named => return Err(e),
                        Err(_) => {}
                    }
                }
                Ok((all, out.next_marker().map(str::to_owned)))
            },
        )
        .await
    }

    /// Every target group, without tags or targets (the caller keeps those it speaks
    /// about: by name, by ARN, by load balancer); one whose name starts with one of
    /// `prefixes` that cannot be read is an error, any other is left out.
    pub async fn target_groups(
        &self,
        prefixes: &[String],
        after: Round,
    ) -> Result<Answer<Vec<ObservedTg>>> {
        const OP: Operation = Operation::DescribeTargetGroups;
        paginate(
            &self.meter,
            OP,
            after,
            |marker: Option<String>| async move {
                let out = self
                    .client
                    .describe_target_groups()
                    .page_size(PAGE_SIZE)
                    .set_marker(marker)
                    .send()
                    .await
                    .map_err(|e| sdk_error(OP, e))?;
                let mut kept = Vec::new();
                for tg in out.target_groups() {
                    let named = tg
                        .target_group_name()
                        .is_some_and(|n| prefixes.iter().any(|p| n.starts_with(p.as_str())));
                    match target_group(tg) {
                        Ok(t) => kept.push(t),
                        Err(e) if named => return Err(e),
                        Err(_) => {}
                    }
                }
                Ok((kept, out.next_marker().map(str::to_owned)))
            },
        )
        .await
    }

    /// The listeners of a load balancer, by port; `None` when the load balancer no longer
    /// exists.
    pub async fn listeners(
        &self,
        load_balancer_arn: &str,
        after: Round,
    ) -> Result<Answer<Option<Vec<ObservedListener>>>> {
        const OP: Operation = Operation::DescribeListeners;
        let gone = AtomicBool::new(false);
        let gone = &gone;
        let answer = paginate(
            &self.meter,
            OP,
            after,
            |marker: Option<String>| async move {
                let sent = self
                    .client
                    .describe_listeners()
                    .load_balancer_arn(load_balancer_arn)
                    .page_size(PAGE_SIZE)
                    .set_marker(marker)
                    .send()
                    .await;
                match sent {
                    Ok(out) => {
                        let listeners = out
                            .listeners()
                            .iter()
                            .map(listener)
                            .collect::<Result<Vec<_>>>()?;
                        Ok((listeners, out.next_marker().map(str::to_owned)))
                    }
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|e| e.is_load_balancer_not_found_exception()) =>
                    {
                        gone.store(true, Ordering::Relaxed);
                        Ok((Vec::new(), None))
                    }
                    Err(e) => Err(sdk_error(OP, e)),
                }
            },
        )
        .await?;
        let mut listeners = answer.value;
        listeners.sort_by_key(|l| l.port);
        Ok(Answer {
            value: (!gone.load(Ordering::Relaxed)).then_some(listeners),
            round: answer.round,
        })
    }

    /// The tags of each ARN (load balancers and target groups may be mixed), in calls of
    /// [`TAGS_PER_CALL`] sent together. An ARN that no longer exists is left out.
    pub async fn tags(
        &self,
        arns: &[String],
        after: Round,
    ) -> Result<Answer<BTreeMap<String, Tags>>> {
        let batches = try_join_all(
            arns.chunks(TAGS_PER_CALL)
                .map(|batch| self.tag_batch(batch, after)),
        )
        .await?;
        let mut tags = BTreeMap::new();
        let mut round = after;
        for batch in batches {
            tags.extend(batch.value);
            round = round.max(batch.round);
        }
        // A batch AWS refused for one unknown ARN left them all out. Each ARN was just
        // listed or created: one missing is asked again alone until it answers, and left
        // out only once it has been gone for a while.
        let missing: Vec<&String> = arns.iter().filter(|a| !tags.contains_key(*a)).collect();
        let settled = try_join_all(missing.into_iter().map(|arn| {
            settle::until_found(
                LISTED_SETTLE,
                |a: &Answer<BTreeMap<String, Tags>>| !a.value.is_empty(),
                move || self.tag_batch(std::slice::from_ref(arn), round),
            )
        }))
        .await?;
        for a in settled {
            tags.extend(a.value);
            round = round.max(a.round);
        }
        Ok(Answer { value: tags, round })
    }

    async fn tag_batch(
        &self,
        arns: &[String],
        after: Round,
    ) -> Result<Answer<BTreeMap<String, Tags>>> {
        const OP: Operation = Operation::DescribeTags;
        // AWS refuses the whole call when one resource is unknown (deleted since it was
        // listed, or not known everywhere yet): `tags` asks for each ARN this leaves out
        // alone.
        let Answer { value, round } = self
            .meter
            .read(
                OP,
                after,
                self.client
                    .describe_tags()
                    .set_resource_arns(Some(arns.to_vec()))
                    .send(),
                |e| {
                    e.is_load_balancer_not_found_exception()
                        || e.is_target_group_not_found_exception()
                },
            )
            .await?;
        let Some(out) = value else {
            return Ok(Answer {
                value: BTreeMap::new(),
                round,
            });
        };
        let mut tags = BTreeMap::new();
        for d in out.tag_descriptions() {
            let arn = need(d.resource_arn(), OP, "TagDescriptions.ResourceArn")?;
            tags.insert(arn.to_owned(), tag_map(d.tags()));
        }
        Ok(Answer { value: tags, round })
    }

    /// The health of each target registered in a target group, by id; `None` when the
    /// target group no longer exists.
    pub async fn target_health(
        &self,
        target_group_arn: &str,
        after: Round,
    ) -> Result<Answer<Option<Vec<TargetHealth>>>> {
        const OP: Operation = Operation::DescribeTargetHealth;
        let Answer { value, round } = self
            .meter
            .read(
                OP,
                after,
                self.client
                    .describe_target_health()
                    .target_group_arn(target_group_arn)
                    .send(),
                |e| e.is_target_group_not_found_exception(),
            )
            .await?;
        let value = value
            .map(|out| {
                let mut targets = out
                    .target_health_descriptions()
                    .iter()
                    .map(target_health)
                    .collect::<Result<Vec<_>>>()?;
                targets.sort_by(|a, b| a.id.cmp(&b.id));
                Ok::<_, super::Error>(targets)
            })
            .transpose()?;
        Ok(Answer { value, round })
    }
}

impl Elbv2 {
    /// A load balancer's managed attributes (AWS's default for any it does not describe);
    /// `None` when it no longer exists.
    pub async fn lb_attributes(
        &self,
        load_balancer_arn: &str,
        after: Round,
    ) -> Result<Answer<Option<LbAttributes>>> {
        const OP: Operation = Operation::DescribeLoadBalancerAttributes;
        let answer = self
            .meter
            .read(
                OP,
                after,
                self.client
                    .describe_load_balancer_attributes()
                    .load_balancer_arn(load_balancer_arn)
                    .send(),
                |e| e.is_load_balancer_not_found_exception(),
            )
            .await?;
        Ok(answer.map(|found| {
            found.map(|out| {
                LbAttr::from_aws(
                    out.attributes()
                        .iter()
                        .filter_map(|a| Some((a.key()?, a.value()?))),
                )
            })
        }))
    }

    /// The response headers a listener sets (its managed attributes not at their default);
    /// `None` when the listener no longer exists.
    pub async fn listener_headers(
        &self,
        listener_arn: &str,
        after: Round,
    ) -> Result<Answer<Option<Headers>>> {
        const OP: Operation = Operation::DescribeListenerAttributes;
        let answer = self
            .meter
            .read(
                OP,
                after,
                self.client
                    .describe_listener_attributes()
                    .listener_arn(listener_arn)
                    .send(),
                |e| e.is_listener_not_found_exception(),
            )
            .await?;
        Ok(answer.map(|found| {
            found.map(|out| {
                ResponseHeader::from_attributes(
                    out.attributes()
                        .iter()
                        .filter_map(|a| Some((a.key()?, a.value()?))),
                )
            })
        }))
    }
}

fn tag_map(tags: &[Tag]) -> Tags {
    tags.iter()
        .filter_map(|t| Some((t.key()?.to_owned(), t.value().unwrap_or("").to_owned())))
        .collect()
}

fn port(p: Option<i32>) -> u16 {
    // Ports AWS reports are within 1..65535; a target group of Lambda functions has none.
    p.and_then(|p| u16::try_from(p).ok()).unwrap_or(0)
}

fn load_balancer(lb: &LoadBalancer) -> Result<ObservedLb> {
    const OP: Operation = Operation::DescribeLoadBalancers;
    Ok(ObservedLb {
        arn: need(lb.load_balancer_arn(), OP, "LoadBalancerArn")?.to_owned(),
        name: need(lb.load_balancer_name(), OP, "LoadBalancerName")?.to_owned(),
        dns_name: net::normalize_dns(lb.dns_name().unwrap_or("")),
        hosted_zone_id: lb.canonical_hosted_zone_id().unwrap_or("").to_owned(),
        scheme: lb.scheme().map_or("", |s| s.as_str()).to_owned(),
        state: lb
            .state()
            .and_then(|s| s.code())
            .map_or("", |c| c.as_str())
            .into(),
        vpc: lb.vpc_id().unwrap_or("").to_owned(),
        subnets: lb
            .availability_zones()
            .iter()
            .filter_map(|az| az.subnet_id().map(str::to_owned))
            .collect(),
        security_groups: lb.security_groups().iter().cloned().collect(),
        tags: Tags::new(),
        listeners: Vec::new(),
        attributes: None,
    })
}

fn listener(l: &Listener) -> Result<ObservedListener> {
    const OP: Operation = Operation::DescribeListeners;
    let (forward, standby) = forward_targets(l.default_actions());
    let protocol = Protocol::from(l.protocol().map_or("", |p| p.as_str()));
    // Only HTTPS and TLS listeners use certificates. AWS drops them when a listener changes
    // to HTTP; moto keeps reporting the old one, which would read as drift for ever.
    let certificates = if matches!(protocol, Protocol::Https | Protocol::Tls) {
        l.certificates()
            .iter()
            .filter_map(|c| c.certificate_arn().map(str::to_owned))
            .collect()
    } else {
        Vec::new()
    };
    let redirect = l
        .default_actions()
        .iter()
        .filter(|a| a.r#type() == Some(&ActionTypeEnum::Redirect))
        .find_map(|a| a.redirect_config())
        .map(|r| Redirect {
            // Absent parts keep the request's own, as `#{...}` says.
            protocol: r.protocol().unwrap_or("#{protocol}").into(),
            port: r.port().unwrap_or("#{port}").to_owned(),
            host: r.host().unwrap_or("#{host}").to_owned(),
            path: r.path().unwrap_or("/#{path}").to_owned(),
            query: r.query().unwrap_or("#{query}").to_owned(),
            status: r
                .status_code()
                .map_or(RedirectStatus::Permanent, |c| c.as_str().into()),
        });
    Ok(ObservedListener {
        arn: need(l.listener_arn(), OP, "ListenerArn")?.to_owned(),
        port: port(l.port()),
        protocol,
        certificates,
        forward,
        standby,
        redirect,
        ssl_policy: l.ssl_policy().map(str::to_owned),
        headers: None,
    })
}

/// Target group ARNs of the forward action, once each, in the order AWS gives them. AWS
/// reports a single-group forward both as `TargetGroupArn` and in `ForwardConfig`.
/// The default action's target groups: those sent traffic, and those attached with weight
/// zero (health-checked, sent nothing).
fn forward_targets(actions: &[Action]) -> (Vec<String>, Vec<String>) {
    let mut forward: Vec<String> = Vec::new();
    let mut standby: Vec<String> = Vec::new();
    let mut forwards: Vec<&Action> = actions
        .iter()
        .filter(|a| a.r#type() == Some(&ActionTypeEnum::Forward))
        .collect();
    forwards.sort_by_key(|a| a.order().unwrap_or(i32::MAX));
    let add = |list: &mut Vec<String>, arn: &str| {
        if !list.iter().any(|known| known == arn) {
            list.push(arn.to_owned());
        }
    };
    for a in forwards {
        if let Some(arn) = a.target_group_arn() {
            add(&mut forward, arn);
        }
        let tuples = a
            .forward_config()
            .map(|f| f.target_groups())
            .unwrap_or_default();
        for t in tuples {
            if let Some(arn) = t.target_group_arn() {
                if t.weight() == Some(0) {
                    add(&mut standby, arn);
                } else {
                    add(&mut forward, arn);
                }
            }
        }
    }
    standby.retain(|arn| !forward.contains(arn));
    (forward, standby)
}

fn target_group(tg: &TargetGroup) -> Result<ObservedTg> {
    const OP: Operation = Operation::DescribeTargetGroups;
    let traffic_port = port(tg.port());
    let protocol = Protocol::from(tg.protocol().map_or("", |p| p.as_str()));
    let health = HealthCheck {
        protocol: tg
            .health_check_protocol()
            .map_or(protocol.clone(), |p| p.as_str().into()),
        // `traffic-port`, or a number that may equal the traffic port.
        port: HealthCheck::normal_port(
            tg.health_check_port().and_then(|p| p.parse().ok()),
            traffic_port,
        ),
        path: tg.health_check_path().unwrap_or("").to_owned(),
        matcher: tg
            .matcher()
            .and_then(|m| m.http_code().or(m.grpc_code()))
            .unwrap_or("")
            .replace(' ', ""),
        // AWS's defaults for an HTTP target group, should an answer leave one out.
        interval_seconds: tg.health_check_interval_seconds().unwrap_or(30),
        timeout_seconds: tg.health_check_timeout_seconds().unwrap_or(5),
        healthy_threshold: tg.healthy_threshold_count().unwrap_or(5),
        unhealthy_threshold: tg.unhealthy_threshold_count().unwrap_or(2),
    };
    Ok(ObservedTg {
        arn: need(tg.target_group_arn(), OP, "TargetGroupArn")?.to_owned(),
        name: need(tg.target_group_name(), OP, "TargetGroupName")?.to_owned(),
        port: traffic_port,
        protocol,
        vpc: tg.vpc_id().unwrap_or("").to_owned(),
        health,
        tags: Tags::new(),
        load_balancers: tg.load_balancer_arns().to_vec(),
        targets: Vec::new(),
    })
}

fn target_health(d: &TargetHealthDescription) -> Result<TargetHealth> {
    const OP: Operation = Operation::DescribeTargetHealth;
    let id = need(d.target().and_then(|t| t.id()), OP, "Target.Id")?;
    let health = d.target_health();
    Ok(TargetHealth {
        id: id.to_owned(),
        state: health
            .and_then(|h| h.state())
            .map_or("", |s| s.as_str())
            .into(),
        reason: health.and_then(|h| h.reason()).map(|r| r.as_str().into()),
        description: health.and_then(|h| h.description()).map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::HealthPort;
    use aws_sdk_elasticloadbalancingv2::types::{
        ForwardActionConfig, Matcher, ProtocolEnum, TargetGroupTuple,
    };

    #[test]
    fn forward_lists_each_group_once() {
        let single = Action::builder()
            .r#type(ActionTypeEnum::Forward)
            .target_group_arn("tg-a")
            .forward_config(
                ForwardActionConfig::builder()
                    .target_groups(TargetGroupTuple::builder().target_group_arn("tg-a").build())
                    .build(),
            )
            .build();
        assert_eq!(
            forward_targets(&[single]),
            (vec!["tg-a".to_owned()], vec![])
        );
        let weighted = Action::builder()
            .r#type(ActionTypeEnum::Forward)
            .forward_config(
                ForwardActionConfig::builder()
                    .target_groups(TargetGroupTuple::builder().target_group_arn("tg-a").build())
                    .target_groups(TargetGroupTuple::builder().target_group_arn("tg-b").build())
                    .target_groups(
                        TargetGroupTuple::builder()
                            .target_group_arn("tg-c")
                            .weight(0)
                            .build(),
                    )
                    .build(),
            )
            .build();
        let (forward, standby) = forward_targets(&[weighted]);
        assert_eq!(forward, vec!["tg-a", "tg-b"]);
        assert_eq!(standby, vec!["tg-c"]);
    }

    #[test]
    fn health_port_on_the_traffic_port_is_normalised() {
        let tg = |hc_port: &str| {
            TargetGroup::builder()
                .target_group_arn("arn")
                .target_group_name("www-example-app")
                .protocol(ProtocolEnum::Http)
                .port(8088)
                .health_check_port(hc_port)
                .matcher(Matcher::builder().http_code("200, 302").build())
                .build()
        };
        let port_of = |hc: &str| target_group(&tg(hc)).map(|t| t.health.port).ok();
        assert_eq!(port_of("traffic-port"), Some(HealthPort::TrafficPort));
        assert_eq!(port_of("8088"), Some(HealthPort::TrafficPort));
        assert_eq!(port_of("80"), Some(HealthPort::Port(80)));
        assert_eq!(
            target_group(&tg("80")).map(|t| t.health.matcher).ok(),
            Some("200,302".to_owned())
        );
    }
}
