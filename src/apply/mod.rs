//! Carrying out a plan: the graph is walked with bounded concurrency (a node starts once
//! everything it waits for is done; independent branches run side by side), each change
//! goes through the AWS adapters ([`exec`]), each gate is a wait under a deadline
//! ([`gates`]). The executor decides nothing the plan has not decided, and never prints:
//! it reports through [`Hooks`].

pub mod exec;
pub mod gates;
pub mod lock;
pub mod probe;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use crate::aws::{self, Clients, Meter, Round};
use crate::model::{Observed, TargetHealth};
use crate::plan::{Node, NodeId, NodeKind, Plan};

pub use exec::Context;

/// Seconds since the epoch, now, rounded down: for "has the wait ended yet".
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Bounds on a run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Nodes running at once.
    pub parallelism: usize,
    /// A TTL wait that would end later than this from the start of the run is not waited:
    /// the run stops cleanly and says when to run again.
    pub max_wait: Option<Duration>,
    /// How long the load balancer may take to become active, and Route53 to sync.
    pub settle_timeout: Duration,
    /// How often gates look again.
    pub poll: Duration,
    /// The stack's lock, asked before each change: a run that lost it stops.
    pub lease: Option<lock::Lease>,
    /// Where probes connect instead of the load balancer (`--resolve`).
    pub resolve: Vec<probe::Resolve>,
    /// Seconds a Route53 change may take to reach every server, added to a wait whose
    /// start a crashed run recorded before the change was in sync.
    pub propagation_allowance: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            parallelism: 8,
            max_wait: None,
            settle_timeout: Duration::from_secs(15 * 60),
            poll: Duration::from_secs(5),
            lease: None,
            resolve: Vec::new(),
            propagation_allowance: crate::plan::dns::PROPAGATION_ALLOWANCE,
        }
    }
}

/// Why a run stopped without finishing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{node}: {source}")]
    Aws {
        node: String,
        #[source]
        source: aws::Error,
    },
    #[error("{node}: not every target of {target_group} is healthy; the DNS switch was not made and the site still works on its old path")]
    Unhealthy {
        node: String,
        target_group: String,
        targets: Vec<TargetHealth>,
    },
    #[error("{node}: gave up after {waited:?} waiting until {what}")]
    Timeout {
        node: String,
        what: String,
        waited: Duration,
    },
    #[error("{node}: {message}")]
    Failed { node: String, message: String },
    #[error("{0}")]
    LockLost(Box<lock::LockError>),
    #[error("bug: {0}")]
    Bug(String),
}

impl From<aws::Error> for Error {
    fn from(source: aws::Error) -> Self {
        Error::Aws {
            node: String::new(),
            source,
        }
    }
}

impl Error {
    fn at(self, id: &str) -> Error {
        match self {
            Error::Aws { node, source } if node.is_empty() => Error::Aws {
                node: id.to_owned(),
                source,
            },
            other => other,
        }
    }
}

/// How one node ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeEnd {
    Done,
    /// A wait that cannot end within `--max-wait`: resume after this time (epoch seconds).
    Paused {
        resume_at: i64,
    },
}

/// Where a record the run switched now leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeadsTo {
    /// The load balancer, by its DNS name.
    LoadBalancer(String),
    /// The record's own values (the instances, on the way back).
    Values(Vec<String>),
}

/// How the run ended, and its longest chains of requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Walked {
    pub finished: Finished,
    /// The longest chain of requests that waited on each other, through the graph: a
    /// node's requests come after those of every node it waits for, and one after another
    /// within the node (an upper bound where a node sends some at once).
    pub rounds: usize,
    /// The same chain with the gates' requests left out (their polls, and Route53's
    /// in-sync checks), as if every gate were satisfied without asking.
    pub rounds_without_gates: usize,
    /// How long the walk took.
    pub elapsed: Duration,
    /// The changes carried out, by action.
    pub done: BTreeMap<crate::plan::Action, usize>,
    /// Where the records the run switched now lead.
    pub switched: Vec<(String, LeadsTo)>,
}

/// How the run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finished {
    Done,
    /// Stopped at waits too long for `--max-wait`; everything else that could run did.
    Paused {
        resume_at: i64,
        waiting: Vec<NodeId>,
    },
}

