//! Gates, waited for under a deadline: a gate that waits on AWS's state is a condition
//! over what the [`crate::plan::carry::Cloud`] reads ([`wait::Condition`], the same the
//! checker's model judges), one that waits on time or the site a look at the clock,
//! CloudWatch or the site; every one waits under [`wait::until`], on the run's clock. A
//! timeout becomes an error naming what was awaited; a TTL wait that cannot end within
//! `--max-wait` pauses the run instead, its start being recorded in Route53 so that any
//! later run, on any machine, waits only the remainder.

use std::time::Duration;

use crate::aws::route53::{ChangeAction, RecordSet};
use crate::aws::Round;
use crate::plan::carry::Cloud;
use crate::plan::dns::{marker_values, MARKER_TTL};
use crate::plan::wait::{self, Condition, Look, Patience, Unmet, Waited};
use crate::plan::{Gate, Node, TgRef};

use super::{probe, Context, Error, Hooks, NodeEnd, Options};

/// How long targets may take to turn healthy after registration (AWS needs the health
/// check's interval times its healthy threshold, a few minutes at most).
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// How long ACM may take to issue a requested certificate once its validation records
/// are in the zone (usually minutes; AWS allows up to 72 hours before giving up). Past
/// it the run stops with an error; the request stays, and a later apply waits on.
pub const CERT_TIMEOUT: Duration = Duration::from_secs(60 * 60);

/// How long the probe may go unanswered (a new load balancer's name resolving, its nodes
/// accepting connections; a TLS handshake that keeps failing) before the run stops.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(3 * 60);

/// Where the probe of `name:port` connects: a `--resolve` override, else the first address
/// the load balancer's DNS name resolves to.
async fn probe_address(
    opts: &Options,
    name: &str,
    port: u16,
    lb_dns: &str,
) -> Result<std::net::SocketAddr, String> {
    if let Some(r) = opts
        .resolve
        .iter()
        .find(|r| r.name == name && r.port == port)
    {
        return Ok(r.addr);
    }
    match tokio::net::lookup_host((lb_dns, port)).await {
        Ok(mut found) => found
            .next()
            .ok_or_else(|| format!("{lb_dns} resolves to no address yet")),
        Err(e) => Err(format!("{lb_dns} does not resolve yet: {e}")),
    }
}

/// How long the probe at the end of a bake may go unanswered: the load balancer has been
/// serving a share of the visitors all along, so silence is a breach, soon.
const BAKE_PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// What a probe found.
enum Probed {
    Passed,
    /// The site answered wrongly: the message names the status and the URL, the hint the
    /// usual causes.
    Wrong {
        message: String,
        hint: String,
    },
    /// No answer within the probe's patience; the last error.
    Unanswered {
        within: Duration,
        last: String,
    },
}

/// Asks the probe's URLs through the load balancer (HTTPS, and HTTP to redirect to it),
/// again while nothing answers, for up to `patience`.
async fn ask_probe(
    ctx: &Context,
    opts: &Options,
    probe: &crate::plan::Probe,
    patience: Duration,
    node: &Node,
    hooks: &dyn Hooks,
) -> Result<Probed, Error> {
    let crate::plan::Probe {
        record,
        lb,
        path,
        expect,
        https,
        http,
    } = probe;
    let dns = ctx.load_balancer(lb)?.dns_name;
    let redirect = format!("https://{record}");
    let mut asks: Vec<(&str, u16, Option<&str>)> = Vec::new();
    if let Some(p) = https {
        asks.push(("https", *p, None));
    }
    match (https, http) {
        (Some(_), Some(p)) => asks.push(("http", *p, Some(redirect.as_str()))),
        (None, Some(p)) => asks.push(("http", *p, None)),
        _ => {}
    }
    let what = format!("{record}{path} answers through the load balancer");
    // One look asks every URL; an unreachable one is asked again (the last error kept).
    let (asks, dns) = (&asks, &dns);
    let look = |_| async move {
        for (scheme, port, redirect_to) in asks {
            let at = match probe_address(opts, record, *port, dns).await {
                Ok(at) => at,
                Err(last) => return Ok(Look::Pending { last, left: None }),
            };
            match probe::ask(scheme, record, *port, path, at, expect, *redirect_to).await {
                probe::Answer::Passed => {}
                probe::Answer::Wrong { message, hint } => return Ok(Look::Never((message, hint))),
                probe::Answer::Unreachable(last) => return Ok(Look::Pending { last, left: None }),
            }
        }
        Ok::<Look<(), String, (String, String)>, Error>(Look::Met(()))
    };
    let patience = Patience::backoff(patience, opts.poll).at_least(Duration::from_secs(1));
    let waiting = |waited, left| hooks.waiting(node, &what, waited, left);
    Ok(match wait::until(ctx, patience, look, waiting).await? {
        Waited::Met(()) => Probed::Passed,
        Waited::Never((message, hint)) => Probed::Wrong { message, hint },
        Waited::TimedOut { last, .. } => Probed::Unanswered {
            within: patience.timeout,
            last,
        },
        Waited::Paused => return Err(Error::Bug("a probe paused".into())),
    })
}

