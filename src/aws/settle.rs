//! AWS's eventual consistency, waited out rather than believed. Right after a create, AWS
//! may still answer "not found" for the new resource (`InvalidGroup.NotFound`,
//! `LoadBalancerNotFound`, `TargetGroupNotFound`: the EC2 API reference, "Eventual
//! consistency"), and a resource a listing has just returned may do the same for a
//! moment. Neither means the resource is gone. This module keeps two things:
//!
//! - which resources this process created, and when ([`created`], [`is_fresh`]): a "not
//!   found" for one of them within [`SETTLE`] is a stale answer, never a fact;
//! - a bounded retry ([`until_found`]) for reads that must not conclude "gone" from one
//!   stale answer.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// How long AWS may take to know a resource it has just created or listed. AWS documents
/// no bound; a few seconds is usual, and Terraform's AWS provider allows two minutes for
/// the same propagation. Waiting is only ever spent on answers that contradict what this
/// run knows, so a generous bound costs nothing on the usual path.
pub const SETTLE: Duration = Duration::from_secs(60);

/// How long a read of a resource a listing has just returned keeps asking before it
/// believes "not found" (the resource may have been deleted between the two requests).
pub const LISTED_SETTLE: Duration = Duration::from_secs(20);

fn registry() -> &'static Mutex<HashMap<String, Instant>> {
    static CREATED: OnceLock<Mutex<HashMap<String, Instant>>> = OnceLock::new();
    CREATED.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Records that this process created the resource `id` (a group id, an ARN) just now.
pub fn created(id: &str) {
    registry()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(id.to_owned(), Instant::now());
}

/// Whether this process created `id` less than [`SETTLE`] ago: a "not found" for it is
/// AWS not knowing it yet.
pub fn is_fresh(id: &str) -> bool {
    registry()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(id)
        .is_some_and(|t| t.elapsed() < SETTLE)
}

/// The pauses between two tries: 250 ms, doubling, at most 4 s.
pub fn pause(attempt: u32) -> Duration {
    Duration::from_millis(250u64.saturating_mul(1 << attempt.min(4))).min(Duration::from_secs(4))
}

/// Runs `read` until its answer is `found`, it fails, or `within` has passed since the
/// first try; an answer that is not `found` is believed only then (and returned).
pub async fn until_found<T, E, F, Fut>(
    within: Duration,
    found: impl Fn(&T) -> bool,
    mut read: F,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let t0 = tokio::time::Instant::now();
    let mut attempt = 0;
    loop {
        let answer = read().await?;
        if found(&answer) || t0.elapsed() >= within {
            return Ok(answer);
        }
        tokio::time::sleep(pause(attempt).min(within.saturating_sub(t0.elapsed()))).await;
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_this_process_created_is_fresh() {
        created("sg-0fresh");
        assert!(is_fresh("sg-0fresh"));
        assert!(!is_fresh("sg-0other"));
    }

    #[test]
    fn pauses_grow_and_stop_growing() {
        assert_eq!(pause(0), Duration::from_millis(250));
        assert_eq!(pause(1), Duration::from_millis(500));
        assert_eq!(pause(9), Duration::from_secs(4));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stale_not_found_is_asked_again() {
        let mut answers = vec![None, None, Some(7)].into_iter();
        let got: Result<Option<i32>, ()> =
            until_found(Duration::from_secs(5), Option::is_some, || {
                std::future::ready(Ok(answers.next().flatten()))
            })
            .await;
        assert_eq!(got, Ok(Some(7)));
    }

    #[tokio::test(start_paused = true)]
    async fn not_found_is_believed_after_the_bound() {
        let t0 = tokio::time::Instant::now();
        let mut tries = 0;
        let got: Result<Option<i32>, ()> =
            until_found(Duration::from_secs(3), Option::is_some, || {
                tries += 1;
                std::future::ready(Ok(None))
            })
            .await;
        assert_eq!(got, Ok(None));
        assert!(tries > 2, "{tries}");
        assert!(t0.elapsed() >= Duration::from_secs(3));
        assert!(t0.elapsed() < Duration::from_secs(5));
    }
}
