//! The `reconcile` command line: parses arguments, runs one command, and picks the exit
//! code in one place (0 success, 1 error (usage errors included), 2 changes present with
//! `plan --detailed-exitcode`, 3 paused by `--max-wait` with `apply --detailed-exitcode`,
//! 130 interrupted).

mod cli;

use std::process::ExitCode;

use clap::Parser;

use cli::apply::{apply_cmd, unlock_cmd, ApplyArgs};
use cli::args::{Cli, Command};
use cli::init::init_cmd;
use cli::offline::{backend, print_json, print_text, validate};
use cli::plan::{plan, PlanView};
use cli::{block_on, Outcome};
use reconcile::manifest;
use reconcile::render::console::Console;

fn main() -> ExitCode {
    // A usage error exits 1, like every error: 2 means "changes present" and nothing else
    // (a mistyped flag in a drift job must not read as drift).
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    reconcile::render::human::set_color(cli.color.choice());
    reconcile::render::console::init_debug(cli.debug);
    let outcome = match cli.command {
        Command::Validate { files, json } => validate(&files, json),
        Command::Show { planfile, json } => cli::plan::show(&planfile, json),
        Command::IamPolicy { read_only } => print_json(&reconcile::aws::policy::policy(read_only)),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut cmd, "reconcile", &mut out);
            print_text(&out)
        }
        Command::Man { dir: None } => {
            let mut out = Vec::new();
            clap_mangen::Man::new(<Cli as clap::CommandFactory>::command())
                .render(&mut out)
                .map_err(anyhow::Error::from)
                .and_then(|()| print_text(&out))
        }
        Command::Man { dir: Some(dir) } => {
            clap_mangen::generate_to(<Cli as clap::CommandFactory>::command(), &dir)
                .map(|()| cli::Outcome::Success)
                .map_err(|e| {
                    anyhow::anyhow!("cannot write the man pages to {}: {e}", dir.display())
                })
        }
        Command::Schema { events: false } => print_json(&manifest::schema()),
        Command::Schema { events: true } => print_json(&reconcile::render::events::schema()),
        Command::Init {
            name,
            zone,
            output,
            force,
            direct,
            redirect_at_lb,
            aws,
        } => block_on(init_cmd(
            &name,
            zone.as_deref(),
            output.as_deref(),
            force,
            (direct, redirect_at_lb),
            &aws,
        )),
        Command::Unlock { files, force, aws } => {
            block_on(unlock_cmd(&files, force.as_deref(), &aws))
        }
        Command::Backend { file, part } => backend(&file, &part.parts()),
        Command::Apply {
            planfile,
            files,
            run,
            aws,
        } => {
            let how = ApplyArgs::new(run, aws, reconcile::app::Mode::Apply);
            block_on(apply_cmd(planfile.as_deref(), &files, &how))
        }
        Command::Destroy { files, run, aws } => {
            let how = ApplyArgs::new(run, aws, reconcile::app::Mode::Destroy);
            block_on(apply_cmd(None, &files, &how))
        }
        Command::Plan {
            files,
            json,
            format,
            graph,
            out,
            detailed_exitcode,
            destroy,
            aws,
        } => {
            use cli::args::PlanFormat;
            let view = match (json, format, graph) {
                (true, _, _) | (_, Some(PlanFormat::Json), _) => PlanView::Json,
                (_, Some(PlanFormat::Markdown), _) => PlanView::Markdown,
                (_, _, Some(g)) => PlanView::Graph(g.format()),
                _ => PlanView::Human,
            };
            let mode = if destroy {
                reconcile::app::Mode::Destroy
            } else {
                reconcile::app::Mode::Apply
            };
            block_on(plan(
                &files,
                view,
                out.as_deref(),
                detailed_exitcode,
                mode,
                &aws,
            ))
        }
    };
    match outcome {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::Changes) => ExitCode::from(2),
        Ok(Outcome::Failed) => ExitCode::from(1),
        Ok(Outcome::Paused) => ExitCode::from(3),
        Ok(Outcome::Interrupted) => ExitCode::from(130),
        // `plan | head`: the reader has what it wanted.
        Err(e) if cli::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            // Each error's text already holds its causes: once, not again as a chain.
            Console::detect().error(&e.to_string());
            ExitCode::from(1)
        }
    }
}
