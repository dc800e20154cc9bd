//! Gates as conditions. What a gate that waits on AWS waits for is a condition over what
//! a [`Cloud`] reads ([`Condition`], looked at by [`look`]); one function waits for any
//! condition under a limit ([`until`]), its time from the `Cloud`. In `apply` that is
//! tokio's clock (tests may pause it), and the executor waits until AWS gets there. In
//! the checker it is the model's, which answers at once: what does not hold after the
//! model has caught up never will, so the model waits with no patience at all.
//!
//! A gate that waits on time or on the site (`WaitTtl`, `Bake`, `Probe`) has no
//! condition here: the executor looks at the clock, CloudWatch and the site under
//! [`until`], and the model judges it on its own state (time passes, the load balancer
//! serves, the revert keeps every answer serving).

use std::future::Future;
use std::time::Duration;

use crate::model::{CertStatus, LbState, RuleKey, TargetHealth, TargetReason, TargetState};

use super::carry::Cloud;
use super::{CertRef, DnsStep, Gate, LbRef, SgRef, TgRef};

/// The time a wait runs on: a [`Cloud`]'s (tokio's in `apply`, so a test may pause it;
/// the model's own in the checker).
#[allow(async_fn_in_trait)] // used with concrete implementations only
pub trait Clock {
    /// Time since the Unix epoch.
    fn epoch(&self) -> Duration;
    /// Waits `d` (the model's clock does not move by waiting).
    async fn sleep(&self, d: Duration);
}

/// One look at a condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Look<T, P, N> {
    /// It holds.
    Met(T),
    /// Not yet. `last` is what was seen (given back if the wait times out); `left` is how
    /// long a wait counted in time still has to run.
    Pending { last: P, left: Option<Duration> },
    /// It will not hold by waiting.
    Never(N),
}

impl<T, N> Look<T, (), N> {
    /// Not yet, with nothing to tell.
    pub fn pending() -> Self {
        Look::Pending {
            last: (),
            left: None,
        }
    }
}

/// How a wait ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Waited<T, P, N> {
    Met(T),
    Never(N),
    /// The patience ran out; what the last look saw.
    TimedOut {
        waited: Duration,
        last: P,
    },
    /// The run's deadline came first: the wait is left for a later run.
    Paused,
}

/// How long a wait goes on and how often it looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Patience {
    /// Past this, the wait times out.
    pub timeout: Duration,
    /// When, on the `Cloud`'s clock (its [`Cloud::epoch`]), the wait pauses instead:
    /// the run's `--max-wait`.
    pub pause_at: Option<Duration>,
    /// The first pause between two looks; each next one is half as long again, up to
    /// `max`, and none is shorter than `min`.
    pub first: Duration,
    pub max: Duration,
    pub min: Duration,
}

impl Patience {
    /// Soon at first (a change is often in sync in a second or two), then less often, up
    /// to `poll`.
    pub fn backoff(timeout: Duration, poll: Duration) -> Patience {
        Patience {
            timeout,
            pause_at: None,
            first: Duration::from_millis(250).min(poll),
            max: poll,
            min: Duration::ZERO,
        }
    }

    /// A look every `every`, for a wait counted in time (its progress shown as it goes).
    pub fn ticking(every: Duration) -> Patience {
        Patience {
            timeout: Duration::MAX,
            pause_at: None,
            first: every,
            max: every,
            min: Duration::ZERO,
        }
    }

    /// One look: for a `Cloud` that answers at once and where time does not pass by
    /// waiting (the checker's model).
    pub fn none() -> Patience {
        Patience::ticking(Duration::ZERO).timeout(Duration::ZERO)
    }

    pub fn timeout(self, timeout: Duration) -> Patience {
        Patience { timeout, ..self }
    }

    /// No pause shorter than `min`.
    pub fn at_least(self, min: Duration) -> Patience {
        Patience { min, ..self }
    }

    pub fn pausing_at(self, pause_at: Option<Duration>) -> Patience {
        Patience { pause_at, ..self }
    }
}