/// How often a bake reads the metrics (the load balancer publishes them per minute).
const BAKE_POLL: Duration = Duration::from_secs(10);

/// What breaks a bake's thresholds since `start`, named with its value and threshold:
/// the share of 5xx answers (the load balancer's and the targets') among the load
/// balancer's requests, unhealthy targets by CloudWatch (the highest count in a minute) or
/// by the target groups' health now.
async fn bake_breach(
    ctx: &Context,
    watch: &crate::plan::Watch,
    start: i64,
) -> Result<Option<String>, Error> {
    use crate::aws::cloudwatch::{dimension_of, Stat};
    let lb_arn = ctx.load_balancer(&watch.lb)?.arn;
    let Some(lb_dim) = dimension_of(&lb_arn, "loadbalancer/") else {
        return Err(Error::Bug(format!("{lb_arn} is not a load balancer ARN")));
    };
    let cw = ctx.cloudwatch();
    // A minute's margin on each side: data points are stamped at their minute's start.
    let now = i64::try_from(ctx.clock.epoch().as_secs()).unwrap_or(i64::MAX);
    let (from, to) = (start - 60, now + 60);
    let lb = [("LoadBalancer", lb_dim.clone())];
    let requests = cw
        .statistic("RequestCount", &lb, from, to, Stat::Sum)
        .await?;
    let elb_5xx = cw
        .statistic("HTTPCode_ELB_5XX_Count", &lb, from, to, Stat::Sum)
        .await?;
    let target_5xx = cw
        .statistic("HTTPCode_Target_5XX_Count", &lb, from, to, Stat::Sum)
        .await?;
    let errors = elb_5xx + target_5xx;
    if requests > 0.0 || errors > 0.0 {
        let share = 100.0 * errors / requests.max(errors).max(1.0);
        let max = f64::from(watch.max_5xx_basis_points) / 100.0;
        if share > max {
            return Ok(Some(format!(
                "HTTPCode_ELB_5XX_Count + HTTPCode_Target_5XX_Count = {elb_5xx} + {target_5xx} of RequestCount {requests}: {share:.2}% 5xx, above max_5xx_percent {max}"
            )));
        }
    }
    for (key, tg) in &watch.target_groups {
        let arn = ctx.target_group_arn(tg)?;
        if let Some(tg_dim) = dimension_of(&arn, "targetgroup/") {
            let dims = [("TargetGroup", tg_dim), ("LoadBalancer", lb_dim.clone())];
            let unhealthy = cw
                .statistic("UnHealthyHostCount", &dims, from, to, Stat::Maximum)
                .await?;
            if unhealthy > f64::from(watch.max_unhealthy) {
                return Ok(Some(format!(
                    "UnHealthyHostCount of target group \"{key}\" reached {unhealthy}, above max_unhealthy {}",
                    watch.max_unhealthy
                )));
            }
        }
        if let Some(health) = ctx.elbv2().target_health(&arn, Round::START).await?.value {
            let unhealthy = health
                .iter()
                .filter(|t| {
                    !matches!(
                        t.state,
                        crate::model::TargetState::Healthy | crate::model::TargetState::Draining
                    )
                })
                .count();
            if unhealthy > watch.max_unhealthy as usize {
                return Ok(Some(format!(
                    "{unhealthy} target(s) of target group \"{key}\" are not healthy, above max_unhealthy {}",
                    watch.max_unhealthy
                )));
            }
        }
    }
    Ok(None)
}

