//! `reconcile apply` (from manifests or a saved plan) and `reconcile unlock`: the library's
//! flow ([`reconcile::app`]) with the terminal around it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use reconcile::app::{self, Connections, SavedPlan};
use reconcile::apply::Hooks;
use reconcile::render::console::Console;
use reconcile::render::events::{Event, What};
use reconcile::render::progress::{HumanProgress, JsonProgress};
use reconcile::render::{human, messages};

use super::args::{AwsFlags, RunFlags};
use super::offline::load_or_report;
use super::Outcome;

pub struct ApplyArgs {
    pub yes: bool,
    pub json: bool,
    /// Exit 3 when paused.
    pub detailed_exitcode: bool,
    pub run: app::RunOptions,
    pub lock_timeout: std::time::Duration,
    pub aws: AwsFlags,
    /// Apply the manifests, or destroy their stacks.
    pub mode: app::Mode,
}

impl ApplyArgs {
    pub fn new(flags: RunFlags, aws: AwsFlags, mode: app::Mode) -> ApplyArgs {
        let mut walk = reconcile::apply::Options {
            parallelism: usize::from(flags.parallelism),
            max_wait: flags.max_wait,
            resolve: flags.resolve.clone(),
            ..Default::default()
        };
        // Whole seconds in the marker, rounded up: an allowance is never shortened.
        if let Some(d) = flags.propagation_allowance {
            let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
            walk.propagation_allowance = u32::try_from(secs).unwrap_or(u32::MAX);
        }
        ApplyArgs {
            yes: flags.yes,
            json: flags.json,
            detailed_exitcode: flags.detailed_exitcode,
            run: app::RunOptions {
                walk,
                parallel_stacks: usize::from(flags.parallel_stacks),
            },
            lock_timeout: flags.lock_timeout,
            aws,
            mode,
        }
    }
}

/// Loads what to apply (offline), takes every stack's lock, applies, releases the locks.
pub async fn apply_cmd(
    planfile: Option<&Path>,
    files: &[PathBuf],
    how: &ApplyArgs,
) -> anyhow::Result<Outcome> {
    let console = Console::detect();
    let saved = planfile.map(SavedPlan::read).transpose()?;
    let loaded = match &saved {
        Some(s) => load_or_report(&console, app::load_all(&s.manifests())),
        None => load_or_report(&console, app::load(files)),
    }?;
    let Some(loaded) = loaded else {
        return Ok(Outcome::Failed);
    };
    // Off a terminal nobody can confirm: refuse before touching AWS at all.
    if planfile.is_none() && !how.yes && !console.interactive {
        console.error(messages::NOT_INTERACTIVE);
        return Ok(Outcome::Failed);
    }
    let mut conns = Connections::new(how.aws.options());
    // A destroy that would take a site down is refused before any change, the lock's
    // included: it is read and planned once first.
    if how.mode == app::Mode::Destroy {
        let planned = app::observe_and_plan_for(loaded.clone(), &mut conns, how.mode).await?;
        if refuse_blocked(&console, &planned.stacks, how)? {
            return Ok(Outcome::Failed);
        }
    }
    let tell = |stack: &str, holder: &reconcile::apply::lock::Holder| {
        console.note(&messages::lock_waiting(stack, holder, how.lock_timeout));
    };
    let locks = app::lock(&loaded, &mut conns, how.lock_timeout, &tell).await?;
    for (_, e) in &locks.refused {
        console.error(&format!("{e}; nothing of that stack was changed"));
    }
    // A saved plan is carried out whole or not at all; from manifests, a stack whose lock
    // is held elsewhere is left out and the others go on.
    let go: Vec<app::Loaded> = loaded
        .into_iter()
        .filter(|l| locks.holds(&l.manifest.stack))
        .collect();
    let result = if go.is_empty() || (saved.is_some() && !locks.refused.is_empty()) {
        Ok(Outcome::Failed)
    } else {
        // Whether the run waits at the question: a Ctrl-C then changed nothing, whichever
        // of the two listeners sees it first.
        let asking = AtomicBool::new(false);
        let run = apply_locked(
            &console,
            (planfile, saved),
            go,
            &locks,
            &mut conns,
            how,
            &asking,
        );
        tokio::select! {
            // The run first: at the prompt it says itself that nothing was changed.
            biased;
            r = run => r,
            _ = tokio::signal::ctrl_c() => {
                if asking.load(Ordering::SeqCst) {
                    console.note(messages::INTERRUPTED_AT_PROMPT);
                } else {
                    console.note(messages::INTERRUPTED);
                    // A second Ctrl-C quits at once; the lock then ends with its lease.
                    tokio::spawn(async {
                        let _ = tokio::signal::ctrl_c().await;
                        std::process::exit(130);
                    });
                }
                Ok(Outcome::Interrupted)
            }
        }
    };
    let refused = !locks.refused.is_empty();
    match tokio::time::timeout(RELEASE_TIMEOUT, locks.release()).await {
        Ok(errors) => {
            for e in errors {
                console.warning(&messages::lock_not_released(&e));
            }
        }
        Err(_) => console.warning(&messages::lock_not_released(&format!(
            "the locks were not released within {}s",
            RELEASE_TIMEOUT.as_secs()
        ))),
    }
    match result {
        Ok(Outcome::Success | Outcome::Paused) if refused => Ok(Outcome::Failed),
        // The plan could not be shown in full: nothing was changed (progress written
        // during the run ignores a closed output, and the run goes on to its end).
        Err(e) if super::is_broken_pipe(&e) => {
            console.error(messages::OUTPUT_CLOSED);
            Ok(Outcome::Failed)
        }
        other => other,
    }
}