/// What the executor reports; renderers implement it. Nothing else leaves the executor.
pub trait Hooks: Send + Sync {
    fn started(&self, node: &Node);
    fn finished(&self, node: &Node, end: &NodeEnd, took: Duration);
    fn failed(&self, node: &Node, error: &Error);
    /// A wait in progress: how long so far, and how long still if known.
    fn waiting(&self, node: &Node, what: &str, waited: Duration, remaining: Option<Duration>);
    /// The stack's run finished or paused; what it cost.
    fn ran(&self, _stack: &str, _walked: &Walked, _stats: &crate::aws::ReadStats) {}
    /// The stack's run stopped on `error`.
    fn stopped(&self, _stack: &str, _error: &Error) {}
    /// The steps a failed run never started, each with the steps it waited on that did not
    /// finish: reported once, after what was running has finished.
    fn not_started(&self, _steps: &[NotStarted]) {}
}

/// A step the run never started, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotStarted {
    pub node: NodeId,
    /// The steps it waited on that did not finish. None: it was ready, but a run starts
    /// nothing new once a step has failed.
    pub waits_on: Vec<NodeId>,
}

/// Carries out `plan`, starting from the state it was made from. Every request is counted
/// on `meter`, in the round the graph puts it in (see [`Walked::rounds`]).
pub async fn run(
    clients: &Clients,
    meter: &Meter,
    observed: &Observed,
    plan: &Plan,
    opts: &Options,
    hooks: Arc<dyn Hooks>,
) -> Result<Walked, Error> {
    let t0 = std::time::Instant::now();
    let ctx = Arc::new(Context::new(
        clients.clone(),
        meter.clone(),
        observed,
        opts.propagation_allowance,
    ));
    let deadline = opts.max_wait.map(|d| {
        ctx.clock
            .secs()
            .saturating_add(i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    });
    let mut waits_for: BTreeMap<&NodeId, BTreeSet<&NodeId>> = plan
        .nodes
        .iter()
        .map(|n| (&n.id, BTreeSet::new()))
        .collect();
    for (from, to) in &plan.edges {
        if let Some(set) = waits_for.get_mut(to) {
            set.insert(from);
        }
    }
    // Per node done: the round of its last request, with and without the gates' requests.
    let mut done: BTreeMap<NodeId, (Round, Round)> = BTreeMap::new();
    let mut started: BTreeSet<NodeId> = BTreeSet::new();
    let mut paused: Vec<(NodeId, i64)> = Vec::new();
    let mut failure: Option<Error> = None;
    let mut longest = (Round::START, Round::START);
    let mut running = tokio::task::JoinSet::new();
    // Set once a step has failed: the waits still going end (see `run_node`).
    let (stopping, stop) = tokio::sync::watch::channel(false);
    loop {
        if failure.is_none() {
            for n in &plan.nodes {
                if running.len() >= opts.parallelism.max(1) {
                    break;
                }
                let deps = waits_for.get(&n.id);
                let ready = !started.contains(&n.id)
                    && deps.is_none_or(|deps| deps.iter().all(|d| done.contains_key(*d)));
                if !ready {
                    continue;
                }
                let after = deps
                    .into_iter()
                    .flatten()
                    .filter_map(|d| done.get(*d))
                    .fold((Round::START, Round::START), |(a, b), (c, d)| {
                        (a.max(*c), b.max(*d))
                    });
                started.insert(n.id.clone());
                hooks.started(n);
                let (ctx, node, hooks, opts, stop) = (
                    ctx.clone(),
                    n.clone(),
                    hooks.clone(),
                    opts.clone(),
                    stop.clone(),
                );
                running.spawn(async move {
                    let t0 = std::time::Instant::now();
                    let (end, last) = aws::chained(
                        after.0,
                        run_node(&ctx, &node, &opts, deadline, hooks.as_ref(), stop),
                    )
                    .await;
                    let sent = last.0.saturating_sub(after.0 .0);
                    let without_gates = match node.kind {
                        NodeKind::Change(_) => Round(after.1 .0 + sent),
                        NodeKind::Gate(_) => after.1,
                    };
                    (node, end, t0.elapsed(), (last, without_gates))
                });
            }
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        let (node, end, took, rounds) =
            joined.map_err(|e| Error::Bug(format!("a step of the run panicked: {e}")))?;
        longest = (longest.0.max(rounds.0), longest.1.max(rounds.1));
        match end {
            Ok(end) => {
                hooks.finished(&node, &end, took);
                match end {
                    NodeEnd::Done => {
                        done.insert(node.id.clone(), rounds);
                    }
                    NodeEnd::Paused { resume_at } => paused.push((node.id.clone(), resume_at)),
                }
            }
            Err(e) => {
                let e = e.at(&node.id.to_string());
                hooks.failed(&node, &e);
                // Let the changes running finish, and the waits end; start nothing new.
                failure.get_or_insert(e);
                let _ = stopping.send(true);
            }
        }
    }
    let not_started: Vec<NotStarted> = plan
        .nodes
        .iter()
        .filter(|n| !started.contains(&n.id))
        .map(|n| NotStarted {
            node: n.id.clone(),
            waits_on: waits_for
                .get(&n.id)
                .into_iter()
                .flatten()
                .filter(|d| !done.contains_key(**d))
                .map(|d| (*d).clone())
                .collect(),
        })
        .collect();
    if let Some(e) = failure {
        if !not_started.is_empty() {
            hooks.not_started(&not_started);
        }
        return Err(e);
    }
    // Every node ran, or waits behind a paused one: a walk that ends with a node never
    // started and nothing paused would report a half-carried plan as done.
    if paused.is_empty() && !not_started.is_empty() {
        let list: Vec<String> = not_started
            .iter()
            .map(|s| {
                let on: Vec<String> = s.waits_on.iter().map(ToString::to_string).collect();
                format!("{} (waiting on {})", s.node, on.join(", "))
            })
            .collect();
        return Err(Error::Bug(format!(
            "the run ended with {} of the plan's steps never started: {}",
            list.len(),
            list.join("; ")
        )));
    }
    let finished = if paused.is_empty() {
        Finished::Done
    } else {
        Finished::Paused {
            resume_at: paused
                .iter()
                .map(|(_, t)| *t)
                .max()
                .unwrap_or_else(|| ctx.clock.secs()),
            waiting: paused.into_iter().map(|(id, _)| id).collect(),
        }
    };
    let mut done_by_action: BTreeMap<crate::plan::Action, usize> = BTreeMap::new();
    let mut switched = Vec::new();
    for n in plan.nodes.iter().filter(|n| done.contains_key(&n.id)) {
        if let NodeKind::Change(c) = &n.kind {
            *done_by_action.entry(c.action).or_insert(0) += 1;
            if let crate::plan::Op::SetRecord {
                name,
                value,
                step: crate::plan::DnsStep::Switch,
                ..
            } = &c.op
            {
                match value {
                    crate::plan::RecordValue::LoadBalancer(lb) => {
                        if let Ok(a) = ctx.load_balancer(lb) {
                            switched.push((name.clone(), LeadsTo::LoadBalancer(a.dns_name)));
                        }
                    }
                    crate::plan::RecordValue::Values(v) => {
                        switched.push((name.clone(), LeadsTo::Values(v.clone())));
                    }
                    crate::plan::RecordValue::Alias { .. } => {}
                }
            }
        }
    }
    Ok(Walked {
        finished,
        rounds: longest.0 .0,
        rounds_without_gates: longest.1 .0,
        elapsed: t0.elapsed(),
        done: done_by_action,
        switched,
    })
}

async fn run_node(
    ctx: &Context,
    node: &Node,
    opts: &Options,
    deadline: Option<i64>,
    hooks: &dyn Hooks,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Result<NodeEnd, Error> {
    match &node.kind {
        NodeKind::Change(c) => {
            if let Some(lease) = &opts.lease {
                lease.check().map_err(|e| Error::LockLost(Box::new(e)))?;
            }
            let waiting = |what: &str, waited: Duration| hooks.waiting(node, what, waited, None);
            exec::run(ctx, &c.op, &waiting).await?;
            Ok(NodeEnd::Done)
        }
        NodeKind::Gate(g) if left_when_the_run_stops(g) => {
            // Once a step has failed nothing new starts, so a wait still going (an hour's
            // TTL, say) would only hold the run up before it stops: it ends at once. Every
            // wait's start is recorded or looked at again, so the next run goes on from there.
            let mut stop = stop;
            tokio::select! {
                end = gates::wait(ctx, node, g, opts, deadline, hooks) => end,
                Ok(_) = stop.wait_for(|stopping| *stopping) => Err(Error::Failed {
                    node: node.id.to_string(),
                    message: "stopped waiting, as another step failed; `reconcile apply` again waits from where this run was".into(),
                }),
            }
        }
        NodeKind::Gate(g) => gates::wait(ctx, node, g, opts, deadline, hooks).await,
    }
}

/// Whether a wait is left as soon as the run stops after a failure: every wait but a
/// bake, which watches traffic it may yet have to move back.
fn left_when_the_run_stops(gate: &crate::plan::Gate) -> bool {
    use crate::plan::Gate;
    match gate {
        Gate::Bake { .. } => false,
        Gate::LbActive { .. }
        | Gate::TargetsHealthy { .. }
        | Gate::RulesInPlace { .. }
        | Gate::DnsInSync { .. }
        | Gate::CertIssued { .. }
        | Gate::Probe(_)
        | Gate::WaitTtl { .. } => true,
    }
}