/// When a paused run may look at a pending certificate again.
const CERT_POLL: Duration = Duration::from_secs(60);

/// Waits for a gate. `deadline` (epoch seconds) is the run's `--max-wait`: a wait that
/// would go past it pauses.
pub async fn wait(
    ctx: &Context,
    node: &Node,
    gate: &Gate,
    opts: &Options,
    deadline: Option<i64>,
    hooks: &dyn Hooks,
) -> Result<NodeEnd, Error> {
    let fail = |message: String| Error::Failed {
        node: node.id.to_string(),
        message,
    };
    let pause_at = deadline.map(|d| Duration::from_secs(u64::try_from(d).unwrap_or(0)));
    match gate {
        Gate::LbActive { .. }
        | Gate::TargetsHealthy { .. }
        | Gate::RulesInPlace { .. }
        | Gate::CertIssued { .. }
        | Gate::DnsInSync { .. } => on_state(ctx, node, gate, opts, pause_at, hooks).await,
        Gate::Probe(probe) => {
            let record = &probe.record;
            match ask_probe(ctx, opts, probe, PROBE_TIMEOUT, node, hooks).await? {
                Probed::Passed => Ok(NodeEnd::Done),
                Probed::Wrong { message, hint } => Err(fail(format!(
                    "{message}: {record} was not switched, the old path serves as before ({hint})"
                ))),
                Probed::Unanswered { within, last } => Err(fail(format!(
                    "no answer through the load balancer within {}s: {last}; {record} was not switched",
                    within.as_secs()
                ))),
            }
        }
        Gate::Bake {
            record,
            percent,
            seconds,
            since,
            watch,
            revert,
        } => {
            let start = since
                .or_else(|| {
                    ctx.refs()
                        .in_sync
                        .get(&(record.clone(), crate::plan::DnsStep::Weigh(*percent)))
                        .copied()
                })
                .unwrap_or_else(|| ctx.now());
            let end = start + i64::from(*seconds);
            let what = format!(
                "{percent}% of answers for {record} on the load balancer, watched for errors"
            );
            // Every look judges the whole bake so far: a breach while a paused run was
            // away is seen when the next one resumes the bake.
            let look = |_| async move {
                let mut breach = bake_breach(ctx, watch, start).await?;
                let over = ctx.clock.secs() >= end;
                // Before the next step, the article's test again (the watch saw errors in
                // counts; the probe sees a page that fails while the counts are quiet).
                if let (None, true, Some(p)) = (&breach, over, &watch.probe) {
                    breach = match ask_probe(ctx, opts, p, BAKE_PROBE_TIMEOUT, node, hooks).await? {
                        Probed::Passed => None,
                        Probed::Wrong { message, hint } => Some(format!("{message} ({hint})")),
                        Probed::Unanswered { within, last } => Some(format!(
                            "the probe had no answer through the load balancer within {}s: {last}",
                            within.as_secs()
                        )),
                    };
                }
                Ok::<_, Error>(match breach {
                    Some(breach) => Look::Never(breach),
                    None if over => Look::Met(()),
                    None => Look::Pending {
                        last: (),
                        left: Some(ctx.clock.until(end)),
                    },
                })
            };
            let patience = Patience::ticking(opts.poll.max(Duration::from_secs(1)).min(BAKE_POLL))
                .pausing_at(pause_at);
            let waiting = |waited, left| hooks.waiting(node, &what, waited, left);
            let breach = match wait::until(ctx, patience, look, waiting).await? {
                Waited::Met(()) => return Ok(NodeEnd::Done),
                Waited::Paused => return Ok(NodeEnd::Paused { resume_at: end }),
                Waited::Never(breach) => breach,
                Waited::TimedOut { .. } => return Err(Error::Bug("a bake timed out".into())),
            };
            if let Some(lease) = &opts.lease {
                lease.check().map_err(|e| Error::LockLost(Box::new(e)))?;
            }
            let reverting = format!("{breach}: taking {record} back to its old value");
            hooks.waiting(node, &reverting, Duration::ZERO, None);
            let waiting = |w: &str, d: Duration| hooks.waiting(node, w, d, None);
            super::exec::run(ctx, revert, &waiting).await?;
            // Clients may hold the new value's answer for its TTL: the run ends once none
            // can, so that what follows (a fix, a re-run) starts clean.
            let new_ttl = match revert.as_ref() {
                crate::plan::Op::SetRecord { ttl, .. } => ttl.unwrap_or(60),
                _ => 60,
            };
            let expired = ctx.clock.epoch() + Duration::from_secs(u64::from(new_ttl));
            let what = "answers that named the load balancer to expire";
            wait::until(
                ctx,
                Patience::ticking(Duration::from_secs(1)),
                |_| {
                    std::future::ready(Ok::<_, Error>(counted(
                        expired.saturating_sub(ctx.clock.epoch()),
                    )))
                },
                |waited, left| hooks.waiting(node, what, waited, left),
            )
            .await?;
            Err(fail(format!(
                "{breach}; {record} is back on its old value (every answer), and the load balancer's answers have expired: fix the new path, then apply again to start the cutover over"
            )))
        }
        Gate::WaitTtl {
            record,
            after,
            seconds,
            since,
            why,
        } => {
            let step = *after;
            let start = since
                .or_else(|| ctx.refs().in_sync.get(&(record.clone(), step)).copied())
                .unwrap_or_else(|| ctx.now());
            let end = start + i64::from(*seconds);
            if deadline.is_some_and(|d| end > d) && end > ctx.clock.secs() {
                return Ok(NodeEnd::Paused { resume_at: end });
            }
            let what = format!("{why} ({record})");
            // To the millisecond: a wait counted in whole seconds from a whole-second
            // start ends on time, not up to a second late.
            wait::until(
                ctx,
                Patience::ticking(Duration::from_secs(1)),
                |_| std::future::ready(Ok::<_, Error>(counted(ctx.clock.until(end)))),
                |waited, left| hooks.waiting(node, &what, waited, left),
            )
            .await?;
            Ok(NodeEnd::Done)
        }
    }
}

