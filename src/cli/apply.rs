//! `reconcile apply` (from manifests or a saved plan: locks, a fresh plan, the stacks
//! walked at once) and `reconcile unlock`.

use std::io::Write as _;
use std::path::PathBuf;

use reconcile::app::{self, Connections, SavedPlan};
use reconcile::apply::lock;
use reconcile::render::human;

use super::args::AwsFlags;
use super::offline::load_or_report;
use super::Outcome;

pub struct ApplyArgs {
    pub yes: bool,
    pub json: bool,
    /// Exit 3 when paused.
    pub detailed_exitcode: bool,
    pub parallel_stacks: usize,
    pub opts: reconcile::apply::Options,
    pub lock_timeout: std::time::Duration,
    pub aws: AwsFlags,
}

pub fn read_saved(path: &std::path::Path) -> anyhow::Result<SavedPlan> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read the plan {}: {e}", path.display()))?;
    // The version first: a plan from another version is named as such, not as broken.
    #[derive(serde::Deserialize)]
    struct Version {
        format_version: String,
    }
    let version: Version = serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "{} is not a plan saved by `reconcile plan --out`: {e}",
            path.display()
        )
    })?;
    if version.format_version != reconcile::render::json::FORMAT_VERSION {
        anyhow::bail!(
            "{} has format_version \"{}\", which this reconcile does not read (it reads \"{}\"); make the plan again with this version's `reconcile plan --out`",
            path.display(),
            version.format_version,
            reconcile::render::json::FORMAT_VERSION
        );
    }
    serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "{} cannot be read as a saved plan ({e}): it was edited, or made by another build of reconcile; make the plan again with `reconcile plan --out`",
            path.display()
        )
    })
}

/// Reads the stacks of a saved plan again, and refuses when the manifest or the live state
/// differ from what the plan was made from.
pub async fn replan_saved(
    saved: SavedPlan,
    loaded: Vec<app::Loaded>,
    conns: &mut Connections,
) -> anyhow::Result<Result<Vec<app::Planned>, String>> {
    let mut problems = Vec::new();
    for (l, s) in loaded.iter().zip(&saved.stacks) {
        if l.digest != s.manifest_digest {
            problems.push(format!(
                "{} changed since the plan was made",
                l.path.display()
            ));
        }
    }
    if !problems.is_empty() {
        return Ok(Err(problems.join("\n")));
    }
    let fresh = app::plan_all(loaded, conns).await?.stacks;
    for (f, s) in fresh.iter().zip(&saved.stacks) {
        if app::fingerprint(&f.observed) != s.observed_fingerprint {
            let what = app::what_changed(&s.plan, &f.plan);
            problems.push(format!(
                "stack {}: the live state changed since the plan was made ({what})",
                f.plan.stack
            ));
        }
    }
    if !problems.is_empty() {
        return Ok(Err(problems.join("\n")));
    }
    // The planner is deterministic: from the same manifest and state it makes the same
    // plan. A saved plan that differs was edited after it was made, and an edited plan
    // may drop the edges that keep the site up or touch what the stack does not own.
    for (f, s) in fresh.iter().zip(&saved.stacks) {
        if f.plan != s.plan {
            let mut what = vec![];
            if f.plan.nodes != s.plan.nodes {
                what.push(app::what_changed(&s.plan, &f.plan));
            }
            let edges = |p: &reconcile::plan::Plan| -> std::collections::BTreeSet<(
                reconcile::plan::NodeId,
                reconcile::plan::NodeId,
            )> { p.edges.iter().cloned().collect() };
            let (saved_edges, fresh_edges) = (edges(&s.plan), edges(&f.plan));
            let missing = fresh_edges.difference(&saved_edges).count();
            let added = saved_edges.difference(&fresh_edges).count();
            if missing + added > 0 {
                what.push(format!(
                    "its ordering differs: {missing} edge(s) missing, {added} added"
                ));
            }
            if f.plan.blockers != s.plan.blockers {
                what.push("its blockers differ".to_owned());
            }
            problems.push(format!(
                "stack {}: the saved plan is not the plan reconcile makes from this manifest and this state; it was edited after `plan --out` ({}). Make a new one with `reconcile plan --out`",
                f.plan.stack,
                what.join("; ")
            ));
        }
    }
    if !problems.is_empty() {
        return Ok(Err(problems.join("\n")));
    }
    Ok(Ok(fresh))
}

