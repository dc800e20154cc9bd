//! One apply at a time per stack. The lock lives in AWS, so that runs on different
//! machines see it: a security group named `reconcile-lock-<stack>` in the stack's VPC,
//! which EC2 creates at most once (a second create fails `InvalidGroup.Duplicate`). Its
//! tags say who holds it and until when; the holder pushes the expiry forward while it
//! runs. An expired lock, or one held by a process of this host that has died, is taken
//! over. Like everything the stack creates it carries `reconcile:stack`; the observer
//! leaves lock groups out, so plans never count it as a group of the stack.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::aws::ec2::Ec2;
use crate::aws::{self, Clients, Meter};
use crate::model::{ObservedSg, Tags};

/// How long a lock stays valid without its holder renewing it.
pub const LEASE: Duration = Duration::from_secs(5 * 60);
/// How often the holder renews it.
const RENEW: Duration = Duration::from_secs(60);
/// Tag that marks a lock group, with the stack as value.
pub const LOCK_TAG: &str = "reconcile:lock";

pub fn lock_name(stack: &str) -> String {
    format!("reconcile-lock-{stack}")
}

/// Who holds a lock, as its tags say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub who: String,
    pub host: String,
    pub pid: u32,
    /// Seconds since the epoch.
    pub expires: i64,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (pid {} on {}), until {}",
            self.who,
            self.pid,
            self.host,
            crate::render::human::utc(self.expires)
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("stack {stack} is locked by {holder}; waited {waited:?} (--lock-timeout). If that run is gone, `reconcile unlock -f <manifest>` releases the lock")]
    Held {
        stack: String,
        holder: Holder,
        waited: Duration,
    },
    #[error("the lock of stack {stack}: {source}")]
    Aws {
        stack: String,
        #[source]
        source: aws::Error,
    },
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown-host".to_owned())
}

fn me(stack: &str, expires: i64) -> (Holder, Tags) {
    let who = std::env::var("USER").unwrap_or_else(|_| "reconcile".to_owned());
    let holder = Holder {
        who,
        host: hostname(),
        pid: std::process::id(),
        expires,
    };
    (holder.clone(), tags(stack, &holder))
}

fn tags(stack: &str, h: &Holder) -> Tags {
    BTreeMap::from([
        (LOCK_TAG.to_owned(), stack.to_owned()),
        // Everything the stack creates carries its tag; plans leave lock groups out.
        (crate::names::STACK_TAG.to_owned(), stack.to_owned()),
        ("reconcile:holder".to_owned(), h.who.clone()),
        ("reconcile:host".to_owned(), h.host.clone()),
        ("reconcile:pid".to_owned(), h.pid.to_string()),
        ("reconcile:expires".to_owned(), h.expires.to_string()),
    ])
}

fn holder_of(g: &ObservedSg) -> Holder {
    let tag = |k: &str| g.tags.get(k).cloned().unwrap_or_default();
    Holder {
        who: tag("reconcile:holder"),
        host: tag("reconcile:host"),
        pid: tag("reconcile:pid").parse().unwrap_or(0),
        expires: tag("reconcile:expires").parse().unwrap_or(0),
    }
}

/// A lock is stale when it has expired, or its holder ran on this host and is gone.
fn stale(h: &Holder) -> bool {
    let dead_here = h.host == hostname()
        && h.pid != 0
        && h.pid != std::process::id()
        && !std::path::Path::new(&format!("/proc/{}", h.pid)).exists();
    h.expires < super::now() || dead_here
}

/// A held lock; renewed in the background until released.
pub struct Lock {
    ec2: Ec2,
    id: String,
    stack: String,
    renewer: tokio::task::JoinHandle<()>,
}

fn lease_end() -> i64 {
    super::now() + i64::try_from(LEASE.as_secs()).unwrap_or(300)
}

