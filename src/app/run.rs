//! Carrying plans out: every stack's lock, the stacks walked at once (each on its own task,
//! at most `parallel_stacks` of them), the locks released. Nothing here prints: progress
//! and each stack's end go to the [`Hooks`] the caller gives per stack.

use std::sync::Arc;
use std::time::Duration;

use super::{Connections, Error, Loaded, Planned};
use crate::apply::lock::{self, Holder, Lock, LockError};
use crate::apply::{Finished, Hooks, Walked};
use crate::aws::{Clients, Meter, ReadStats};

/// How plans are carried out.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Bounds on each stack's walk.
    pub walk: crate::apply::Options,
    /// Stacks walked at once.
    pub parallel_stacks: usize,
}

/// The locks of a run's stacks: those taken, and those refused (each with why).
pub struct Locks {
    held: Vec<(String, Lock)>,
    /// Stacks whose lock could not be taken: nothing of theirs may be changed.
    pub refused: Vec<(String, LockError)>,
}

impl Locks {
    /// Whether this run holds the stack's lock.
    pub fn holds(&self, stack: &str) -> bool {
        self.held.iter().any(|(s, _)| s == stack)
    }

    fn lease(&self, stack: &str) -> Option<lock::Lease> {
        self.held
            .iter()
            .find(|(s, _)| s == stack)
            .map(|(_, l)| l.lease())
    }

    /// Releases every lock taken; the errors of those that could not be released (each
    /// expires by itself within [`lock::LEASE`]).
    pub async fn release(self) -> Vec<LockError> {
        let mut errors = Vec::new();
        for (_, held) in self.held {
            if let Err(e) = held.release().await {
                errors.push(e);
            }
        }
        errors
    }
}

/// Takes the lock of every stack, in the order of their names, waiting up to `timeout`
/// for a lock held by another run; `waiting` is told which stack waits for whom. A lock
/// that cannot be taken stops only its own stack (see [`Locks::refused`]).
pub async fn lock(
    loaded: &[Loaded],
    conns: &mut Connections,
    timeout: Duration,
    waiting: &(dyn Fn(&str, &Holder) + Sync),
) -> Result<Locks, Error> {
    let mut order: Vec<&Loaded> = loaded.iter().collect();
    order.sort_by(|a, b| a.manifest.stack.cmp(&b.manifest.stack));
    // Every region's clients first: a run that cannot reach one takes no lock at all.
    let mut clients = Vec::with_capacity(order.len());
    for l in &order {
        clients.push(conns.for_stack(l).await?.1);
    }
    let mut locks = Locks {
        held: Vec::new(),
        refused: Vec::new(),
    };
    for (l, clients) in order.into_iter().zip(clients) {
        let stack = &l.manifest.stack;
        let tell = |h: &Holder| waiting(stack, h);
        let meter = Meter::new();
        match lock::acquire(&clients, &meter, stack, &l.manifest.vpc, timeout, &tell).await {
            Ok(held) => locks.held.push((stack.clone(), held)),
            Err(e) => locks.refused.push((stack.clone(), e)),
        }
    }
    Ok(locks)
}

/// Releases the locks of the stacks by hand: a lock whose holder's lease has ended (or
/// who has died) at once, a live one only with `force`, its holder's token.
pub async fn unlock(
    loaded: &[Loaded],
    conns: &mut Connections,
    force: Option<&str>,
) -> Result<Vec<(String, Result<lock::Unlocked, LockError>)>, Error> {
    let mut out = Vec::new();
    for l in loaded {
        let (_, clients) = conns.for_stack(l).await?;
        let meter = Meter::new();
        let done = lock::unlock(&clients, &meter, &l.manifest.stack, &l.manifest.vpc, force).await;
        out.push((l.manifest.stack.clone(), done));
    }
    Ok(out)
}

/// How one stack's run ended.
#[derive(Debug)]
pub struct StackRun {
    pub stack: String,
    pub end: Result<StackEnd, crate::apply::Error>,
}

/// A run that finished or paused: how, and what it cost.
#[derive(Debug, Clone)]
pub struct StackEnd {
    pub walked: Walked,
    pub stats: ReadStats,
}

impl StackRun {
    /// Paused by `--max-wait`: when to run again, and the waits not waited.
    pub fn paused(&self) -> Option<(i64, &[crate::plan::NodeId])> {
        match &self.end {
            Ok(StackEnd {
                walked:
                    Walked {
                        finished: Finished::Paused { resume_at, waiting },
                        ..
                    },
                ..
            }) => Some((*resume_at, waiting)),
            _ => None,
        }
    }
}

/// Carries out the plans of the stacks that have changes, at once (at most
/// `how.parallel_stacks`), each from the state it was read in, with the hooks `hooks`
/// makes for it; returns how each ended, in the order of `planned`. Refuses, before any
/// call, a plan that is blocked or that the checker has not proven, and a stack whose
/// lock `locks` does not hold; each stack's walk stops if it loses its lock.
pub async fn apply(
    planned: &[Planned],
    locks: &Locks,
    conns: &mut Connections,
    how: &RunOptions,
    hooks: &dyn Fn(&str) -> Arc<dyn Hooks>,
) -> Result<Vec<StackRun>, Error> {
    let refused: Vec<String> = planned
        .iter()
        .filter(|p| !p.plan.blockers.is_empty() || p.plan.checked.is_none())
        .map(|p| p.plan.stack.clone())
        .collect();
    if !refused.is_empty() {
        return Err(Error::Blocked { stacks: refused });
    }
    let changing: Vec<&Planned> = planned.iter().filter(|p| p.plan.has_changes()).collect();
    if let Some(p) = changing.iter().find(|p| !locks.holds(&p.plan.stack)) {
        return Err(Error::Bug(format!(
            "stack {} would be changed without its lock",
            p.plan.stack
        )));
    }
    let mut clients: Vec<Clients> = Vec::with_capacity(changing.len());
    for p in &changing {
        clients.push(conns.for_stack(&p.loaded).await?.1);
    }
    let slots = Arc::new(tokio::sync::Semaphore::new(how.parallel_stacks.max(1)));
    let mut runs = tokio::task::JoinSet::new();
    for (i, (p, clients)) in changing.iter().zip(clients).enumerate() {
        let stack = p.plan.stack.clone();
        let hooks = hooks(&stack);
        let (observed, plan) = (p.observed.clone(), p.plan.clone());
        let walk = crate::apply::Options {
            lease: locks.lease(&stack),
            ..how.walk.clone()
        };
        let slots = Arc::clone(&slots);
        runs.spawn(async move {
            let _slot = slots.acquire_owned().await;
            let meter = Meter::new();
            let walked = crate::apply::run(
                &clients,
                &meter,
                &observed,
                &plan,
                &walk,
                Arc::clone(&hooks),
            )
            .await;
            let end = walked.map(|walked| StackEnd {
                walked,
                stats: meter.stats(),
            });
            match &end {
                Ok(e) => hooks.ran(&stack, &e.walked, &e.stats),
                Err(e) => hooks.stopped(&stack, e),
            }
            (i, StackRun { stack, end })
        });
    }
    let mut ended = Vec::with_capacity(changing.len());
    while let Some(joined) = runs.join_next().await {
        ended.push(joined.map_err(|e| Error::Bug(format!("a stack's run failed: {e}")))?);
    }
    ended.sort_by_key(|(i, _)| *i);
    Ok(ended.into_iter().map(|(_, r)| r).collect())
}
