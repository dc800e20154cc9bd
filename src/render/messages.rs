//! What the commands say besides plans and progress: one function per sentence, so that
//! the commands compose and [`super::console::Console`] writes, and the words live here.

use crate::apply::lock::{Holder, Unlocked, LEASE as LOCK_LEASE};
use crate::apply::Walked;
use crate::aws::ReadStats;
use crate::manifest::Manifest;
use crate::plan::{Blocker, NodeId};

use super::human::{duration, unhealthy_target, utc};

/// A lock's holder in the lock's errors and messages: who, where, its token and its
/// lease's end.
impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (pid {} on {}, token {}), ",
            self.who, self.pid, self.host, self.token
        )?;
        match self.expires {
            Some(t) => write!(f, "until {}", utc(t)),
            None => write!(f, "with no lease end"),
        }
    }
}

pub const CONFIRM: &str = "\nApply these changes? Only 'yes' is accepted: ";
pub const NOTHING_CHANGED: &str = "Nothing was changed.";
pub const NO_CHANGES: &str = "No changes: the live state matches every manifest.";
pub const NOT_INTERACTIVE: &str = "refusing to apply without --yes: not on a terminal, so nobody can confirm; nothing was changed";
pub const APPLY_BLOCKED: &str = "the plan is blocked (see above); nothing was changed";
pub const PLAN_BLOCKED: &str =
    "the plan is blocked (see above); nothing can be applied until that is resolved";
pub const OUTPUT_CLOSED: &str =
    "standard output was closed before the plan was shown in full; nothing was changed";
pub const INTERRUPTED_AT_PROMPT: &str = "\ninterrupted: nothing was changed.";
pub const INTERRUPTED: &str = "\ninterrupted: stopped between two calls; releasing the lock (Ctrl-C again to quit at once; the lock then ends with its lease). Run `reconcile apply` again to finish: it continues from where this run stopped.";

/// The heading of a stack's plan: `stack NAME (FILE, REGION)`, and what its read cost.
pub fn stack_label(stack: &str, file: &str, region: &str, read: Option<&ReadStats>) -> String {
    match read {
        Some(s) => format!(
            "stack {stack} ({file}, {region}; read in {} requests, {} rounds)",
            s.requests, s.rounds
        ),
        None => format!("stack {stack} ({file}, {region})"),
    }
}

/// The cost of a read of several stacks.
pub fn run_read(stacks: usize, stats: &ReadStats) -> String {
    format!(
        "\n{stacks} stacks read in {} requests, {} rounds (a listing shared by several stacks is counted once here, and in full for each stack above).",
        stats.requests, stats.rounds
    )
}

/// A blocker, on its own (when the plan itself went elsewhere, e.g. a picture).
pub fn blocked(stack: &str, b: &Blocker) -> String {
    format!(
        "blocked: stack {stack}: {}: {}\n  hint: {}",
        b.subject, b.message, b.hint
    )
}

pub fn plan_saved(path: &std::path::Path) -> String {
    format!(
        "\nSaved the plan to {0}. Run `reconcile apply {0}` to carry it out.",
        path.display()
    )
}

pub fn saved_plan_refused(path: &std::path::Path, why: &str) -> String {
    format!(
        "refusing to apply {}:\n{why}\nRun `reconcile plan --out` again and review the new plan.",
        path.display()
    )
}

pub fn lock_waiting(stack: &str, holder: &Holder, timeout: std::time::Duration) -> String {
    format!(
        "stack {stack} is locked by {holder}; waiting up to {} for it",
        duration(timeout.as_secs())
    )
}

pub fn lock_not_released(error: &dyn std::fmt::Display) -> String {
    format!(
        "{error}; it expires by itself within {}",
        duration(LOCK_LEASE.as_secs())
    )
}

pub fn unlocked(stack: &str, done: &Unlocked) -> String {
    match done {
        Unlocked::NotLocked => format!("stack {stack}: was not locked"),
        Unlocked::Stale(h) => format!("stack {stack}: released the lock held by {h} (its lease had ended, or its process had died)"),
        Unlocked::Forced(h) => format!("stack {stack}: released the lock held by {h} (--force)"),
        Unlocked::NotALock { id } => format!(
            "stack {stack}: was not locked; the security group {id} has the lock's name but is not a reconcile lock, and was left alone"
        ),
    }
}