/// Looks at a condition until it holds, it never will, the patience runs out or the
/// run's deadline comes, whichever is first; `waiting` hears of each pause (how long the
/// wait has gone on, and how long it has left when counted in time). `look` is given how
/// long the wait has gone on.
pub async fn until<C: Clock, T, P, N, E, F>(
    cloud: &C,
    patience: Patience,
    mut look: impl FnMut(Duration) -> F,
    mut waiting: impl FnMut(Duration, Option<Duration>),
) -> Result<Waited<T, P, N>, E>
where
    F: Future<Output = Result<Look<T, P, N>, E>>,
{
    let t0 = cloud.epoch();
    let mut next = patience.first;
    loop {
        let (last, left) = match look(cloud.epoch().saturating_sub(t0)).await? {
            Look::Met(v) => return Ok(Waited::Met(v)),
            Look::Never(n) => return Ok(Waited::Never(n)),
            Look::Pending { last, left } => (last, left),
        };
        if patience.pause_at.is_some_and(|at| cloud.epoch() >= at) {
            return Ok(Waited::Paused);
        }
        let waited = cloud.epoch().saturating_sub(t0);
        // At the timeout, not only past it: with no patience, one look.
        if waited >= patience.timeout {
            return Ok(Waited::TimedOut { waited, last });
        }
        waiting(waited, left);
        let pause = next.max(patience.min);
        next = (next * 3 / 2).min(patience.max);
        cloud.sleep(left.map_or(pause, |l| pause.min(l))).await;
    }
}

