//! The `reconcile` command line: parses arguments, runs one command, and picks the exit
//! code in one place (0 success, 1 error, 2 changes present with `--detailed-exitcode`).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use reconcile::manifest;

/// Keeps a web site's AWS front door (load balancer, listeners, target groups, security
/// groups, certificate, DNS record) equal to a JSON manifest, changing it in an order that
/// never takes the site down.
#[derive(Parser)]
#[command(name = "reconcile", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Checks manifests offline: every problem at once, with its JSON path. No AWS calls.
    Validate {
        /// Manifest file; repeat for several.
        #[arg(short = 'f', long = "file", required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Prints the manifest's JSON Schema.
    Schema,
}

/// What a command ended with, before it becomes an exit code.
enum Outcome {
    Success,
    /// The user's input or the world was wrong; the message has already been printed.
    Failed,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Validate { files, json } => validate(&files, json),
        Command::Schema => print_json(&manifest::schema()),
    };
    match outcome {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::Failed) => ExitCode::from(1),
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.downcast_ref::<std::io::Error>()
        .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
}

fn print_json(value: &serde_json::Value) -> anyhow::Result<Outcome> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(Outcome::Success)
}

fn validate(files: &[PathBuf], json: bool) -> anyhow::Result<Outcome> {
    let results: Vec<_> = files.iter().map(|f| (f, manifest::load(f))).collect();
    let ok = results.iter().all(|(_, r)| r.is_ok());
    if json {
        let docs: Vec<_> = results
            .iter()
            .map(|(f, r)| {
                serde_json::json!({
                    "file": f.display().to_string(),
                    "valid": r.is_ok(),
                    "problems": r.as_ref().err().map(|d| d.problems.clone()).unwrap_or_default(),
                })
            })
            .collect();
        print_json(&serde_json::json!({ "format_version": "1", "manifests": docs }))?;
    } else {
        let mut out = std::io::stdout().lock();
        for (f, r) in &results {
            match r {
                Ok(m) => writeln!(out, "{}: valid ({})", f.display(), summary(m))?,
                Err(d) => eprint!("{d}"),
            }
        }
    }
    Ok(if ok {
        Outcome::Success
    } else {
        Outcome::Failed
    })
}

fn summary(m: &manifest::Manifest) -> String {
    let records = m.dns.as_ref().map_or(0, |d| d.records.len());
    format!(
        "stack {}: {} security groups, {} target groups, {} listeners, {} DNS records",
        m.stack,
        m.security_groups.len(),
        m.target_groups.len(),
        m.load_balancer.listeners.len(),
        records
    )
}
