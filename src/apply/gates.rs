//! Gates: conditions over live state, waited for under a deadline. A timeout becomes an
//! error naming what was awaited; a TTL wait that cannot end within `--max-wait` pauses
//! the run instead, its start being recorded in Route53 so that any later run, on any
//! machine, waits only the remainder.

use std::time::{Duration, Instant};

use crate::aws::route53::{ChangeAction, RecordSet};
use crate::aws::{settle, Round};
use crate::plan::dns::{marker_values, MARKER_TTL};
use crate::plan::{Gate, Node, TgRef};

use super::{now, now_ceil, probe, Context, Error, Hooks, NodeEnd, Options};

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
    let t0 = Instant::now();
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
    let mut poll = Poll::new(opts.poll);
    loop {
        let mut unreachable = None;
        for (scheme, port, redirect_to) in &asks {
            let at = match probe_address(opts, record, *port, &dns).await {
                Ok(at) => at,
                Err(e) => {
                    unreachable = Some(e);
                    break;
                }
            };
            match probe::ask(scheme, record, *port, path, at, expect, *redirect_to).await {
                probe::Answer::Passed => {}
                probe::Answer::Wrong { message, hint } => {
                    return Ok(Probed::Wrong { message, hint })
                }
                probe::Answer::Unreachable(e) => {
                    unreachable = Some(e);
                    break;
                }
            }
        }
        let Some(last) = unreachable else {
            return Ok(Probed::Passed);
        };
        if t0.elapsed() > patience {
            return Ok(Probed::Unanswered {
                within: patience,
                last,
            });
        }
        hooks.waiting(node, &what, t0.elapsed(), None);
        tokio::time::sleep(poll.next().max(Duration::from_secs(1))).await;
    }
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
    let (from, to) = (start - 60, now() + 60);
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

/// How long from now until `end` (epoch seconds), to the millisecond; zero once passed.
fn until(end: i64) -> Duration {
    let end = Duration::from_secs(u64::try_from(end).unwrap_or(0));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    end.saturating_sub(now)
}

/// Whether a "not found" for `id` may still be AWS not knowing it yet: this process
/// created it a moment ago, or the gate started a moment ago (the plan has just seen it).
fn unknown_yet(id: &str, t0: Instant) -> bool {
    settle::is_fresh(id) || t0.elapsed() < settle::LISTED_SETTLE
}

/// The pauses between two looks of a gate: soon at first (a change is often in sync in a
/// second or two), then less often, up to the run's poll interval.
struct Poll {
    next: Duration,
    max: Duration,
}

impl Poll {
    fn new(max: Duration) -> Poll {
        Poll {
            next: Duration::from_millis(250).min(max),
            max,
        }
    }

    fn next(&mut self) -> Duration {
        let now = self.next;
        self.next = (self.next * 3 / 2).min(self.max);
        now
    }
}