/// What a gate that waits on AWS's state waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition<'a> {
    /// The load balancer is active.
    LbActive(&'a LbRef),
    /// Every target of the group that is not draining is healthy.
    TargetsHealthy(&'a TgRef),
    /// The group reads back with these rules in it.
    RulesInPlace {
        group: &'a SgRef,
        rules: &'a [RuleKey],
    },
    /// ACM has issued the certificate.
    CertIssued(&'a CertRef),
    /// Route53 has the record's change at this step in sync.
    InSync { record: &'a str, after: DnsStep },
}

impl<'a> Condition<'a> {
    /// The condition of a gate; `None` for a gate that waits on time or on the site.
    pub fn of(gate: &'a Gate) -> Option<Condition<'a>> {
        match gate {
            Gate::LbActive { lb } => Some(Condition::LbActive(lb)),
            Gate::TargetsHealthy { tg, .. } => Some(Condition::TargetsHealthy(tg)),
            Gate::RulesInPlace { group, rules, .. } => {
                Some(Condition::RulesInPlace { group, rules })
            }
            Gate::CertIssued { cert, .. } => Some(Condition::CertIssued(cert)),
            Gate::DnsInSync { record, after, .. } => Some(Condition::InSync {
                record,
                after: *after,
            }),
            Gate::Probe(_) | Gate::Bake { .. } | Gate::WaitTtl { .. } => None,
        }
    }
}

/// Why a condition will not hold by waiting.
#[derive(Debug, Clone, PartialEq)]
pub enum Unmet {
    /// The load balancer failed to provision.
    LbFailed,
    /// Not there, when AWS has had the time to know it: gone (its id).
    Gone(String),
    /// The target group has no registered target that is not draining.
    NoTarget,
    /// Some targets will not turn healthy by waiting (a stopped or terminated
    /// instance): every target that is not healthy.
    Hopeless(Vec<TargetHealth>),
    /// ACM will not issue the certificate (its status).
    Refused(CertStatus),
}

/// What a condition's look saw when it did not hold: the targets not healthy yet.
pub type Seen = Vec<TargetHealth>;

/// One look at a condition, through the `Cloud`'s reads; `waited` is how long the wait
/// has gone on (AWS may not know what was created or listed a moment ago).
pub async fn look<C: Cloud>(
    cloud: &C,
    condition: &Condition<'_>,
    waited: Duration,
) -> Result<Look<(), Seen, Unmet>, C::Error> {
    let pending = || Look::Pending {
        last: Vec::new(),
        left: None,
    };
    let gone = |id: String| {
        if cloud.may_not_know(&id, waited) {
            pending()
        } else {
            Look::Never(Unmet::Gone(id))
        }
    };
    Ok(match condition {
        Condition::LbActive(lb) => {
            let arn = cloud.with_refs(|r| r.load_balancer(lb))?.arn;
            match cloud.load_balancer_state(&arn).await? {
                Some(LbState::Active) => Look::Met(()),
                Some(LbState::Failed) => Look::Never(Unmet::LbFailed),
                Some(_) => pending(),
                None => gone(arn),
            }
        }
        Condition::TargetsHealthy(tg) => {
            let arn = cloud.with_refs(|r| r.target_group(tg))?;
            let Some(health) = cloud.target_health(&arn).await? else {
                return Ok(gone(arn));
            };
            let serving: Vec<&TargetHealth> = health
                .iter()
                .filter(|t| t.state != TargetState::Draining)
                .collect();
            if serving.is_empty() {
                return Ok(Look::Never(Unmet::NoTarget));
            }
            if serving.iter().all(|t| t.state == TargetState::Healthy) {
                return Ok(Look::Met(()));
            }
            // A stopped or terminated instance will not turn healthy by waiting.
            let hopeless = serving
                .iter()
                .any(|t| t.reason == Some(TargetReason::InvalidState));
            let unhealthy: Vec<TargetHealth> = health
                .into_iter()
                .filter(|t| t.state != TargetState::Healthy)
                .collect();
            if hopeless {
                Look::Never(Unmet::Hopeless(unhealthy))
            } else {
                Look::Pending {
                    last: unhealthy,
                    left: None,
                }
            }
        }
        Condition::RulesInPlace { group, rules } => {
            let id = cloud.with_refs(|r| r.group(group))?;
            match cloud.group_rules(&id).await? {
                Some(found) if rules.iter().all(|r| found.contains(r)) => Look::Met(()),
                Some(_) => pending(),
                None => gone(id),
            }
        }
        Condition::CertIssued(cert) => {
            let arn = cloud.with_refs(|r| r.certificate(cert))?;
            match cloud.certificate_status(&arn).await? {
                Some(CertStatus::Issued) => Look::Met(()),
                Some(CertStatus::PendingValidation) => pending(),
                Some(status) => Look::Never(Unmet::Refused(status)),
                None => gone(arn),
            }
        }
        Condition::InSync { record, after } => {
            let id = cloud.with_refs(|r| {
                r.changes
                    .get(&((*record).to_owned(), *after))
                    .cloned()
                    .ok_or_else(|| {
                        super::carry::Unresolved(format!("the Route53 change of {record}"))
                    })
            })?;
            if cloud.change_in_sync(&id).await? {
                Look::Met(())
            } else {
                pending()
            }
        }
    })
}

/// Runs a future of a `Cloud` that answers at once (the checker's model) to its end;
/// `None` if it waited on something.
pub fn at_once<F: std::future::IntoFuture>(f: F) -> Option<F::Output> {
    let mut f = std::pin::pin!(f.into_future());
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(r) => Some(r),
        std::task::Poll::Pending => None,
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    /// tokio's clock from a wall reading of zero: paused in these tests, so that minutes
    /// of waiting take none.
    struct Tokio(tokio::time::Instant);

    impl Clock for Tokio {
        fn epoch(&self) -> Duration {
            self.0.elapsed()
        }

        async fn sleep(&self, d: Duration) {
            tokio::time::sleep(d).await;
        }
    }

    fn clock() -> Tokio {
        Tokio(tokio::time::Instant::now())
    }

    /// A condition that holds from `at` on, counting its looks.
    fn holds_from(
        clock: &Tokio,
        at: Duration,
        looks: &Cell<u32>,
    ) -> impl Future<Output = Result<Look<(), (), ()>, ()>> {
        looks.set(looks.get() + 1);
        let now = clock.epoch();
        std::future::ready(Ok(if now >= at {
            Look::Met(())
        } else {
            Look::pending()
        }))
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_looks_soon_then_less_often_until_the_condition_holds() {
        let c = clock();
        let looks = Cell::new(0);
        let mut pauses = Vec::new();
        let patience = Patience::backoff(Duration::from_secs(60), Duration::from_secs(2));
        let waited = until(
            &c,
            patience,
            |_| holds_from(&c, Duration::from_secs(5), &looks),
            |_, _| pauses.push(c.epoch()),
        )
        .await;
        assert_eq!(waited, Ok(Waited::Met(())));
        // Pauses of 0.25 s, then half as long again each time (tokio's timer rounds up to
        // the millisecond): 250, 375, 563, 844, 1266 and 1899 ms, capped at the poll of 2 s.
        let at: Vec<u128> = pauses.iter().map(Duration::as_millis).collect();
        assert_eq!(at, [0, 250, 625, 1188, 2032, 3298]);
        assert_eq!(c.epoch().as_millis(), 5197);
        assert_eq!(looks.get(), 7);
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_that_never_holds_times_out_with_what_it_saw_last() {
        let c = clock();
        let mut n = 0;
        let waited = until(
            &c,
            Patience::backoff(Duration::from_secs(300), Duration::from_secs(5)),
            |_| {
                n += 1;
                std::future::ready(Ok::<_, ()>(Look::<(), u32, ()>::Pending {
                    last: n,
                    left: None,
                }))
            },
            |_, _| {},
        )
        .await;
        // It times out within a pause of the limit, and the last look's answer comes
        // back: no extra read for the error.
        assert!(
            matches!(waited, Ok(Waited::TimedOut { waited, last })
                if waited >= Duration::from_secs(300) && waited < Duration::from_secs(306) && last == n),
            "{waited:?} after {n} looks"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_deadline_before_the_timeout_pauses_the_wait() {
        let c = clock();
        let looks = Cell::new(0);
        let patience = Patience::backoff(Duration::from_secs(3600), Duration::from_secs(1))
            .pausing_at(Some(Duration::from_secs(10)));
        let waited = until(
            &c,
            patience,
            |_| holds_from(&c, Duration::from_secs(60), &looks),
            |_, _| {},
        )
        .await;
        assert_eq!(waited, Ok(Waited::Paused));
        assert!(c.epoch() >= Duration::from_secs(10) && c.epoch() < Duration::from_secs(11));
    }

    #[tokio::test(start_paused = true)]
    async fn a_condition_that_never_holds_ends_the_wait_at_once() {
        let c = clock();
        let mut pauses = 0;
        let waited = until(
            &c,
            Patience::backoff(Duration::from_secs(300), Duration::from_secs(5)),
            |_| std::future::ready(Ok::<_, ()>(Look::<(), (), &str>::Never("failed"))),
            |_, _| pauses += 1,
        )
        .await;
        assert_eq!(waited, Ok(Waited::Never("failed")));
        assert_eq!(pauses, 0);
        assert_eq!(c.epoch(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_counted_in_time_ends_on_time_and_shows_what_is_left() {
        let c = clock();
        let end = Duration::from_millis(300_400);
        let mut shown = Vec::new();
        let waited = until(
            &c,
            Patience::ticking(Duration::from_secs(1)),
            |_| {
                let left = end.saturating_sub(c.epoch());
                std::future::ready(Ok::<_, ()>(if left.is_zero() {
                    Look::Met(())
                } else {
                    Look::<(), (), ()>::Pending {
                        last: (),
                        left: Some(left),
                    }
                }))
            },
            |_, left| shown.push(left),
        )
        .await;
        assert_eq!(waited, Ok(Waited::Met(())));
        // To the millisecond: the last pause is what was left, not a whole tick.
        assert_eq!(c.epoch(), end);
        assert_eq!(shown.len(), 301);
        assert_eq!(shown[0], Some(end));
        assert_eq!(shown[300], Some(Duration::from_millis(400)));
    }

    #[test]
    fn no_patience_is_one_look() {
        struct Still;
        impl Clock for Still {
            fn epoch(&self) -> Duration {
                Duration::from_secs(7)
            }
            async fn sleep(&self, _: Duration) {}
        }
        let mut looks = 0;
        let waited = at_once(until(
            &Still,
            Patience::none(),
            |_| {
                looks += 1;
                std::future::ready(Ok::<_, ()>(Look::<(), (), ()>::pending()))
            },
            |_, _| {},
        ));
        assert_eq!(
            waited,
            Some(Ok(Waited::TimedOut {
                waited: Duration::ZERO,
                last: ()
            }))
        );
        assert_eq!(looks, 1);
    }
}
