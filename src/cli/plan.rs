//! `reconcile plan`: read, plan, and show the plan (human, JSON or a picture); save it.

use std::path::{Path, PathBuf};

use reconcile::app::{self, Connections, SavedPlan};
use reconcile::render::console::Console;
use reconcile::render::{graph, human, json, messages};

use super::args::AwsFlags;
use super::offline::load_or_report;
use super::Outcome;

/// How `plan` shows the plan.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PlanView {
    Human,
    Json,
    Markdown,
    Graph(graph::Format),
}

pub async fn plan(
    files: &[PathBuf],
    view: PlanView,
    out: Option<&Path>,
    detailed: bool,
    mode: app::Mode,
    aws: &AwsFlags,
) -> anyhow::Result<Outcome> {
    let console = Console::detect();
    let Some(loaded) = load_or_report(&console, app::load(files))? else {
        return Ok(Outcome::Failed);
    };
    let mut conns = Connections::new(aws.options());
    let planning = app::observe_and_plan_for(loaded, &mut conns, mode).await?;
    let planned = &planning.stacks;
    let blocked = planned.iter().any(|p| !p.plan.blockers.is_empty());
    let changes = planned.iter().any(|p| p.plan.drifted());
    match view {
        PlanView::Graph(format) => {
            let plans: Vec<&reconcile::plan::Plan> = planned.iter().map(|p| &p.plan).collect();
            console.out(&graph::render(format, &plans))?;
            // The picture may go to a file: say what blocks on the terminal.
            for p in planned {
                for b in &p.plan.blockers {
                    console.note(&messages::blocked(&p.plan.stack, b));
                }
            }
        }
        PlanView::Json => console.json(&json::PlanDocument::new(
            &planning.stats,
            planning.stacks.iter().map(|p| {
                (
                    &p.plan,
                    p.loaded.path.display().to_string(),
                    serde_json::to_value(&p.stats).unwrap_or_default(),
                )
            }),
        ))?,
        PlanView::Markdown => {
            let plans: Vec<(&reconcile::plan::Plan, String)> = planned
                .iter()
                .map(|p| {
                    let label = messages::stack_label(
                        &p.plan.stack,
                        &p.loaded.path.display().to_string(),
                        &p.region,
                        None,
                    );
                    (&p.plan, label)
                })
                .collect();
            console.out(&reconcile::render::markdown::render(&plans))?;
        }
        PlanView::Human => {
            for (i, p) in planned.iter().enumerate() {
                if i > 0 {
                    console.line("")?;
                }
                let label = messages::stack_label(
                    &p.plan.stack,
                    &p.loaded.path.display().to_string(),
                    &p.region,
                    Some(&p.stats),
                );
                console.out(&human::plan(&p.plan, &label, &console.style))?;
            }
            if planned.len() > 1 {
                console.line(&messages::run_read(planned.len(), &planning.stats))?;
            }
        }
    }
    if blocked {
        console.error(messages::PLAN_BLOCKED);
        return Ok(Outcome::Failed);
    }
    if let Some(path) = out {
        SavedPlan::new(planned).write(path)?;
        if view == PlanView::Human {
            console.line(&messages::plan_saved(path))?;
        }
    }
    Ok(if detailed && changes {
        Outcome::Changes
    } else {
        Outcome::Success
    })
}

/// `reconcile show PLANFILE [--json]`: a saved plan as `plan` showed it; no AWS call.
pub fn show(planfile: &Path, as_json: bool) -> anyhow::Result<Outcome> {
    let console = Console::detect();
    let saved = SavedPlan::read(planfile)?;
    if as_json {
        console.json(&json::PlanDocument::of_saved(
            saved
                .stacks
                .iter()
                .map(|s| (&s.plan, s.manifest.display().to_string())),
        ))?;
    } else {
        for (i, s) in saved.stacks.iter().enumerate() {
            if i > 0 {
                console.line("")?;
            }
            let label = messages::stack_label(
                &s.plan.stack,
                &s.manifest.display().to_string(),
                &s.region,
                None,
            );
            console.out(&human::plan(&s.plan, &label, &console.style))?;
        }
    }
    Ok(Outcome::Success)
}
