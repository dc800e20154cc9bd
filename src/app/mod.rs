//! The library's API: the flow every command follows, apart from the command line and from
//! printing (the commands in `cli/` call it and render what it returns; nothing here
//! prints).
//!
//! ```text
//! load ──▶ observe ──▶ plan (diff, graph, check) ──▶ apply (locks, stacks at once)
//! ```
//!
//! - [`load`]: find the manifests (a folder stands for its `.json` files), parse and validate
//!   them all before any AWS call; every problem of every file at once.
//! - [`observe`]: read the live state of every stack, one batched read per region on
//!   shared clients, the regions concurrently.
//! - [`plan()`]: plan each stack (diff, graph, and the checker's proof), then what only the
//!   run as a whole can see (a record managed by two stacks).
//! - [`check`]: the checker's verdict on a stack's plan, again (a saved plan is checked
//!   before it runs).
//! - [`apply()`]: lock every stack, carry the plans out (the stacks at once, each on its own
//!   task, progress through [`crate::apply::Hooks`]), release the locks.
//! - [`saved`]: the plan file of `plan --out`, and the rule that a saved plan runs only
//!   when it is the plan made afresh from the same manifest and state.

mod run;
pub mod saved;

pub use run::{apply, lock, unlock, Locks, RunOptions, StackEnd, StackRun};
pub use saved::SavedPlan;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::aws::{self, AwsOptions, Clients, Meter, ReadStats};
use crate::manifest::{self, Diagnostics, Manifest};
use crate::model::{Desired, Observed};
use crate::observe;
use crate::plan::{self, Plan};

/// Problems that stop a command, each a sentence for the user.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Manifests(ManifestErrors),
    #[error("{path}: {message}")]
    Files { path: String, message: String },
    /// A read failed. Reads are shared by the stacks of a region, so it names them all.
    #[error("{}: {source}", stacks_label(stacks))]
    Aws {
        stacks: Vec<String>,
        #[source]
        source: aws::Error,
    },
    #[error("no AWS region for stack {stack}: set `region` in the manifest, pass --region, or set AWS_REGION")]
    NoRegion { stack: String },
    /// A plan with blockers, or one the checker has not proven, is never carried out.
    #[error("{}: the plan is blocked; nothing was changed", stacks_label(stacks))]
    Blocked { stacks: Vec<String> },
    #[error("{0}")]
    Bug(String),
}

/// `stack a` or `stacks a, b`.
fn stacks_label(stacks: &[String]) -> String {
    match stacks {
        [one] => format!("stack {one}"),
        more => format!("stacks {}", more.join(", ")),
    }
}

/// Every manifest that failed validation.
#[derive(Debug)]
pub struct ManifestErrors(pub Vec<Diagnostics>);

impl std::fmt::Display for ManifestErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for d in &self.0 {
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

/// A manifest read from disk and validated.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub path: PathBuf,
    /// SHA-256 of the file's bytes, hex.
    pub digest: String,
    pub manifest: Manifest,
    pub desired: Desired,
}

/// Finds, loads and validates the manifests named by `-f` arguments (a folder stands for
/// the `.json` files directly in it); fails with every problem of every file at once.
pub fn load(args: &[PathBuf]) -> Result<Vec<Loaded>, Error> {
    load_all(&manifest_files(args)?)
}