pub fn confirm() -> anyhow::Result<bool> {
    print!("\nApply these changes? Only 'yes' is accepted: ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(answer.trim() == "yes")
}

/// Loads what to apply (offline), takes every stack's lock, applies, releases the locks.
pub async fn apply_cmd(
    planfile: Option<&std::path::Path>,
    files: &[PathBuf],
    how: &ApplyArgs,
) -> anyhow::Result<Outcome> {
    let saved = planfile.map(read_saved).transpose()?;
    let files = match &saved {
        Some(s) => Ok(s.stacks.iter().map(|s| s.manifest.clone()).collect()),
        None => app::manifest_files(files),
    };
    let Some(loaded) = load_or_report(files)? else {
        return Ok(Outcome::Failed);
    };
    // Off a terminal nobody can confirm: refuse before touching AWS at all.
    {
        use std::io::IsTerminal as _;
        let interactive = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
        if planfile.is_none() && !how.yes && !interactive {
            eprintln!("error: refusing to apply without --yes: not on a terminal, so nobody can confirm; nothing was changed");
            return Ok(Outcome::Failed);
        }
    }
    let mut conns = Connections::new(how.aws.options());
    let mut order: Vec<&app::Loaded> = loaded.iter().collect();
    order.sort_by(|a, b| a.manifest.stack.cmp(&b.manifest.stack));
    let mut locks = Vec::new();
    let mut refused = None;
    for l in order {
        let (_, clients) = conns.for_stack(l).await?;
        let meter = reconcile::aws::Meter::new();
        let tell = |h: &lock::Holder| {
            eprintln!(
                "stack {} is locked by {h}; waiting up to {} for it",
                l.manifest.stack,
                human::duration(how.lock_timeout.as_secs())
            )
        };
        match lock::acquire(
            &clients,
            &meter,
            &l.manifest.stack,
            &l.manifest.vpc,
            how.lock_timeout,
            &tell,
        )
        .await
        {
            Ok(held) => locks.push(held),
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    let result = match refused {
        Some(e) => {
            eprintln!("error: {e}; nothing was changed");
            Ok(Outcome::Failed)
        }
        None => tokio::select! {
            r = apply_locked(planfile, saved, loaded, &mut conns, how) => r,
            _ = tokio::signal::ctrl_c() => {
                eprintln!("\ninterrupted: stopped between two calls; the lock is released. Run `reconcile apply` again to finish: it continues from where this run stopped.");
                Ok(Outcome::Interrupted)
            }
        },
    };
    for held in locks {
        if let Err(e) = held.release().await {
            eprintln!(
                "warning: {e}; it expires by itself within {}",
                human::duration(lock::LEASE.as_secs())
            );
        }
    }
    result
}

pub async fn apply_locked(
    planfile: Option<&std::path::Path>,
    saved: Option<SavedPlan>,
    loaded: Vec<app::Loaded>,
    conns: &mut Connections,
    how: &ApplyArgs,
) -> anyhow::Result<Outcome> {
    use std::io::IsTerminal as _;
    let planned = match saved {
        Some(saved) => match replan_saved(saved, loaded, conns).await? {
            Ok(p) => p,
            Err(why) => {
                let path = planfile
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
                eprintln!("error: refusing to apply {path}:\n{why}\nRun `reconcile plan --out` again and review the new plan.");
                return Ok(Outcome::Failed);
            }
        },
        None => app::plan_all(loaded, conns).await?.stacks,
    };
    let terminal = std::io::stdout().is_terminal();
    let style = human::Style::detect(terminal);
    let show = |p: &app::Planned| {
        let label = format!(
            "stack {} ({}, {})",
            p.plan.stack,
            p.loaded.path.display(),
            p.region
        );
        human::plan(&p.plan, &label, &style)
    };
    if planned.iter().any(|p| !p.plan.blockers.is_empty()) {
        for p in &planned {
            print!("{}", show(p));
        }
        eprintln!("error: the plan is blocked (see above); nothing was changed");
        return Ok(Outcome::Failed);
    }
    if !planned.iter().any(|p| p.plan.has_changes()) {
        if !how.json {
            println!("No changes: the live state matches every manifest.");
        }
        return Ok(Outcome::Success);
    }
    if !how.json {
        for p in &planned {
            println!("{}", show(p));
        }
    }
    if planfile.is_none() && !how.yes && !confirm()? {
        println!("Nothing was changed.");
        return Ok(Outcome::Success);
    }
    // Stacks are independent (their own resources and locks): they are applied at once,
    // at most `--parallel-stacks` of them, each walking its own plan.
    let progress = reconcile::render::progress::HumanProgress::new(terminal);
    let changing: Vec<&app::Planned> = planned.iter().filter(|p| p.plan.has_changes()).collect();
    let several = changing.len() > 1;
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(how.parallel_stacks.max(1)));
    let mut runs = tokio::task::JoinSet::new();
    for (i, p) in changing.iter().enumerate() {
        let (_, clients) = conns.for_stack(&p.loaded).await?;
        let stack = p.plan.stack.clone();
        let hooks: std::sync::Arc<dyn reconcile::apply::Hooks> = match (how.json, several) {
            (true, _) => {
                std::sync::Arc::new(reconcile::render::progress::JsonProgress::new(&stack))
            }
            (false, true) => std::sync::Arc::new(progress.for_stack(&stack)),
            (false, false) => {
                std::sync::Arc::new(reconcile::render::progress::HumanProgress::new(terminal))
            }
        };
        let (observed, plan, opts, json) = (
            p.observed.clone(),
            p.plan.clone(),
            how.opts.clone(),
            how.json,
        );
        let slots = std::sync::Arc::clone(&slots);
        runs.spawn(async move {
            let _slot = slots.acquire_owned().await;
            let meter = reconcile::aws::Meter::new();
            let result = reconcile::apply::run(&clients, &meter, &observed, &plan, &opts, hooks).await;
            if let Ok(walked) = &result {
                let stats = meter.stats();
                if json {
                    reconcile::render::progress::JsonProgress::ran(&stack, &stats, walked);
                } else if walked.finished == reconcile::apply::Finished::Done {
                    println!(
                        "stack {stack}: apply complete ({} AWS requests in {} rounds, {} without the gates' requests).",
                        stats.requests, walked.rounds, walked.rounds_without_gates
                    );
                }
            }
            if let Err(e) = &result {
                eprintln!("error: stack {stack}: {e}");
                if let reconcile::apply::Error::Unhealthy { targets, .. } = e {
                    for t in targets {
                        eprintln!("{}", human::unhealthy_target(t));
                    }
                }
            }
            (i, stack, result.map(|w| w.finished))
        });
    }
    let mut ended = Vec::new();
    while let Some(joined) = runs.join_next().await {
        ended.push(joined?);
    }
    ended.sort_by_key(|(i, _, _)| *i);
    let mut paused = Vec::new();
    let mut failed = Vec::new();
    for (_, stack, finished) in ended {
        match finished {
            Ok(reconcile::apply::Finished::Done) => {}
            Ok(reconcile::apply::Finished::Paused { resume_at, waiting }) => {
                paused.push((stack, resume_at, waiting));
            }
            Err(_) => failed.push(stack),
        }
    }
    for (stack, resume_at, waiting) in &paused {
        let left = (resume_at - reconcile::apply::now()).max(0);
        println!(
            "stack {stack}: paused at {} (a wait longer than --max-wait). Run `reconcile apply` again after {} (in {}); the wait's start is recorded in Route53, so any machine can continue.",
            waiting
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            human::utc(*resume_at),
            human::duration(u64::try_from(left).unwrap_or(0))
        );
    }
    if !failed.is_empty() {
        eprintln!(
            "Stack{} {} stopped (see above). Run `reconcile apply` again once that is fixed: it continues from where this run stopped.",
            if failed.len() > 1 { "s" } else { "" },
            failed.join(", ")
        );
        return Ok(Outcome::Failed);
    }
    if !paused.is_empty() && how.detailed_exitcode {
        return Ok(Outcome::Paused);
    }
    Ok(Outcome::Success)
}

/// Releases the locks of the manifests' stacks by hand.
pub async fn unlock_cmd(files: &[PathBuf], aws: &AwsFlags) -> anyhow::Result<Outcome> {
    let Some(loaded) = load_or_report(app::manifest_files(files))? else {
        return Ok(Outcome::Failed);
    };
    let mut conns = Connections::new(aws.options());
    for l in &loaded {
        let (_, clients) = conns.for_stack(l).await?;
        let meter = reconcile::aws::Meter::new();
        match lock::unlock(&clients, &meter, &l.manifest.stack, &l.manifest.vpc).await? {
            Some(h) => println!("stack {}: released the lock held by {h}", l.manifest.stack),
            None => println!("stack {}: was not locked", l.manifest.stack),
        }
    }
    Ok(Outcome::Success)
}