/// A wait counted in time: over once nothing is left.
fn counted(left: Duration) -> Look<(), (), ()> {
    if left.is_zero() {
        Look::Met(())
    } else {
        Look::Pending {
            last: (),
            left: Some(left),
        }
    }
}

/// Waits for a gate on AWS's state: its condition ([`wait::look`]) under the gate's
/// patience.
async fn on_state(
    ctx: &Context,
    node: &Node,
    gate: &Gate,
    opts: &Options,
    pause_at: Option<Duration>,
    hooks: &dyn Hooks,
) -> Result<NodeEnd, Error> {
    let Some(condition) = Condition::of(gate) else {
        return Err(Error::Bug(format!("{} waits on no state", node.id)));
    };
    let settle = Patience::backoff(opts.settle_timeout, opts.poll);
    let (what, patience) = match gate {
        Gate::LbActive { .. } => ("the load balancer is active".to_owned(), settle),
        Gate::TargetsHealthy { key, pace, .. } => (
            format!(
                "every target of target group \"{key}\" is healthy (checked every {}s, healthy after {})",
                pace.interval_seconds, pace.healthy_threshold
            ),
            // Slow resting checks (300 s x 10) take longer than the usual bound.
            settle.timeout(HEALTH_TIMEOUT.max(Duration::from_secs(2 * u64::from(pace.seconds())))),
        ),
        Gate::RulesInPlace { key, .. } => (
            format!("security group \"{key}\" has the rules that open the direct path"),
            settle,
        ),
        // Validation takes minutes, sometimes longer: beyond --max-wait the run pauses,
        // and the next one finds the request pending and waits on.
        Gate::CertIssued { key, .. } => (
            format!("ACM has issued certificate \"{key}\" (validated by DNS)"),
            settle
                .timeout(CERT_TIMEOUT)
                .at_least(Duration::from_millis(500))
                .pausing_at(pause_at),
        ),
        Gate::DnsInSync { record, .. } => {
            (format!("Route53 has the change of {record} in sync"), settle)
        }
        Gate::Probe(_) | Gate::Bake { .. } | Gate::WaitTtl { .. } => {
            return Err(Error::Bug(format!("{} waits on no state", node.id)))
        }
    };
    let waited = wait::until(
        ctx,
        patience,
        |waited| wait::look(ctx, &condition, waited),
        |waited, left| hooks.waiting(node, &what, waited, left),
    )
    .await?;
    match waited {
        Waited::Met(()) => {}
        Waited::Paused => {
            return Ok(NodeEnd::Paused {
                resume_at: ctx.clock.secs() + CERT_POLL.as_secs() as i64,
            })
        }
        Waited::TimedOut { waited, last } => {
            return Err(match gate {
                Gate::TargetsHealthy { tg, .. } => Error::Unhealthy {
                    node: node.id.to_string(),
                    target_group: tg_name(tg),
                    targets: last,
                },
                _ => Error::Timeout {
                    node: node.id.to_string(),
                    what,
                    waited,
                },
            })
        }
        Waited::Never(why) => return Err(unmet(ctx, node, gate, why)?),
    }
    if let Gate::DnsInSync {
        record,
        after,
        mark,
    } = gate
    {
        let synced = ctx.now();
        ctx.refs().in_sync.insert((record.clone(), *after), synced);
        if let Some(m) = mark {
            // Confirm the wait's start: the time Route53 served the change everywhere.
            let zone = ctx.refs().zone_of(record);
            let set = RecordSet {
                name: m.record.clone(),
                kind: crate::model::RecordKind::Txt,
                ttl: Some(MARKER_TTL),
                values: marker_values(&m.stack, &m.step, synced, m.ttl, None),
                alias: None,
                weighted: None,
            };
            if let Some(zone) = zone {
                ctx.route53()
                    .change(
                        &zone,
                        &[(ChangeAction::Upsert, set.clone())],
                        "reconcile: wait started",
                    )
                    .await?;
                ctx.refs().markers.insert(set.name.clone(), set);
            }
        }
    }
    Ok(NodeEnd::Done)
}

