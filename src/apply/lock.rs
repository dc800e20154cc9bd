//! One apply at a time per stack. The lock lives in AWS, so that runs on different
//! machines see it: a security group named `reconcile-lock-<stack>` in the stack's VPC,
//! which EC2 creates at most once (a second create fails `InvalidGroup.Duplicate`).
//!
//! A group is a lock only when it carries the tags only reconcile writes: `reconcile:lock`
//! (the stack) and `reconcile:lock-token` (a random token of the holder's run). A group with
//! the lock's name and without them is someone else's: it is never deleted, and the stack
//! cannot be locked until it is renamed or removed.
//!
//! The holder pushes the lease (`reconcile:expires`) forward while it runs; a lock whose
//! lease has ended is taken over. A lock without a readable lease never ends by itself
//! (`unlock --force TOKEN` releases it). The one other takeover is of a holder that has
//! provably died: one that ran on this machine, in this PID namespace, in this boot, whose
//! process is gone (`reconcile:machine` says where pids mean what they mean here; a
//! container sharing the hostname, or a runner of the same name, is another machine).
//!
//! A run that loses its lock (its renewal finds the group gone or another token on it, or
//! cannot renew before the lease ends) stops before its next change and says so.
//!
//! Like everything the stack creates the lock carries `reconcile:stack`; the observer
//! leaves lock groups out, so plans never count one as a group of the stack.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::aws::ec2::Ec2;
use crate::aws::{self, Clients, Meter};
use crate::model::{ObservedSg, Tags};

/// How long a lock stays valid without its holder renewing it.
pub const LEASE: Duration = Duration::from_secs(5 * 60);
/// How often the holder renews it (and finds out whether it still holds it).
const RENEW: Duration = Duration::from_secs(15);
use crate::names::LOCK_TAG;
/// The holder's run's random token.
pub const TOKEN_TAG: &str = "reconcile:lock-token";
const EXPIRES_TAG: &str = "reconcile:expires";
const MACHINE_TAG: &str = "reconcile:machine";

pub fn lock_name(stack: &str) -> String {
    format!("reconcile-lock-{stack}")
}

/// Who holds a lock, as its tags say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub who: String,
    pub host: String,
    pub pid: u32,
    /// The end of the lease, seconds since the epoch; `None` when unreadable (then the
    /// lock never ends by itself).
    pub expires: Option<i64>,
    /// The holder's run's token: `unlock --force TOKEN` names the lock it releases.
    pub token: String,
    /// Where the holder's pid means something (see the module's documentation).
    machine: String,
}

impl Holder {
    fn expired(&self, now: i64) -> bool {
        self.expires.is_some_and(|t| t < now)
    }

    /// Ran on this machine, in this PID namespace and boot, and its process is gone.
    fn dead_here(&self) -> bool {
        let here = machine();
        !here.is_empty()
            && self.machine == here
            && self.pid != 0
            && self.pid != std::process::id()
            && !std::path::Path::new(&format!("/proc/{}", self.pid)).exists()
    }