pub async fn wait(
    ctx: &Context,
    node: &Node,
    gate: &Gate,
    opts: &Options,
    deadline: Option<i64>,
    hooks: &dyn Hooks,
) -> Result<NodeEnd, Error> {
    let t0 = Instant::now();
    let fail = |message: String| Error::Failed {
        node: node.id.to_string(),
        message,
    };
    let timeout = |what: &str, waited: Duration| Error::Timeout {
        node: node.id.to_string(),
        what: what.to_owned(),
        waited,
    };
    let mut poll = Poll::new(opts.poll);
    match gate {
        Gate::LbActive { lb } => {
            let arn = ctx.load_balancer(lb)?.arn;
            let what = "the load balancer is active";
            loop {
                match ctx.elbv2().load_balancer_state(&arn).await? {
                    Some(crate::model::LbState::Active) => return Ok(NodeEnd::Done),
                    Some(crate::model::LbState::Failed) => {
                        return Err(fail("the load balancer failed to provision".into()))
                    }
                    // Created a moment ago (by this run, or just listed by the plan):
                    // AWS does not know it everywhere yet.
                    None if !unknown_yet(&arn, t0) => {
                        return Err(fail("the load balancer is gone".into()))
                    }
                    _ => {}
                }
                if t0.elapsed() > opts.settle_timeout {
                    return Err(timeout(what, t0.elapsed()));
                }
                hooks.waiting(node, what, t0.elapsed(), None);
                tokio::time::sleep(poll.next()).await;
            }
        }
        Gate::TargetsHealthy { key, tg, pace } => {
            let arn = ctx.target_group_arn(tg)?;
            let name = match tg {
                TgRef::New { name, .. } => name.clone(),
                TgRef::Arn(a) => a.split('/').nth(1).unwrap_or(a).to_owned(),
            };
            let what = format!(
                "every target of target group \"{key}\" is healthy (checked every {}s, healthy after {})",
                pace.interval_seconds, pace.healthy_threshold
            );
            // Slow resting checks (300 s x 10) take longer than the usual bound.
            let timeout = HEALTH_TIMEOUT.max(Duration::from_secs(2 * u64::from(pace.seconds())));
            loop {
                let Some(health) = ctx.elbv2().target_health(&arn, Round::START).await?.value
                else {
                    if !unknown_yet(&arn, t0) {
                        return Err(fail(format!("target group {name} is gone")));
                    }
                    hooks.waiting(node, &what, t0.elapsed(), None);
                    tokio::time::sleep(poll.next()).await;
                    continue;
                };
                let serving: Vec<_> = health
                    .iter()
                    .filter(|t| t.state != crate::model::TargetState::Draining)
                    .collect();
                if serving.is_empty() {
                    return Err(fail(format!(
                        "target group {name} has no registered target"
                    )));
                }
                if serving
                    .iter()
                    .all(|t| t.state == crate::model::TargetState::Healthy)
                {
                    return Ok(NodeEnd::Done);
                }
                // A stopped or terminated instance will not turn healthy by waiting.
                let hopeless = serving
                    .iter()
                    .any(|t| t.reason.as_deref() == Some("Target.InvalidState"));
                if hopeless || t0.elapsed() > timeout {
                    return Err(Error::Unhealthy {
                        node: node.id.to_string(),
                        target_group: name,
                        targets: health
                            .into_iter()
                            .filter(|t| t.state != crate::model::TargetState::Healthy)
                            .collect(),
                    });
                }
                hooks.waiting(node, &what, t0.elapsed(), None);
                tokio::time::sleep(poll.next()).await;
            }
        }
        Gate::RulesInPlace { key, group, rules } => {
            let id = ctx.refs().group(group)?;
            let what = format!("security group \"{key}\" has the rules that open the direct path");
            loop {
                let found = ctx
                    .ec2()
                    .security_groups_by_id(std::slice::from_ref(&id), Round::START)
                    .await?
                    .value;
                match found.first() {
                    Some(g) if rules.iter().all(|r| g.rules.iter().any(|x| &x.key == r)) => {
                        return Ok(NodeEnd::Done)
                    }
                    None if !unknown_yet(&id, t0) => {
                        return Err(fail(format!("security group {id} is gone")))
                    }
                    _ => {}
                }
                if t0.elapsed() > opts.settle_timeout {
                    return Err(timeout(&what, t0.elapsed()));
                }
                hooks.waiting(node, &what, t0.elapsed(), None);
                tokio::time::sleep(poll.next()).await;
            }
        }
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
        Gate::CertIssued { key, cert } => {
            let arn = ctx.certificate(cert)?;
            let what = format!("ACM has issued certificate \"{key}\" (validated by DNS)");
            loop {
                match ctx.acm().status(&arn).await? {
                    Some((crate::model::CertStatus::Issued, _)) => return Ok(NodeEnd::Done),
                    Some((status, _)) if status != crate::model::CertStatus::PendingValidation => {
                        return Err(fail(format!(
                            "certificate {arn} is {status}: ACM will not issue it (see aws acm describe-certificate); remove it, and the next apply requests another"
                        )))
                    }
                    None if !unknown_yet(&arn, t0) => {
                        return Err(fail(format!("certificate {arn} is gone")))
                    }
                    _ => {}
                }
                // Validation takes minutes, sometimes longer: beyond --max-wait the run
                // pauses, and the next one finds the request pending and waits on.
                if deadline.is_some_and(|d| now() >= d) {
                    return Ok(NodeEnd::Paused {
                        resume_at: now() + CERT_POLL.as_secs() as i64,
                    });
                }
                if t0.elapsed() > CERT_TIMEOUT {
                    return Err(timeout(&what, t0.elapsed()));
                }
                hooks.waiting(node, &what, t0.elapsed(), None);
                tokio::time::sleep(poll.next().max(Duration::from_millis(500))).await;
            }
        }
        Gate::DnsInSync {
            record,
            after,
            mark,
        } => {
            let id = ctx
                .refs()
                .changes
                .get(&(record.clone(), *after))
                .cloned()
                .ok_or_else(|| Error::Bug(format!("no Route53 change recorded for {record}")))?;
            let what = format!("Route53 has the change of {record} in sync");
            loop {
                if ctx.route53().change_status(&id).await? == "INSYNC" {
                    break;
                }
                if t0.elapsed() > opts.settle_timeout {
                    return Err(timeout(&what, t0.elapsed()));
                }
                hooks.waiting(node, &what, t0.elapsed(), None);
                tokio::time::sleep(poll.next()).await;
            }
            let synced = now_ceil();
            ctx.refs().in_sync.insert((record.clone(), *after), synced);
            if let Some(m) = mark {
                // Confirm the wait's start: the time Route53 served the change everywhere.
                let zone = ctx.refs().zone_of(record);
                let set = RecordSet {
                    name: m.record.clone(),
                    kind: "TXT".into(),
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
            Ok(NodeEnd::Done)
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
                .unwrap_or_else(now_ceil);
            let end = start + i64::from(*seconds);
            let what = format!(
                "{percent}% of answers for {record} on the load balancer, watched for errors"
            );
            loop {
                // Every look judges the whole bake so far: a breach while a paused run
                // was away is seen when the next one resumes the bake.
                let mut breach = bake_breach(ctx, watch, start).await?;
                let over = now() >= end;
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
                if let Some(breach) = breach {
                    if let Some(lease) = &opts.lease {
                        lease.check().map_err(|e| Error::LockLost(Box::new(e)))?;
                    }
                    let reverting = format!("{breach}: taking {record} back to its old value");
                    hooks.waiting(node, &reverting, t0.elapsed(), None);
                    let waiting = |w: &str, d: Duration| hooks.waiting(node, w, d, None);
                    super::exec::run(ctx, revert, &waiting).await?;
                    // Clients may hold the new value's answer for its TTL: the run ends
                    // once none can, so that what follows (a fix, a re-run) starts clean.
                    let new_ttl = match revert.as_ref() {
                        crate::plan::Op::SetRecord { ttl, .. } => ttl.unwrap_or(60),
                        _ => 60,
                    };
                    let until_end = Instant::now() + Duration::from_secs(u64::from(new_ttl));
                    loop {
                        let left = until_end.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            break;
                        }
                        hooks.waiting(
                            node,
                            "answers that named the load balancer to expire",
                            t0.elapsed(),
                            Some(left),
                        );
                        tokio::time::sleep(left.min(Duration::from_secs(1))).await;
                    }
                    return Err(fail(format!(
                        "{breach}; {record} is back on its old value (every answer), and the load balancer's answers have expired: fix the new path, then apply again to start the cutover over"
                    )));
                }
                if over {
                    return Ok(NodeEnd::Done);
                }
                if deadline.is_some_and(|d| now() >= d) {
                    return Ok(NodeEnd::Paused { resume_at: end });
                }
                hooks.waiting(node, &what, t0.elapsed(), Some(until(end)));
                tokio::time::sleep(
                    until(end)
                        .min(opts.poll.max(Duration::from_secs(1)))
                        .min(BAKE_POLL),
                )
                .await;
            }
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
                .unwrap_or_else(now_ceil);
            let end = start + i64::from(*seconds);
            if deadline.is_some_and(|d| end > d) && end > now() {
                return Ok(NodeEnd::Paused { resume_at: end });
            }
            let what = format!("{why} ({record})");
            loop {
                // To the millisecond: a wait counted in whole seconds from a whole-second
                // start ends on time, not up to a second late.
                let remaining = until(end);
                if remaining.is_zero() {
                    return Ok(NodeEnd::Done);
                }
                hooks.waiting(node, &what, t0.elapsed(), Some(remaining));
                tokio::time::sleep(remaining.min(Duration::from_secs(1))).await;
            }
        }
    }
}
