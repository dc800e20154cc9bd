//! The `reconcile` command line: parses arguments, runs one command, and picks the exit
//! code in one place (0 success, 1 error, 2 changes present with `--detailed-exitcode`).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use reconcile::app::{self, Connections, SavedPlan};
use reconcile::aws::AwsOptions;
use reconcile::manifest;
use reconcile::render::{human, json};

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
    /// Reads the live state, diffs it against the manifests and prints the ordered, gated
    /// plan. Changes nothing.
    Plan {
        /// Manifest file or folder of manifests; repeat for several stacks.
        #[arg(short = 'f', long = "file", required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Print the plan as a versioned JSON document.
        #[arg(long)]
        json: bool,
        /// Save the plan, for `reconcile apply PLANFILE`.
        #[arg(long, value_name = "PLANFILE")]
        out: Option<PathBuf>,
        /// Exit 2 when there are changes, 0 when there are none (1 stays an error).
        #[arg(long)]
        detailed_exitcode: bool,
        #[command(flatten)]
        aws: AwsFlags,
    },
    /// Prints the manifest's JSON Schema.
    Schema,
}

/// AWS settings; each overrides the standard AWS chain (environment, profiles).
#[derive(Args, Clone)]
struct AwsFlags {
    /// AWS region (else the manifest's `region`, else AWS_REGION / the profile).
    #[arg(long, value_name = "REGION")]
    region: Option<String>,
    /// Named AWS profile (else AWS_PROFILE).
    #[arg(long, value_name = "NAME")]
    profile: Option<String>,
    /// Endpoint of an AWS emulator (else AWS_ENDPOINT_URL).
    #[arg(long, value_name = "URL")]
    endpoint_url: Option<String>,
}

impl AwsFlags {
    fn options(&self) -> AwsOptions {
        AwsOptions {
            region: self.region.clone(),
            profile: self.profile.clone(),
            endpoint_url: self.endpoint_url.clone(),
        }
    }
}

/// What a command ended with, before it becomes an exit code.
enum Outcome {
    Success,
    /// Changes are present (exit 2 with `--detailed-exitcode`).
    Changes,
    /// The user's input or the world was wrong; the message has already been printed.
    Failed,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Validate { files, json } => validate(&files, json),
        Command::Schema => print_json(&manifest::schema()),
        Command::Plan {
            files,
            json,
            out,
            detailed_exitcode,
            aws,
        } => runtime().and_then(|rt| {
            rt.block_on(plan(&files, json, out.as_deref(), detailed_exitcode, &aws))
        }),
    };
    match outcome {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::Changes) => ExitCode::from(2),
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

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

async fn plan(
    files: &[PathBuf],
    as_json: bool,
    out: Option<&std::path::Path>,
    detailed: bool,
    aws: &AwsFlags,
) -> anyhow::Result<Outcome> {
    let loaded = match app::manifest_files(files).and_then(|f| app::load_all(&f)) {
        Ok(l) => l,
        Err(app::Error::Manifests(m)) => {
            eprint!("{m}");
            return Ok(Outcome::Failed);
        }
        Err(e) => return Err(e.into()),
    };
    let mut conns = Connections::new(aws.options());
    let planned = app::plan_all(loaded, &mut conns).await?;
    let blocked = planned.iter().any(|p| !p.plan.blockers.is_empty());
    let changes = planned.iter().any(|p| p.plan.has_changes());
    let mut stdout = std::io::stdout().lock();
    if as_json {
        let doc = json::PlanDocument {
            format_version: json::FORMAT_VERSION.to_owned(),
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
    }
    if blocked {
        eprintln!(
            "error: the plan is blocked (see above); nothing can be applied until that is resolved"
        );
        return Ok(Outcome::Failed);
    }
    if let Some(path) = out {
        let saved = SavedPlan::new(&planned);
        let text = serde_json::to_string_pretty(&saved)?;
        std::fs::write(path, text + "\n")
            .map_err(|e| anyhow::anyhow!("cannot write the plan to {}: {e}", path.display()))?;
        if !as_json {
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