    /// May be taken over: its lease has ended, or it has provably died.
    pub fn stale(&self) -> bool {
        self.expired(super::now()) || self.dead_here()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("stack {stack} is locked by {holder}; waited {}s (--lock-timeout). If that run is gone, `reconcile unlock -f <manifest> --force {}` releases the lock", waited.as_secs(), holder.token)]
    Held {
        stack: String,
        holder: Box<Holder>,
        waited: Duration,
    },
    #[error("stack {stack} cannot be locked: a security group named {name} ({id}) is in its VPC but is not a reconcile lock (it lacks the {LOCK_TAG} and {TOKEN_TAG} tags); reconcile leaves it alone. Rename or delete it")]
    NotALock {
        stack: String,
        name: String,
        id: String,
    },
    #[error("stack {stack}: the lock was lost ({why}); stopped before the next change. Check who else is applying this stack, then run `reconcile apply` again: it continues from where this run stopped")]
    Lost { stack: String, why: String },
    #[error("stack {stack} is locked by {holder}, whose lease has not ended: that run may still be going. If it is not, `reconcile unlock -f <manifest> --force {}` releases it", holder.token)]
    Live { stack: String, holder: Box<Holder> },
    #[error("stack {stack} is locked by {holder}, not by token {given}; nothing was released")]
    WrongToken {
        stack: String,
        holder: Box<Holder>,
        given: String,
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

/// Where this process's pids mean what they mean: this boot of this kernel, this PID
/// namespace; empty where that cannot be known (then no holder is judged dead here).
fn machine() -> String {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id");
    let pid_ns = std::fs::read_link("/proc/self/ns/pid");
    match (boot, pid_ns) {
        (Ok(boot), Ok(ns)) => {
            let id =
                crate::names::sha256_hex(format!("{}/{}", boot.trim(), ns.display()).as_bytes());
            id[..16].to_owned()
        }
        _ => String::new(),
    }
}

/// A random token for one run's hold of one lock.
fn new_token() -> String {
    let mut bytes = [0u8; 8];
    if getrandom::getrandom(&mut bytes).is_err() {
        // No system randomness: the time and pid still tell runs apart.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let seed = crate::names::sha256_hex(format!("{nanos}/{}", std::process::id()).as_bytes());
        return seed[..16].to_owned();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn me(token: &str, expires: i64) -> Holder {
    Holder {
        who: std::env::var("USER").unwrap_or_else(|_| "reconcile".to_owned()),
        host: hostname(),
        pid: std::process::id(),
        expires: Some(expires),
        token: token.to_owned(),
        machine: machine(),
    }
}

fn tags(stack: &str, h: &Holder) -> Tags {
    BTreeMap::from([
        (LOCK_TAG.to_owned(), stack.to_owned()),
        (TOKEN_TAG.to_owned(), h.token.clone()),
        // Everything the stack creates carries its tag; plans leave lock groups out.
        (crate::names::STACK_TAG.to_owned(), stack.to_owned()),
        ("reconcile:holder".to_owned(), h.who.clone()),
        ("reconcile:host".to_owned(), h.host.clone()),
        ("reconcile:pid".to_owned(), h.pid.to_string()),
        (MACHINE_TAG.to_owned(), h.machine.clone()),
        (
            EXPIRES_TAG.to_owned(),
            h.expires.map_or_else(String::new, |t| t.to_string()),
        ),
    ])
}

/// The holder of a lock group of `stack`, or `None` when the group is not a lock.
fn holder_of(stack: &str, g: &ObservedSg) -> Option<Holder> {
    let tag = |k: &str| g.tags.get(k).cloned().unwrap_or_default();
    if g.tags.get(LOCK_TAG).map(String::as_str) != Some(stack) || tag(TOKEN_TAG).is_empty() {
        return None;
    }
    Some(Holder {
        who: tag("reconcile:holder"),
        host: tag("reconcile:host"),
        pid: tag("reconcile:pid").parse().unwrap_or(0),
        expires: tag(EXPIRES_TAG).parse().ok(),
        token: tag(TOKEN_TAG),
        machine: tag(MACHINE_TAG),
    })
}

fn lease_end() -> i64 {
    super::now() + i64::try_from(LEASE.as_secs()).unwrap_or(300)
}

/// Whether a run still holds its lock; shared by the lock's renewer, which finds out, and
/// the executor, which asks before each change ([`Lease::check`]).
#[derive(Debug, Clone)]
pub struct Lease {
    stack: String,
    lost: Arc<Mutex<Option<String>>>,
}

impl Lease {
    /// `Err` once the lock is lost: no change may be made any more.
    pub fn check(&self) -> Result<(), LockError> {
        let lost = self
            .lost
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match &*lost {
            Some(why) => Err(LockError::Lost {
                stack: self.stack.clone(),
                why: why.clone(),
            }),
            None => Ok(()),
        }
    }

    fn lose(&self, why: String) {
        let mut lost = self
            .lost
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        lost.get_or_insert(why);
    }
}

/// A held lock; renewed in the background until released.
pub struct Lock {
    ec2: Ec2,
    id: String,
    lease: Lease,
    renewer: tokio::task::JoinHandle<()>,
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
    let token = new_token();
    let t0 = Instant::now();
    let mut told = false;
    let mut pause = Duration::from_millis(200);
    loop {
        let mine = tags(stack, &me(&token, lease_end()));
        let description = format!("reconcile lock of stack {stack}: one apply at a time");
        if let Some(id) = ec2
            .create_lock_group(&name, &description, vpc, &mine)
            .await
            .map_err(aws)?
        {
            // EC2 (and moto without a lock of its own) may let two simultaneous creates
            // succeed: read back, and give way if there is more than one.
            let all = ec2.groups_named(&name, vpc).await.map_err(aws)?;
            if all.len() == 1 {
                return Ok(Lock::held(ec2, id, stack, &token, vpc));
            }
            ec2.delete_security_group(&id).await.map_err(aws)?;
        } else {
            let found = ec2.groups_named(&name, vpc).await.map_err(aws)?;
            if let Some(g) = found.first() {
                let Some(holder) = holder_of(stack, g) else {
                    return Err(LockError::NotALock {
                        stack: stack.to_owned(),
                        name: g.name.clone(),
                        id: g.id.clone(),
                    });
                };
                if holder.token == token && found.len() == 1 {
                    // Ours: an earlier attempt of our create went through, its answer lost.
                    return Ok(Lock::held(ec2, g.id.clone(), stack, &token, vpc));
                }
                if holder.stale() {
                    ec2.delete_security_group(&g.id).await.map_err(aws)?;
                    continue;
                }
                if t0.elapsed() >= timeout {
                    return Err(LockError::Held {
                        stack: stack.to_owned(),
                        holder: Box::new(holder),
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

impl Lock {
    fn held(ec2: Ec2, id: String, stack: &str, token: &str, vpc: &str) -> Lock {
        let lease = Lease {
            stack: stack.to_owned(),
            lost: Arc::default(),
        };
        let renewer = tokio::spawn(renew(
            ec2.clone(),
            id.clone(),
            stack.to_owned(),
            vpc.to_owned(),
            token.to_owned(),
            lease.clone(),
        ));
        Lock {
            ec2,
            id,
            lease,
            renewer,
        }
    }

    /// What the executor asks before each change.
    pub fn lease(&self) -> Lease {
        self.lease.clone()
    }

    /// Releases the lock, if it still holds it (a lock lost to another run is not its
    /// to delete).
    pub async fn release(self) -> Result<(), LockError> {
        self.renewer.abort();
        if self.lease.check().is_err() {
            return Ok(());
        }
        self.ec2
            .delete_security_group(&self.id)
            .await
            .map_err(|source| LockError::Aws {
                stack: self.lease.stack.clone(),
                source,
            })
    }
}

/// Every [`RENEW`]: reads the lock back (still there, still this run's token?) and pushes
/// its lease forward. Loses the lease when the lock is gone or another's, or when no
/// renewal has gone through for so long that the lease may have ended.
async fn renew(ec2: Ec2, id: String, stack: String, vpc: String, token: String, lease: Lease) {
    let mut renewed = Instant::now();
    loop {
        tokio::time::sleep(RENEW).await;
        let read = ec2.groups_named(&lock_name(&stack), &vpc).await;
        let failure = match read {
            Ok(found) => match found.iter().find(|g| g.id == id) {
                None => {
                    lease.lose("the lock group was deleted while this run held it, by `reconcile unlock` or by hand".to_owned());
                    return;
                }
                Some(g) => match holder_of(&stack, g) {
                    Some(h) if h.token == token => {
                        match ec2
                            .set_tags(&id, &tags(&stack, &me(&token, lease_end())))
                            .await
                        {
                            Ok(()) => {
                                renewed = Instant::now();
                                None
                            }
                            Err(e) => Some(e.to_string()),
                        }
                    }
                    _ => {
                        lease.lose("another run holds it now".to_owned());
                        return;
                    }
                },
            },
            Err(e) => Some(e.to_string()),
        };
        // The lease is pushed forward by each renewal; without one for nearly the whole
        // lease, another run may take the lock over at any moment.
        if let Some(e) = failure {
            if renewed.elapsed() + RENEW >= LEASE {
                lease.lose(format!(
                    "it could not be renewed for {}s: {e}",
                    renewed.elapsed().as_secs()
                ));
                return;
            }
        }
    }
}

/// What `unlock` did for a stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unlocked {
    /// There was no lock.
    NotLocked,
    /// Released a lock whose holder's lease had ended or who had died.
    Stale(Holder),
    /// Released a live lock by its token (`--force`).
    Forced(Holder),
    /// A group with the lock's name that is not a lock: left alone.
    NotALock { id: String },
}

/// Releases the lock of `stack` by hand: at once when its holder's lease has ended or the
/// holder has died, and a live one only when `force` names its token.
pub async fn unlock(
    clients: &Clients,
    meter: &Meter,
    stack: &str,
    vpc: &str,
    force: Option<&str>,
) -> Result<Unlocked, LockError> {
    let ec2 = Ec2::new(&clients.ec2, meter);
    let aws = |source| LockError::Aws {
        stack: stack.to_owned(),
        source,
    };
    let found = ec2
        .groups_named(&lock_name(stack), vpc)
        .await
        .map_err(aws)?;
    let Some(g) = found.first() else {
        return Ok(Unlocked::NotLocked);
    };
    let Some(holder) = holder_of(stack, g) else {
        return Ok(Unlocked::NotALock { id: g.id.clone() });
    };
    let done = if holder.stale() {
        Unlocked::Stale(holder)
    } else {
        match force {
            Some(t) if t == holder.token => Unlocked::Forced(holder),
            Some(t) => {
                return Err(LockError::WrongToken {
                    stack: stack.to_owned(),
                    holder: Box::new(holder),
                    given: t.to_owned(),
                })
            }
            None => {
                return Err(LockError::Live {
                    stack: stack.to_owned(),
                    holder: Box::new(holder),
                })
            }
        }
    };
    ec2.delete_security_group(&g.id).await.map_err(aws)?;
    Ok(done)
}