/// Takes the lock of `stack` (in `vpc`), waiting up to `timeout` for another holder;
/// `waiting` is told once who holds it when it must wait.
pub async fn acquire(
    clients: &Clients,
    meter: &Meter,
    stack: &str,
    vpc: &str,
    timeout: Duration,
    waiting: &(dyn Fn(&Holder) + Sync),
) -> Result<Lock, LockError> {
    let ec2 = Ec2::new(&clients.ec2, meter);
    let name = lock_name(stack);
    let aws = |source| LockError::Aws {
        stack: stack.to_owned(),
        source,
    };
    let t0 = Instant::now();
    let mut told = false;
    let mut pause = Duration::from_millis(200);
    loop {
        let (_, my_tags) = me(stack, lease_end());
        let description = format!("reconcile lock of stack {stack}: one apply at a time");
        if let Some(id) = ec2
            .create_lock_group(&name, &description, vpc, &my_tags)
            .await
            .map_err(aws)?
        {
            // EC2 (and moto without a lock of its own) may let two simultaneous creates
            // succeed: read back, and give way if there is more than one.
            let all = ec2.groups_named(&name, vpc).await.map_err(aws)?;
            if all.len() == 1 {
                let renewer = renew(ec2.clone(), id.clone(), stack.to_owned());
                return Ok(Lock {
                    ec2,
                    id,
                    stack: stack.to_owned(),
                    renewer,
                });
            }
            ec2.delete_security_group(&id).await.map_err(aws)?;
        } else {
            let found = ec2.groups_named(&name, vpc).await.map_err(aws)?;
            if let Some(g) = found.first() {
                let holder = holder_of(g);
                if holder.host == hostname() && holder.pid == std::process::id() && found.len() == 1
                {
                    // Ours: an earlier attempt of our create went through, its answer lost.
                    let renewer = renew(ec2.clone(), g.id.clone(), stack.to_owned());
                    return Ok(Lock {
                        ec2,
                        id: g.id.clone(),
                        stack: stack.to_owned(),
                        renewer,
                    });
                }
                if stale(&holder) {
                    ec2.delete_security_group(&g.id).await.map_err(aws)?;
                    continue;
                }
                if t0.elapsed() >= timeout {
                    return Err(LockError::Held {
                        stack: stack.to_owned(),
                        holder,
                        waited: t0.elapsed(),
                    });
                }
                if !told {
                    waiting(&holder);
                    told = true;
                }
            }
        }
        // Back off with some jitter, so that simultaneous callers do not meet again.
        let jitter = Duration::from_millis(u64::from(std::process::id() % 7) * 37);
        tokio::time::sleep(pause + jitter).await;
        pause = (pause * 2).min(Duration::from_secs(5));
    }
}

fn renew(ec2: Ec2, id: String, stack: String) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(RENEW).await;
            let (_, tags) = me(&stack, lease_end());
            // A failed renewal is retried at the next tick; the lease has room for it.
            let _ = ec2.set_tags(&id, &tags).await;
        }
    })
}

impl Lock {
    /// Releases the lock.
    pub async fn release(self) -> Result<(), LockError> {
        self.renewer.abort();
        self.ec2
            .delete_security_group(&self.id)
            .await
            .map_err(|source| LockError::Aws {
                stack: self.stack.clone(),
                source,
            })
    }
}

/// Releases the lock of `stack` by hand, whoever holds it; returns the holder if there
/// was one.
pub async fn unlock(
    clients: &Clients,
    meter: &Meter,
    stack: &str,
    vpc: &str,
) -> Result<Option<Holder>, LockError> {
    let ec2 = Ec2::new(&clients.ec2, meter);
    let aws = |source| LockError::Aws {
        stack: stack.to_owned(),
        source,
    };
    let found = ec2
        .groups_named(&lock_name(stack), vpc)
        .await
        .map_err(aws)?;
    let mut holder = None;
    for g in found
        .iter()
        .filter(|g| g.tags.get(LOCK_TAG).map(String::as_str) == Some(stack))
    {
        ec2.delete_security_group(&g.id).await.map_err(aws)?;
        holder = Some(holder_of(g));
    }
    Ok(holder)
}