/// `-f` arguments to files: a folder stands for the manifests directly in it, its `.json`
/// files but JSON Schemas (`*.schema.json`). A link there that leads nowhere is an error,
/// not a stack silently left out.
pub fn manifest_files(args: &[PathBuf]) -> Result<Vec<PathBuf>, Error> {
    let mut out = Vec::new();
    for a in args {
        if !a.is_dir() {
            out.push(a.clone());
            continue;
        }
        let failed = |message: String| Error::Files {
            path: a.display().to_string(),
            message,
        };
        let entries =
            std::fs::read_dir(a).map_err(|e| failed(format!("cannot list the folder: {e}")))?;
        let mut files: Vec<PathBuf> = Vec::new();
        for entry in entries {
            let p = entry
                .map_err(|e| failed(format!("cannot list the folder: {e}")))?
                .path();
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if !name.ends_with(".json") || name.ends_with(".schema.json") {
                continue;
            }
            if p.is_symlink() && !p.exists() {
                return Err(Error::Files {
                    path: p.display().to_string(),
                    message: "a link to nothing: its stack would be left out; remove the link or restore what it leads to".into(),
                });
            }
            if p.is_file() {
                files.push(p);
            }
        }
        files.sort();
        if files.is_empty() {
            return Err(failed("the folder holds no .json manifest".into()));
        }
        out.extend(files);
    }
    Ok(out)
}

/// Loads and validates every manifest; fails with all problems of all files at once.
pub fn load_all(files: &[PathBuf]) -> Result<Vec<Loaded>, Error> {
    let mut loaded = Vec::new();
    let mut failed = Vec::new();
    for path in files {
        match load_one(path) {
            Ok(l) => loaded.push(l),
            Err(d) => failed.push(d),
        }
    }
    let mut seen = std::collections::BTreeMap::new();
    for l in &loaded {
        if let Some(other) = seen.insert(l.manifest.stack.clone(), l.path.clone()) {
            return Err(Error::Files {
                path: l.path.display().to_string(),
                message: format!(
                    "stack {} is also declared by {}; each stack has one manifest",
                    l.manifest.stack,
                    other.display()
                ),
            });
        }
    }
    if failed.is_empty() {
        Ok(loaded)
    } else {
        Err(Error::Manifests(ManifestErrors(failed)))
    }
}

fn load_one(path: &Path) -> Result<Loaded, Diagnostics> {
    let manifest = manifest::load(path)?;
    let bytes = std::fs::read(path).unwrap_or_default();
    Ok(Loaded {
        path: path.to_path_buf(),
        digest: sha256_hex(&bytes),
        desired: Desired::from_manifest(&manifest),
        manifest,
    })
}

use crate::names::sha256_hex;

/// A fingerprint of observed state: equal states give equal fingerprints.
pub fn fingerprint(o: &Observed) -> String {
    sha256_hex(&serde_json::to_vec(o).unwrap_or_default())
}

/// One stack, read and planned.
#[derive(Debug, Clone)]
pub struct Planned {
    pub loaded: Loaded,
    pub region: String,
    pub observed: Observed,
    pub plan: Plan,
    /// The requests its read needed, those shared with other stacks counted in full.
    pub stats: ReadStats,
}

/// Every stack of a run, read and planned, and what the whole read cost.
#[derive(Debug, Clone)]
pub struct Planning {
    pub stacks: Vec<Planned>,
    /// The run's requests (each once) and its longest chain of rounds.
    pub stats: ReadStats,
}

/// The region a stack runs in: the flag, else the manifest, else the AWS chain.
async fn region_of(loaded: &Loaded, opts: &AwsOptions) -> Result<String, Error> {
    if let Some(r) = opts.region.as_ref().or(loaded.manifest.region.as_ref()) {
        return Ok(r.clone());
    }
    let from_chain = aws::loader(opts).load().await;
    from_chain
        .region()
        .map(|r| r.to_string())
        .ok_or_else(|| Error::NoRegion {
            stack: loaded.manifest.stack.clone(),
        })
}

/// Clients per region, made once and shared by the stacks of that region.
pub struct Connections {
    opts: AwsOptions,
    by_region: std::collections::BTreeMap<String, Clients>,
}

impl Connections {
    pub fn new(opts: AwsOptions) -> Connections {
        Connections {
            opts,
            by_region: Default::default(),
        }
    }

