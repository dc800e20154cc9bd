//! `reconcile plan`: read, diff, and show the plan (human, JSON or a graph); save it.

use std::io::Write as _;
use std::path::PathBuf;

use reconcile::app::{self, Connections, SavedPlan};
use reconcile::render::{graph, human, json};

use super::args::AwsFlags;
use super::offline::load_or_report;
use super::Outcome;

/// How `plan` shows the plan.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PlanView {
    Human,
    Json,
    Graph(graph::Format),
}

pub async fn plan(
    files: &[PathBuf],
    view: PlanView,
    out: Option<&std::path::Path>,
    detailed: bool,
    aws: &AwsFlags,
) -> anyhow::Result<Outcome> {
    let Some(loaded) = load_or_report(app::manifest_files(files))? else {
        return Ok(Outcome::Failed);
    };
    let mut conns = Connections::new(aws.options());
    let planning = app::plan_all(loaded, &mut conns).await?;
    let planned = &planning.stacks;
    let blocked = planned.iter().any(|p| !p.plan.blockers.is_empty());
    let changes = planned.iter().any(|p| p.plan.has_changes());
    let mut stdout = std::io::stdout().lock();
    if let PlanView::Graph(format) = view {
        let plans: Vec<&reconcile::plan::Plan> = planned.iter().map(|p| &p.plan).collect();
        stdout.write_all(graph::render(format, &plans).as_bytes())?;
        // The picture may go to a file: say what blocks on the terminal.
        for p in planned {
            for b in &p.plan.blockers {
                eprintln!(
                    "blocked: stack {}: {}: {}\n  hint: {}",
                    p.plan.stack, b.subject, b.message, b.hint
                );
            }
        }
    } else if view == PlanView::Json {
        let doc = json::PlanDocument {
            format_version: json::FORMAT_VERSION.to_owned(),
            stats: json::run_stats(&planning.stats, planned.len()),
            stacks: planned
                .iter()
                .map(|p| {
                    let stats = serde_json::to_value(&p.stats).unwrap_or_default();
                    json::StackPlan::new(&p.plan, &p.loaded.path.display().to_string(), stats)
                })
                .collect(),
        };
        serde_json::to_writer_pretty(&mut stdout, &doc)?;
        writeln!(stdout)?;
    } else {
        use std::io::IsTerminal as _;
        let style = human::Style::detect(std::io::stdout().is_terminal());
        for (i, p) in planned.iter().enumerate() {
            if i > 0 {
                writeln!(stdout)?;
            }
            let label = format!(
                "stack {} ({}, {}; read in {} requests, {} rounds)",
                p.plan.stack,
                p.loaded.path.display(),
                p.region,
                p.stats.requests,
                p.stats.rounds
            );
            write!(stdout, "{}", human::plan(&p.plan, &label, &style))?;
        }
        if planned.len() > 1 {
            writeln!(
                stdout,
                "\n{} stacks read in {} requests, {} rounds (a listing shared by several stacks is counted once here, and in full for each stack above).",
                planned.len(),
                planning.stats.requests,
                planning.stats.rounds
            )?;
        }
    }
    if blocked {
        eprintln!(
            "error: the plan is blocked (see above); nothing can be applied until that is resolved"
        );
        return Ok(Outcome::Failed);
    }
    if let Some(path) = out {
        let saved = SavedPlan::new(planned);
        let text = serde_json::to_string_pretty(&saved)?;
        std::fs::write(path, text + "\n")
            .map_err(|e| anyhow::anyhow!("cannot write the plan to {}: {e}", path.display()))?;
        if view == PlanView::Human {
            writeln!(
                stdout,
                "\nSaved the plan to {}. Run `reconcile apply {}` to carry it out.",
                path.display(),
                path.display()
            )?;
        }
    }
    Ok(if detailed && changes {
        Outcome::Changes
    } else {
        Outcome::Success
    })
}