pub fn apply_complete(stack: &str, walked: &Walked, stats: &ReadStats) -> String {
    use crate::plan::Action;
    let n = |a: Action| walked.done.get(&a).copied().unwrap_or(0);
    let adopted = match n(Action::Adopt) {
        0 => String::new(),
        k => format!("{k} adopted, "),
    };
    let mut text = format!(
        "stack {stack}: apply complete in {}: {adopted}{} added, {} changed, {} replaced, {} removed ({} AWS requests in {} rounds, {} without the gates' requests).",
        duration(walked.elapsed.as_secs()),
        n(Action::Create),
        n(Action::Update),
        n(Action::Replace),
        n(Action::Delete),
        stats.requests,
        walked.rounds,
        walked.rounds_without_gates
    );
    for (record, to) in &walked.switched {
        let to = match to {
            crate::apply::LeadsTo::LoadBalancer(address) => format!("the load balancer {address}"),
            crate::apply::LeadsTo::Values(values) => values.join(", "),
        };
        text.push_str(&format!("\n  {record} now leads to {to}"));
    }
    text
}

/// A stack's run that stopped: the error, and for unhealthy targets each with its reason
/// and what to do.
pub fn stack_stopped(stack: &str, error: &crate::apply::Error) -> String {
    let mut text = format!("error: stack {stack}: {error}");
    if let crate::apply::Error::Unhealthy { targets, .. } = error {
        for t in targets {
            text.push('\n');
            text.push_str(&unhealthy_target(t));
        }
    }
    text
}

/// The steps a failed run never started, and what each waited on: a heading, then a line
/// per step.
pub fn not_started(steps: &[crate::apply::NotStarted]) -> Vec<String> {
    let mut lines = vec![format!(
        "⊘ {} step{} not started (nothing new starts after a failure; `reconcile apply` again carries {}):",
        steps.len(),
        if steps.len() == 1 { "" } else { "s" },
        if steps.len() == 1 { "it" } else { "them" },
    )];
    lines.extend(steps.iter().map(|s| {
        if s.waits_on.is_empty() {
            format!("    {}: was ready", s.node)
        } else {
            let on: Vec<String> = s.waits_on.iter().map(ToString::to_string).collect();
            format!("    {}: after {}", s.node, on.join(", "))
        }
    }));
    lines
}

pub fn paused(stack: &str, resume_at: i64, waiting: &[NodeId], now: i64) -> String {
    let left = u64::try_from((resume_at - now).max(0)).unwrap_or(0);
    format!(
        "stack {stack}: paused at {} (a wait longer than --max-wait). Run `reconcile apply` again after {} (in {}); the wait's start is recorded in Route53, so any machine can continue.",
        waiting
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        utc(resume_at),
        duration(left)
    )
}

pub fn stacks_stopped(stacks: &[String]) -> String {
    format!(
        "Stack{} {} stopped (see above). Run `reconcile apply` again once that is fixed: it continues from where this run stopped.",
        if stacks.len() > 1 { "s" } else { "" },
        stacks.join(", ")
    )
}

/// `validate`'s line for a valid manifest.
pub fn valid(file: &std::path::Path, m: &Manifest) -> String {
    let records = m.dns.as_ref().map_or(0, |d| d.records.len());
    let front = match &m.load_balancer {
        Some(lb) => format!(
            "{} target groups, {} listeners",
            m.target_groups.len(),
            lb.listeners.len()
        ),
        None => "no load balancer".to_owned(),
    };
    format!(
        "{}: valid (stack {}: {} security groups, {front}, {} DNS records)",
        file.display(),
        m.stack,
        m.security_groups.len(),
        records
    )
}

/// What `init` assumed and what to review before applying.
pub fn init_report(found: &crate::init::Found) -> String {
    let mut text = String::from("Assumptions made (check them):\n");
    for a in &found.assumptions {
        text.push_str(&format!("  - {a}\n"));
    }
    if !found.review.is_empty() {
        text.push_str("To review before `reconcile apply`:\n");
        for r in &found.review {
            text.push_str(&format!("  - {r}\n"));
        }
    }
    text
}

pub fn init_wrote(path: &std::path::Path) -> String {
    format!(
        "Wrote {0}. Next: `reconcile plan -f {0}`, then `reconcile apply -f {0}`.",
        path.display()
    )
}