/// How long releasing the locks may take before the run ends without (each lock then
/// ends with its lease).
const RELEASE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

async fn apply_locked(
    console: &Console,
    (planfile, saved): (Option<&Path>, Option<SavedPlan>),
    loaded: Vec<app::Loaded>,
    locks: &app::Locks,
    conns: &mut Connections,
    how: &ApplyArgs,
    asking: &AtomicBool,
) -> anyhow::Result<Outcome> {
    let planned = match (&saved, planfile) {
        (Some(saved), Some(path)) => match app::saved::verify(saved, loaded, conns).await? {
            Ok(p) => p,
            Err(why) => {
                console.error(&messages::saved_plan_refused(path, &why.to_string()));
                return Ok(Outcome::Failed);
            }
        },
        _ => {
            app::observe_and_plan_for(loaded, conns, how.mode)
                .await?
                .stacks
        }
    };
    if refuse_blocked(console, &planned, how)? {
        return Ok(Outcome::Failed);
    }
    let show = |p: &app::Planned| show_plan(console, p);
    if !planned.iter().any(|p| p.plan.has_changes()) {
        if how.json {
            for p in &planned {
                Event::now(&p.plan.stack, What::Unchanged {}).emit();
            }
        } else {
            console.line(messages::NO_CHANGES)?;
        }
        return Ok(Outcome::Success);
    }
    if !how.json {
        for p in &planned {
            console.line(&show(p))?;
        }
    }
    if planfile.is_none() && !how.yes {
        // The question is read on a thread of its own, so that Ctrl-C still ends the run
        // (and releases the lock) while it waits for an answer.
        // Listening starts before the question is shown: a Ctrl-C the moment it appears
        // must reach this listener, not only the run's.
        let mut interrupted = std::pin::pin!(tokio::signal::ctrl_c());
        if futures::poll!(interrupted.as_mut()).is_ready() {
            console.note(messages::INTERRUPTED_AT_PROMPT);
            return Ok(Outcome::Interrupted);
        }
        let asker = *console;
        asking.store(true, Ordering::SeqCst);
        let answer = tokio::task::spawn_blocking(move || asker.ask(messages::CONFIRM));
        let answer = tokio::select! {
            answer = answer => answer,
            _ = interrupted => {
                console.note(messages::INTERRUPTED_AT_PROMPT);
                return Ok(Outcome::Interrupted);
            }
        };
        asking.store(false, Ordering::SeqCst);
        let answer = answer??;
        if answer != "yes" {
            console.line(messages::NOTHING_CHANGED)?;
            return Ok(Outcome::Success);
        }
    }
    if how.json {
        for p in planned.iter().filter(|p| !p.plan.has_changes()) {
            Event::now(&p.plan.stack, What::Unchanged {}).emit();
        }
    }
    let several = planned.iter().filter(|p| p.plan.has_changes()).count() > 1;
    let progress = HumanProgress::new(console.terminal);
    let hooks = |stack: &str| -> Arc<dyn Hooks> {
        match (how.json, several) {
            (true, _) => Arc::new(JsonProgress::new(stack)),
            (false, true) => Arc::new(progress.for_stack(stack)),
            (false, false) => Arc::new(HumanProgress::new(console.terminal)),
        }
    };
    let runs = app::apply(&planned, locks, conns, &how.run, &hooks).await?;
    let failed: Vec<String> = runs
        .iter()
        .filter(|r| r.end.is_err())
        .map(|r| r.stack.clone())
        .collect();
    let mut paused = false;
    for r in &runs {
        if let Some((resume_at, waiting)) = r.paused() {
            paused = true;
            // With --json the `ran` event says it.
            if !how.json {
                let now = reconcile::apply::now();
                // After the run, a closed output changes nothing that was done.
                let _ = console.line(&messages::paused(&r.stack, resume_at, waiting, now));
            }
        }
    }
    if !failed.is_empty() {
        console.note(&messages::stacks_stopped(&failed));
        return Ok(Outcome::Failed);
    }
    Ok(if paused && how.detailed_exitcode {
        Outcome::Paused
    } else {
        Outcome::Success
    })
}