/// A target group's name, for messages.
fn tg_name(tg: &TgRef) -> String {
    match tg {
        TgRef::New { name, .. } => name.clone(),
        TgRef::Arn(a) => a.split('/').nth(1).unwrap_or(a).to_owned(),
    }
}

/// The error of a gate whose condition will not hold by waiting.
fn unmet(ctx: &Context, node: &Node, gate: &Gate, why: Unmet) -> Result<Error, Error> {
    let fail = |message: String| Error::Failed {
        node: node.id.to_string(),
        message,
    };
    Ok(match (why, gate) {
        (Unmet::Hopeless(targets), Gate::TargetsHealthy { tg, .. }) => Error::Unhealthy {
            node: node.id.to_string(),
            target_group: tg_name(tg),
            targets,
        },
        (Unmet::LbFailed, _) => fail("the load balancer failed to provision".into()),
        (Unmet::NoTarget, Gate::TargetsHealthy { tg, .. }) => fail(format!(
            "target group {} has no registered target",
            tg_name(tg)
        )),
        (Unmet::Refused(status), Gate::CertIssued { cert, .. }) => fail(format!(
            "certificate {} is {status}: ACM will not issue it (see aws acm describe-certificate); remove it, and the next apply requests another",
            ctx.certificate(cert)?
        )),
        (Unmet::Gone(_), Gate::LbActive { .. }) => fail("the load balancer is gone".into()),
        (Unmet::Gone(_), Gate::TargetsHealthy { tg, .. }) => {
            fail(format!("target group {} is gone", tg_name(tg)))
        }
        (Unmet::Gone(id), Gate::RulesInPlace { .. }) => {
            fail(format!("security group {id} is gone"))
        }
        (Unmet::Gone(id), Gate::CertIssued { .. }) => fail(format!("certificate {id} is gone")),
        (why, _) => Error::Bug(format!("{}: {why:?}", node.id)),
    })
}
