//! Elastic Load Balancing writes: target groups and their targets, the load balancer, its
//! listeners. Each is safe to repeat: a create finds the stack's own resource from an
//! earlier run (looked up first where moto would not refuse a duplicate), a delete of
//! something already gone is success.

use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, Certificate, ForwardActionConfig, ListenerAttribute,
    LoadBalancerAttribute, LoadBalancerSchemeEnum, LoadBalancerTypeEnum, Matcher, ProtocolEnum,
    RedirectActionConfig, RedirectActionStatusCodeEnum, Tag, TargetDescription, TargetGroupTuple,
    TargetTypeEnum,
};

use super::{load_balancer, Elbv2};
use crate::aws::Operation;
use crate::aws::{need, settle, Error, Result, Round};
use crate::model::{
    owned_by, HealthCheck, HealthPort, LbAttr, ObservedLb, Protocol, Redirect, RedirectStatus,
    ResponseHeader, Tags,
};

/// A listener's default action as the create and modify calls take it.
#[derive(Debug, Clone, Copy)]
pub enum ListenerAction<'a> {
    /// Target groups with their weights (0: attached, health-checked, sent nothing).
    Forward(&'a [(String, u32)]),
    Redirect(&'a Redirect),
}
use crate::names;

impl Elbv2 {
    /// Creates a target group of instances, tagged `tags` at creation; returns its ARN.
    /// moto refuses a name that exists (`DuplicateTargetGroupName`, even with identical
    /// settings, where AWS returns the existing group): then the group of that name is
    /// returned if it carries the same `reconcile:stack` tag, else the error.
    pub async fn create_target_group(
        &self,
        name: &str,
        port: u16,
        protocol: &Protocol,
        vpc: &str,
        health: &HealthCheck,
        tags: &Tags,
    ) -> Result<String> {
        const OP: Operation = Operation::CreateTargetGroup;
        let hc = Health::of(health);
        let sent = self
            .meter
            .send(
                OP,
                self.client
                    .create_target_group()
                    .name(name)
                    .protocol(ProtocolEnum::from(protocol.as_str()))
                    .port(i32::from(port))
                    .vpc_id(vpc)
                    .target_type(TargetTypeEnum::Instance)
                    .health_check_enabled(true)
                    .health_check_protocol(hc.protocol)
                    .health_check_port(hc.port)
                    .set_health_check_path(hc.path)
                    .set_matcher(hc.matcher)
                    .health_check_interval_seconds(health.interval_seconds)
                    .health_check_timeout_seconds(health.timeout_seconds)
                    .healthy_threshold_count(health.healthy_threshold)
                    .unhealthy_threshold_count(health.unhealthy_threshold)
                    .set_tags(Some(elb_tags(tags)))
                    .send(),
            )
            .await;
        match sent {
            Ok(out) => {
                let tg = out.target_groups().first();
                let arn = need(tg.and_then(|t| t.target_group_arn()), OP, "TargetGroupArn")?;
                settle::created(arn);
                Ok(arn.to_owned())
            }
            Err(e) if e.code() == Some("DuplicateTargetGroupName") => {
                match self.target_group_named(name, tags).await? {
                    Some(arn) => Ok(arn),
                    None => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// The ARN of the target group `name` if it carries the `reconcile:stack` tag of `tags`.
    async fn target_group_named(&self, name: &str, tags: &Tags) -> Result<Option<String>> {
        const OP: Operation = Operation::DescribeTargetGroups;
        let Some(stack) = tags.get(names::STACK_TAG) else {
            return Ok(None);
        };
        let sent = self
            .meter
            .send(OP, self.client.describe_target_groups().names(name).send())
            .await;
        let out = match sent {
            Ok(out) => out,
            // Deleted since the create was refused.
            Err(e) if e.code() == Some("TargetGroupNotFound") => return Ok(None),
            Err(e) => return Err(e),
        };
        let arns: Vec<String> = out
            .target_groups()
            .iter()
            .filter(|t| t.target_group_name() == Some(name))
            .filter_map(|t| t.target_group_arn().map(str::to_owned))
            .collect();
        let found = self.tags(&arns, Round::START).await?.value;
        Ok(arns
            .into_iter()
            .find(|arn| found.get(arn).is_some_and(|t| owned_by(t, stack))))
    }

    /// Sets a target group's health check.
    pub async fn modify_health_check(&self, arn: &str, health: &HealthCheck) -> Result<()> {
        const OP: Operation = Operation::ModifyTargetGroup;
        let hc = Health::of(health);
        self.meter
            .send(
                OP,
                self.client
                    .modify_target_group()
                    .target_group_arn(arn)
                    .health_check_enabled(true)
                    .health_check_protocol(hc.protocol)
                    .health_check_port(hc.port)
                    .set_health_check_path(hc.path)
                    .set_matcher(hc.matcher)
                    .health_check_interval_seconds(health.interval_seconds)
                    .health_check_timeout_seconds(health.timeout_seconds)
                    .healthy_threshold_count(health.healthy_threshold)
                    .unhealthy_threshold_count(health.unhealthy_threshold)
                    .send(),
            )
            .await?;
        Ok(())
    }

    /// Sets `tags` on a load balancer or target group; keys not named are left as they are.
    pub async fn add_tags(&self, arn: &str, tags: &Tags) -> Result<()> {
        const OP: Operation = Operation::AddTags;
        self.meter
            .send(
                OP,
                self.client
                    .add_tags()
                    .resource_arns(arn)
                    .set_tags(Some(elb_tags(tags)))
                    .send(),
            )
            .await?;
        Ok(())
    }

    /// Registers instances on the group's port (registering one twice is no change).
    pub async fn register_targets(&self, arn: &str, ids: &[String]) -> Result<()> {
        const OP: Operation = Operation::RegisterTargets;
        if ids.is_empty() {
            return Ok(());
        }
        self.meter
            .send(
                OP,
                self.client
                    .register_targets()
                    .target_group_arn(arn)
                    .set_targets(Some(targets(ids)))
                    .send(),
            )
            .await?;
        Ok(())
    }

    /// Deregisters instances. moto refuses an instance that is not registered
    /// (`InvalidTarget`): then the registered ones are read and only they are deregistered,
    /// so that a repeat succeeds.
    pub async fn deregister_targets(&self, arn: &str, ids: &[String]) -> Result<()> {
        const OP: Operation = Operation::DeregisterTargets;
        let send = |ids: Vec<String>| async move {
            self.meter
                .send(
                    OP,
                    self.client
                        .deregister_targets()
                        .target_group_arn(arn)
                        .set_targets(Some(targets(&ids)))
                        .send(),
                )
                .await
                .map(|_| ())
        };
        if ids.is_empty() {
            return Ok(());
        }
        match send(ids.to_vec()).await {
            Err(e) if e.code() == Some("InvalidTarget") => {
                let Some(registered) = self.target_health(arn, Round::START).await?.value else {
                    return Err(e);
                };
                // A draining target is already on its way out: deregistered.
                let left: Vec<String> = ids
                    .iter()
                    .filter(|id| {
                        registered
                            .iter()
                            .any(|t| &t.id == *id && t.state != crate::model::TargetState::Draining)
                    })
                    .cloned()
                    .collect();
                if left.is_empty() {
                    Ok(())
                } else {
                    send(left).await
                }
            }
            other => other,
        }
    }

    /// Deletes a target group; one already gone is success. A group a listener still
    /// forwards to is AWS's `ResourceInUse`, an error.
    pub async fn delete_target_group(&self, arn: &str) -> Result<()> {
        const OP: Operation = Operation::DeleteTargetGroup;
        let sent = self
            .meter
            .send(
                OP,
                self.client
                    .delete_target_group()
                    .target_group_arn(arn)
                    .send(),
            )
            .await;
        match sent {
            Err(e) if e.code() == Some("TargetGroupNotFound") => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// Creates an application load balancer tagged `tags` at creation, and returns it as
    /// created (state `provisioning` as a rule, no listeners, the tags given). A load
    /// balancer of that name that carries the same `reconcile:stack` tag (an earlier run
    /// that stopped after its create) is returned instead, as read; one that does not is
    /// [`Error::NotOwned`]. The name is looked up first because moto creates a second load
    /// balancer with the same name where AWS would return the first.
    pub async fn create_load_balancer(
        &self,
        name: &str,
        scheme: &str,
        subnets: &[String],
        security_groups: &[String],
        tags: &Tags,
    ) -> Result<ObservedLb> {
        const OP: Operation = Operation::CreateLoadBalancer;
        // moto creates a second load balancer with the same name, so the SDK's own retry
        // of a create whose answer was lost would make a duplicate: each attempt looks
        // first, and the create itself is sent once per attempt.
        let looked = look_first(
            || self.load_balancer_named(name, tags),
            || async {
                self.meter
                    .send(
                        OP,
                        self.client
                            .create_load_balancer()
                            .name(name)
                            .r#type(LoadBalancerTypeEnum::Application)
                            .scheme(LoadBalancerSchemeEnum::from(scheme))
                            .set_subnets(Some(subnets.to_vec()))
                            .set_security_groups(Some(security_groups.to_vec()))
                            .set_tags(Some(elb_tags(tags)))
                            .customize()
                            .config_override(no_sdk_retries())
                            .send(),
                    )
                    .await
            },
        )
        .await?;
        let out = match looked {
            Looked::Found(existing) => return Ok(existing),
            Looked::Created(out) => out,
        };
        let created = need(out.load_balancers().first(), OP, "LoadBalancers")?;
        let mut lb = load_balancer(created)?;
        settle::created(&lb.arn);
        lb.tags = tags.clone();
        Ok(lb)
    }

    /// The stack's load balancer named `name`, with its tags; `None` when there is none,
    /// [`Error::NotOwned`] when every one of that name belongs to someone else.
    async fn load_balancer_named(&self, name: &str, tags: &Tags) -> Result<Option<ObservedLb>> {
        const OP: Operation = Operation::DescribeLoadBalancers;
        let sent = self
            .meter
            .send(OP, self.client.describe_load_balancers().names(name).send())
            .await;
        let out = match sent {
            Ok(out) => out,
            Err(e) if e.code() == Some("LoadBalancerNotFound") => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut found = out
            .load_balancers()
            .iter()
            .filter(|lb| lb.load_balancer_name() == Some(name))
            .map(load_balancer)
            .collect::<Result<Vec<_>>>()?;
        if found.is_empty() {
            return Ok(None);
        }
        let arns: Vec<String> = found.iter().map(|lb| lb.arn.clone()).collect();
        let mut by_arn = self.tags(&arns, Round::START).await?.value;
        for lb in &mut found {
            lb.tags = by_arn.remove(&lb.arn).unwrap_or_default();
        }
        let stack = tags.get(names::STACK_TAG);
        found.sort_by(|a, b| a.arn.cmp(&b.arn));
        match found
            .into_iter()
            .find(|lb| stack.is_some_and(|s| owned_by(&lb.tags, s)))
        {
            Some(lb) => Ok(Some(lb)),
            None => Err(Error::NotOwned {
                kind: "load balancer",
                name: name.to_owned(),
            }),
        }
    }

    /// The state of a load balancer; `None` when it no longer exists.
    pub async fn load_balancer_state(&self, arn: &str) -> Result<Option<crate::model::LbState>> {
        const OP: Operation = Operation::DescribeLoadBalancers;
        let sent = self
            .meter
            .send(
                OP,
                self.client
                    .describe_load_balancers()
                    .load_balancer_arns(arn)
                    .send(),
            )
            .await;
        match sent {
            Ok(out) => Ok(out
                .load_balancers()
                .iter()
                .find(|lb| lb.load_balancer_arn() == Some(arn))
                .map(|lb| {
                    lb.state()
                        .and_then(|s| s.code())
                        .map_or("", |c| c.as_str())
                        .into()
                })),
            Err(e) if e.code() == Some("LoadBalancerNotFound") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sets the subnets of a load balancer (the whole set).
    pub async fn set_subnets(&self, arn: &str, subnets: &[String]) -> Result<()> {
        const OP: Operation = Operation::SetSubnets;
        self.meter
            .send(
                OP,
                self.client
                    .set_subnets()
                    .load_balancer_arn(arn)
                    .set_subnets(Some(subnets.to_vec()))
                    .send(),
            )
            .await?;
        Ok(())
    }

    /// Sets the security groups of a load balancer (the whole set).
    pub async fn set_security_groups(&self, arn: &str, groups: &[String]) -> Result<()> {
        const OP: Operation = Operation::SetSecurityGroups;
        self.meter
            .send(
                OP,
                self.client
                    .set_security_groups()
                    .load_balancer_arn(arn)
                    .set_security_groups(Some(groups.to_vec()))
                    .send(),
            )
            .await?;
        Ok(())
    }

    /// Deletes a load balancer (and with it its listeners); one already gone is success.
    pub async fn delete_load_balancer(&self, arn: &str) -> Result<()> {
        const OP: Operation = Operation::DeleteLoadBalancer;
        let sent = self
            .meter
            .send(
                OP,
                self.client
                    .delete_load_balancer()
                    .load_balancer_arn(arn)
                    .send(),
            )
            .await;
        match sent {
            Err(e) if e.code() == Some("LoadBalancerNotFound") => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// Creates a listener whose default action forwards to `forward` (target group ARN,
    /// weight); returns its ARN. A listener already on that port (moto has no
    /// `DuplicateListener` and would add a second one) is modified to these settings and
    /// its ARN returned.
    pub async fn create_listener(
        &self,
        lb_arn: &str,
        port: u16,
        protocol: &Protocol,
        certificate: Option<&str>,
        ssl_policy: Option<&str>,
        to: ListenerAction<'_>,
    ) -> Result<String> {
        const OP: Operation = Operation::CreateListener;
        let action = default_action(to)?;
        // moto has no DuplicateListener: as for load balancers, look before each attempt.
        let looked = look_first(
            || async {
                let existing = self.listeners(lb_arn, Round::START).await?.value;
                Ok(existing
                    .into_iter()
                    .flatten()
                    .find(|l| l.port == port)
                    .map(|l| l.arn))
            },
            || async {
                self.meter
                    .send(
                        OP,
                        self.client
                            .create_listener()
                            .load_balancer_arn(lb_arn)
                            .port(i32::from(port))
                            .protocol(ProtocolEnum::from(protocol.as_str()))
                            .set_certificates(certificates(certificate))
                            .set_ssl_policy(ssl_policy.map(str::to_owned))
                            .default_actions(action.clone())
                            .customize()
                            .config_override(no_sdk_retries())
                            .send(),
                    )
                    .await
            },
        )
        .await?;
        let out = match looked {
            Looked::Found(arn) => {
                self.modify_listener(&arn, protocol, certificate, ssl_policy, to)
                    .await?;
                return Ok(arn);
            }
            Looked::Created(out) => out,
        };
        let listener = out.listeners().first();
        Ok(need(listener.and_then(|l| l.listener_arn()), OP, "ListenerArn")?.to_owned())
    }

    /// Sets a listener's protocol, certificate, TLS policy (kept as it is when `None`) and
    /// default action. Going from HTTPS to HTTP, AWS drops the certificate; moto keeps
    /// reporting it, and the read side ignores certificates on HTTP listeners.
    pub async fn modify_listener(
        &self,
        arn: &str,
        protocol: &Protocol,
        certificate: Option<&str>,
        ssl_policy: Option<&str>,
        to: ListenerAction<'_>,
    ) -> Result<()> {
        const OP: Operation = Operation::ModifyListener;
        let action = default_action(to)?;
        self.meter
            .send(
                OP,
                self.client
                    .modify_listener()
                    .listener_arn(arn)
                    .protocol(ProtocolEnum::from(protocol.as_str()))
                    .set_certificates(certificates(certificate))
                    .set_ssl_policy(ssl_policy.map(str::to_owned))
                    .default_actions(action)
                    .send(),
            )
            .await?;
        Ok(())
    }

    /// Sets attributes of a load balancer, each to its value. Safe to repeat.
    pub async fn set_lb_attributes(
        &self,
        arn: &str,
        attributes: &[(LbAttr, String)],
    ) -> Result<()> {
        const OP: Operation = Operation::ModifyLoadBalancerAttributes;
        if attributes.is_empty() {
            return Ok(());
        }
        let attributes = attributes
            .iter()
            .map(|(a, v)| {
                LoadBalancerAttribute::builder()
                    .key(a.key())
                    .value(v)
                    .build()
            })
            .collect();
        self.meter
            .send(
                OP,
                self.client
                    .modify_load_balancer_attributes()
                    .load_balancer_arn(arn)
                    .set_attributes(Some(attributes))
                    .send(),
            )
            .await?;
        Ok(())
    }

    /// Sets response-header attributes of a listener, each to its value (a header's unset
    /// value removes it). Safe to repeat.
    pub async fn set_listener_headers(
        &self,
        arn: &str,
        headers: &[(ResponseHeader, String)],
    ) -> Result<()> {
        const OP: Operation = Operation::ModifyListenerAttributes;
        if headers.is_empty() {
            return Ok(());
        }
        let attributes = headers
            .iter()
            .map(|(h, v)| {
                ListenerAttribute::builder()
                    .key(h.attribute())
                    .value(v)
                    .build()
            })
            .collect();
        self.meter
            .send(
                OP,
                self.client
                    .modify_listener_attributes()
                    .listener_arn(arn)
                    .set_attributes(Some(attributes))
                    .send(),
            )
            .await?;
        Ok(())
    }

    /// Deletes a listener; one already gone is success.
    pub async fn delete_listener(&self, arn: &str) -> Result<()> {
        const OP: Operation = Operation::DeleteListener;
        let sent = self
            .meter
            .send(OP, self.client.delete_listener().listener_arn(arn).send())
            .await;
        match sent {
            Err(e) if e.code() == Some("ListenerNotFound") => Ok(()),
            other => other.map(|_| ()),
        }
    }
}

/// A health check as the create and modify calls take it.
struct Health {
    protocol: ProtocolEnum,
    port: String,
    /// Path and matcher only for HTTP(S) checks (AWS refuses them on a TCP check).
    path: Option<String>,
    matcher: Option<Matcher>,
}

impl Health {
    fn of(h: &HealthCheck) -> Health {
        let http = matches!(h.protocol, Protocol::Http | Protocol::Https);
        Health {
            protocol: ProtocolEnum::from(h.protocol.as_str()),
            port: match h.port {
                HealthPort::TrafficPort => "traffic-port".to_owned(),
                HealthPort::Port(p) => p.to_string(),
            },
            path: http.then(|| h.path.clone()),
            matcher: (http && !h.matcher.is_empty())
                .then(|| Matcher::builder().http_code(&h.matcher).build()),
        }
    }
}

/// The default action forwarding to `forward`: a single group with traffic is a plain
/// forward; anything else is a weighted forward (weight 0: attached and health-checked,
/// sent no traffic).
fn default_action(to: ListenerAction<'_>) -> Result<Action> {
    match to {
        ListenerAction::Forward(forward) => forward_action(forward),
        ListenerAction::Redirect(r) => {
            let status = match r.status {
                RedirectStatus::Found => RedirectActionStatusCodeEnum::Http302,
                RedirectStatus::Permanent | RedirectStatus::Other(_) => {
                    RedirectActionStatusCodeEnum::Http301
                }
            };
            let config = RedirectActionConfig::builder()
                .protocol(r.protocol.as_str())
                .port(&r.port)
                .host(&r.host)
                .path(&r.path)
                .query(&r.query)
                .status_code(status)
                .build();
            Ok(Action::builder()
                .r#type(ActionTypeEnum::Redirect)
                .redirect_config(config)
                .build())
        }
    }
}

fn forward_action(forward: &[(String, u32)]) -> Result<Action> {
    let action = Action::builder().r#type(ActionTypeEnum::Forward);
    match forward {
        [] => Err(Error::Bug(
            "a listener was to forward to no target group".to_owned(),
        )),
        [(arn, weight)] if *weight > 0 => Ok(action.target_group_arn(arn).build()),
        groups => {
            let config = groups
                .iter()
                .fold(ForwardActionConfig::builder(), |config, (arn, weight)| {
                    config.target_groups(
                        TargetGroupTuple::builder()
                            .target_group_arn(arn)
                            // AWS takes 0..=999; a larger weight is its error to report.
                            .weight(i32::try_from(*weight).unwrap_or(i32::MAX))
                            .build(),
                    )
                })
                .build();
            Ok(action.forward_config(config).build())
        }
    }
}

fn certificates(certificate: Option<&str>) -> Option<Vec<Certificate>> {
    certificate.map(|arn| vec![Certificate::builder().certificate_arn(arn).build()])
}

fn targets(ids: &[String]) -> Vec<TargetDescription> {
    ids.iter()
        .map(|id| TargetDescription::builder().id(id).build())
        .collect()
}

fn elb_tags(tags: &Tags) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// Attempts of a create that looks before each try (see [`look_first`]).
const LOOK_FIRST_ATTEMPTS: u32 = 8;

/// What [`look_first`] ended with.
enum Looked<F, C> {
    Found(F),
    Created(C),
}

/// A create that moto would duplicate rather than refuse: before each attempt, `look`
/// for the resource (an earlier attempt whose answer was lost may have made it), and
/// `create` only when it is not there; transient failures are tried again, up to
/// [`LOOK_FIRST_ATTEMPTS`], with [`backoff`] (the create itself runs without the SDK's
/// own retries, which would not look first).
async fn look_first<F, C, LookFut, CreateFut>(
    mut look: impl FnMut() -> LookFut,
    mut create: impl FnMut() -> CreateFut,
) -> Result<Looked<F, C>>
where
    LookFut: std::future::Future<Output = Result<Option<F>>>,
    CreateFut: std::future::Future<Output = Result<C>>,
{
    let mut attempt = 0;
    loop {
        if let Some(found) = look().await? {
            return Ok(Looked::Found(found));
        }
        match create().await {
            Err(e) if e.is_transient() && attempt < LOOK_FIRST_ATTEMPTS => {
                attempt += 1;
                tokio::time::sleep(backoff(attempt)).await;
            }
            other => return other.map(Looked::Created),
        }
    }
}

fn no_sdk_retries() -> aws_sdk_elasticloadbalancingv2::config::Builder {
    aws_sdk_elasticloadbalancingv2::config::Builder::default()
        .retry_config(aws_config::retry::RetryConfig::disabled())
}

/// 200 ms, 400 ms, ... up to 5 s.
fn backoff(attempt: u32) -> std::time::Duration {
    std::time::Duration::from_millis(200u64.saturating_mul(1 << attempt.min(5)))
        .min(std::time::Duration::from_secs(5))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::elbv2::forward_targets;

    #[test]
    fn one_group_with_traffic_is_a_plain_forward() {
        let action = forward_action(&[("tg-a".into(), 1)]).ok();
        assert_eq!(
            action.as_ref().and_then(|a| a.target_group_arn()),
            Some("tg-a")
        );
        assert!(action.and_then(|a| a.forward_config).is_none());
    }

    #[test]
    fn weight_zero_reads_back_as_standby() {
        let action = forward_action(&[("tg-a".into(), 1), ("tg-b".into(), 0)]);
        let got = action.map(|a| forward_targets(&[a])).ok();
        assert_eq!(got, Some((vec!["tg-a".into()], vec!["tg-b".into()])));
        // A group on standby alone is still a weighted forward, not a plain one.
        let alone = forward_action(&[("tg-b".into(), 0)]).ok();
        assert!(alone.as_ref().and_then(|a| a.target_group_arn()).is_none());
        assert!(matches!(forward_action(&[]), Err(Error::Bug(_))));
    }

    #[test]
    fn health_check_on_the_traffic_port() {
        let h = HealthCheck {
            protocol: Protocol::Http,
            port: HealthPort::TrafficPort,
            path: "/health/".into(),
            matcher: "200".into(),
            interval_seconds: 30,
            timeout_seconds: 5,
            healthy_threshold: 2,
            unhealthy_threshold: 2,
        };
        let hc = Health::of(&h);
        assert_eq!(hc.port, "traffic-port");
        assert_eq!(hc.path.as_deref(), Some("/health/"));
        let tcp = Health::of(&HealthCheck {
            protocol: "TCP".into(),
            port: HealthPort::Port(8088),
            ..h
        });
        assert_eq!(
            (tcp.port.as_str(), tcp.path, tcp.matcher),
            ("8088", None, None)
        );
    }
}