fn show_plan(console: &Console, p: &app::Planned) -> String {
    let label = messages::stack_label(
        &p.plan.stack,
        &p.loaded.path.display().to_string(),
        &p.region,
        None,
    );
    human::plan(&p.plan, &label, &console.style)
}

/// A plan with blockers, or one the checker has not proven, is shown and refused: true
/// when the run must stop there.
fn refuse_blocked(
    console: &Console,
    planned: &[app::Planned],
    how: &ApplyArgs,
) -> anyhow::Result<bool> {
    if !planned
        .iter()
        .any(|p| !p.plan.blockers.is_empty() || p.plan.checked.is_none())
    {
        return Ok(false);
    }
    for p in planned {
        if !how.json {
            console.out(&show_plan(console, p))?;
        } else if !p.plan.blockers.is_empty() {
            let blockers = p.plan.blockers.iter().map(Into::into).collect();
            Event::now(&p.plan.stack, What::Blocked { blockers }).emit();
        }
    }
    console.error(messages::APPLY_BLOCKED);
    Ok(true)
}

/// Releases the locks of the manifests' stacks by hand.
pub async fn unlock_cmd(
    files: &[PathBuf],
    force: Option<&str>,
    aws: &AwsFlags,
) -> anyhow::Result<Outcome> {
    let console = Console::detect();
    let Some(loaded) = load_or_report(&console, app::load(files))? else {
        return Ok(Outcome::Failed);
    };
    let mut conns = Connections::new(aws.options());
    let mut outcome = Outcome::Success;
    for (stack, done) in app::unlock(&loaded, &mut conns, force).await? {
        match done {
            Ok(done) => console.line(&messages::unlocked(&stack, &done))?,
            Err(e) => {
                console.error(&e.to_string());
                outcome = Outcome::Failed;
            }
        }
    }
    Ok(outcome)
}