    pub async fn for_stack(&mut self, loaded: &Loaded) -> Result<(String, Clients), Error> {
        let region = region_of(loaded, &self.opts).await?;
        if !self.by_region.contains_key(&region) {
            let opts = AwsOptions {
                region: Some(region.clone()),
                ..self.opts.clone()
            };
            self.by_region
                .insert(region.clone(), aws::connect(&opts).await);
        }
        let clients = self
            .by_region
            .get(&region)
            .cloned()
            .ok_or_else(|| Error::Bug("clients vanished".into()))?;
        Ok((region, clients))
    }
}

/// One stack's live state, as the run's read found it.
#[derive(Debug, Clone)]
pub struct Read {
    pub loaded: Loaded,
    pub region: String,
    pub observed: Observed,
    /// The requests its read needed, those shared with other stacks counted in full.
    pub stats: ReadStats,
}

/// Every stack of a run, read, and what the whole read cost.
#[derive(Debug, Clone)]
pub struct Observation {
    pub stacks: Vec<Read>,
    /// The run's requests (each once) and its longest chain of rounds.
    pub stats: ReadStats,
}

/// Reads every stack: one batched read per region ([`observe::observe_many`]), the
/// regions concurrently, every request counted on one meter for the run and for the stacks
/// it served. Stacks come in the order of `loaded`.
pub async fn observe(loaded: Vec<Loaded>, conns: &mut Connections) -> Result<Observation, Error> {
    let meter = Meter::new();
    let mut regions: BTreeMap<String, (Clients, Vec<Loaded>)> = BTreeMap::new();
    let mut order = Vec::with_capacity(loaded.len());
    for l in loaded {
        let (region, clients) = conns.for_stack(&l).await?;
        order.push(l.manifest.stack.clone());
        regions
            .entry(region)
            .or_insert_with(|| (clients, Vec::new()))
            .1
            .push(l);
    }
    let mut tasks = tokio::task::JoinSet::new();
    for (region, (clients, stacks)) in regions {
        let meter = meter.clone();
        tasks.spawn(async move {
            let desired: Vec<Desired> = stacks.iter().map(|l| l.desired.clone()).collect();
            let observed = observe::observe_many(&clients, &meter, &desired).await;
            (region, stacks, observed)
        });
    }
    let mut done: BTreeMap<String, Read> = BTreeMap::new();
    while let Some(joined) = tasks.join_next().await {
        let (region, stacks, observed) =
            joined.map_err(|e| Error::Bug(format!("a read task failed: {e}")))?;
        let observed = observed.map_err(|source| Error::Aws {
            stacks: stacks.iter().map(|l| l.manifest.stack.clone()).collect(),
            source,
        })?;
        if observed.len() != stacks.len() {
            return Err(Error::Bug(format!(
                "the read of {} stacks gave {} states",
                stacks.len(),
                observed.len()
            )));
        }
        for (l, observed) in stacks.into_iter().zip(observed) {
            let stack = l.manifest.stack.clone();
            done.insert(
                stack.clone(),
                Read {
                    stats: meter.stats_of(&stack),
                    loaded: l,
                    region: region.clone(),
                    observed,
                },
            );
        }
    }
    let stacks = order
        .iter()
        .map(|stack| {
            done.remove(stack)
                .ok_or_else(|| Error::Bug(format!("stack {stack} was not read")))
        })
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(Observation {
        stacks,
        stats: meter.stats(),
    })
}

/// Plans every stack read: the diff, the graph and the checker's proof
/// ([`crate::plan::plan`]), then a record managed by two stacks of the run blocks both.
/// Pure: no AWS call.
pub fn plan(observation: Observation) -> Result<Planning, Error> {
    let mut stacks = observation
        .stacks
        .into_iter()
        .map(|r| {
            let plan = plan::plan(&r.loaded.desired, &r.observed)
                .map_err(|e| Error::Bug(e.to_string()))?;
            Ok(Planned {
                loaded: r.loaded,
                region: r.region,
                observed: r.observed,
                plan,
                stats: r.stats,
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    block_shared_records(&mut stacks);
    Ok(Planning {
        stacks,
        stats: observation.stats,
    })
}

/// [`observe`], then [`plan()`].
pub async fn observe_and_plan(
    loaded: Vec<Loaded>,
    conns: &mut Connections,
) -> Result<Planning, Error> {
    plan(observe(loaded, conns).await?)
}

/// Plans the destruction of every stack read: each stack's desired state becomes
/// [`plan::destroy_desired`] (what the stack owns goes, found by name and tag; records stay),
/// and a stack whose managed record still leads to its load balancer is blocked. The
/// plans are proven like any other.
pub fn plan_destroy(mut observation: Observation) -> Result<Planning, Error> {
    let mut refused: BTreeMap<String, Vec<plan::Blocker>> = BTreeMap::new();
    for r in &mut observation.stacks {
        let blockers = plan::destroy_blockers(&r.loaded.desired, &r.observed);
        refused.insert(r.loaded.manifest.stack.clone(), blockers);
        r.loaded.desired = plan::destroy_desired(&r.loaded.desired, &r.observed);
    }
    let mut planning = plan(observation)?;
    for p in &mut planning.stacks {
        if let Some(b) = refused.remove(&p.loaded.manifest.stack) {
            p.plan.blockers.extend(b);
        }
        if p.loaded.manifest.dns.is_none() && p.plan.has_changes() {
            p.plan.warnings.push(plan::Warning {
                drift: false,
                subject: format!("stack {}", p.plan.stack),
                message: "the manifest manages no DNS record, so nothing tells whether a record still leads to the stack's load balancer; destroying it would take such a site down".to_owned(),
                hint: "check the zone first, or keep the site's records under dns.records so that destroy refuses while they lead to the load balancer".to_owned(),
            });
        }
        plan::destroy_reasons(&mut p.plan);
    }
    Ok(planning)
}

/// What a run does: bring the stacks to their manifests, or destroy them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    #[default]
    Apply,
    Destroy,
}

/// [`observe`], then [`plan()`] or [`plan_destroy`].
pub async fn observe_and_plan_for(
    loaded: Vec<Loaded>,
    conns: &mut Connections,
    mode: Mode,
) -> Result<Planning, Error> {
    let observation = observe(loaded, conns).await?;
    match mode {
        Mode::Apply => plan(observation),
        Mode::Destroy => plan_destroy(observation),
    }
}

/// The checker's verdict on a stack's plan from the state it was read in: every state an
/// execution can pass through keeps the guarantees, or the first that does not.
pub fn check(p: &Planned) -> Result<plan::check::Checked, plan::check::Unproven> {
    plan::check::check(&p.loaded.desired, &p.observed, &p.plan)
}

/// A record managed by two stacks of the run would be moved back and forth between their
/// load balancers, each apply undoing the other: every stack that names it is blocked,
/// naming the others.
fn block_shared_records(stacks: &mut [Planned]) {
    let mut managers: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for p in stacks.iter() {
        if let Some(dns) = &p.loaded.desired.dns {
            for r in &dns.records {
                managers
                    .entry((dns.zone.clone(), r.name.clone()))
                    .or_default()
                    .push(p.loaded.manifest.stack.clone());
            }
        }
    }
    for p in stacks.iter_mut() {
        let me = p.loaded.manifest.stack.clone();
        for ((_, name), owners) in &managers {
            if owners.len() < 2 || !owners.contains(&me) {
                continue;
            }
            let others: Vec<&String> = owners.iter().filter(|o| **o != me).collect();
            p.plan.blockers.push(plan::Blocker {
                subject: format!("dns record {name}"),
                message: format!(
                    "{name} is also managed by stack {}: two stacks would point it at their own load balancers in turn",
                    others
                        .iter()
                        .map(|o| o.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                hint: "manage each record in one manifest only".to_owned(),
            });
        }
    }
}
