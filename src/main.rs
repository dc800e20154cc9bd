//! The `reconcile` command line: parses arguments, runs one command, and picks the exit
//! code in one place (0 success, 1 error, 2 changes present with `--detailed-exitcode`).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use reconcile::app::{self, Connections, SavedPlan};
use reconcile::apply::lock;
use reconcile::aws::AwsOptions;
use reconcile::manifest;
use reconcile::render::{graph, human, json};

/// Keeps a web site's AWS front door (load balancer, listeners, target groups, security
/// groups, certificate, DNS record) equal to a JSON manifest, changing it in an order that
/// never takes the site down.
#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        for bad in ["", "m", "10x", "1.5h", "-1s", "99999999999999999999h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}

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
        /// Print the change graph as a picture instead: Graphviz (`dot -Tsvg`) or Mermaid.
        #[arg(long, value_name = "FORMAT", value_enum, conflicts_with = "json")]
        graph: Option<GraphFormat>,
        /// Save the plan, for `reconcile apply PLANFILE`.
        #[arg(long, value_name = "PLANFILE")]
        out: Option<PathBuf>,
        /// Exit 2 when there are changes, 0 when there are none (1 stays an error).
        #[arg(long)]
        detailed_exitcode: bool,
        #[command(flatten)]
        aws: AwsFlags,
    },
    /// Carries out the plan in an order that keeps the site up: from manifests (planned
    /// afresh), or a plan saved by `plan --out`, refused if the live state has changed.
    Apply {
        /// A plan saved by `reconcile plan --out PLANFILE`.
        #[arg(
            value_name = "PLANFILE",
            conflicts_with = "files",
            required_unless_present = "files"
        )]
        planfile: Option<PathBuf>,
        /// Manifest file or folder of manifests; repeat for several stacks.
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Apply without asking (required when not on a terminal).
        #[arg(long)]
        yes: bool,
        /// Stop cleanly at a TTL wait that would end later than this (e.g. 90s, 10m, 1h);
        /// running apply again afterwards continues where it stopped.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        max_wait: Option<std::time::Duration>,
        /// How many changes and waits may run at once, in each stack.
        #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
        parallelism: u16,
        /// How many stacks are applied at once (each independently of the others).
        #[arg(long, default_value_t = 4, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
        parallel_stacks: u16,
        /// Stream progress as JSON events, one per line.
        #[arg(long)]
        json: bool,
        /// How long to wait for another apply of the same stack to finish.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "2m")]
        lock_timeout: std::time::Duration,
        #[command(flatten)]
        aws: AwsFlags,
    },
    /// Writes a manifest from the live site behind a host name: its record, the instances
    /// it leads to, their group, subnets and certificate. Reads only; nothing is changed.
    Init {
        /// The site's host name, e.g. www.example.com.
        #[arg(long, value_name = "HOST")]
        name: String,
        /// The Route53 hosted zone (else the closest parent domain that has one).
        #[arg(long, value_name = "ZONE")]
        zone: Option<String>,
        /// Where to write the manifest (else standard output).
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: Option<PathBuf>,
        /// Overwrite FILE if it exists.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        aws: AwsFlags,
    },
    /// Releases a stack's apply lock by hand (after a run that died on another machine).
    Unlock {
        /// Manifest file or folder of manifests.
        #[arg(short = 'f', long = "file", required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        #[command(flatten)]
        aws: AwsFlags,
    },
    /// Prints the manifest's JSON Schema.
    Schema,
    /// Prints the backend half of the migration, from the manifest alone (no AWS calls):
    /// the nginx servers, the Django settings and health view, and the host firewall lines.
    Backend {
        /// Manifest file.
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        file: PathBuf,
        #[command(flatten)]
        part: BackendPart,
    },
}

/// The language of `plan --graph`.
#[derive(Clone, Copy, clap::ValueEnum)]
enum GraphFormat {
    /// Graphviz: `reconcile plan -f site.json --graph dot | dot -Tsvg > plan.svg`.
    Dot,
    /// A Mermaid flowchart, for a ```mermaid code block.
    Mermaid,
}

impl GraphFormat {
    fn format(self) -> graph::Format {
        match self {
            GraphFormat::Dot => graph::Format::Dot,
            GraphFormat::Mermaid => graph::Format::Mermaid,
        }
    }
}

/// Which part of the backend configuration to print; all three when none is given.
#[derive(Args)]
#[group(multiple = false)]
struct BackendPart {
    /// Only the nginx servers (the port HTTPS forwards to, the port-80 redirect).
    #[arg(long)]
    nginx: bool,
    /// Only the Django settings, health view and URL pattern.
    #[arg(long)]
    django: bool,
    /// Only the host firewall (ufw) lines.
    #[arg(long)]
    firewall: bool,
}

impl BackendPart {
    fn parts(&self) -> Vec<reconcile::backend::Part> {
        use reconcile::backend::Part;
        let chosen = [
            (self.nginx, Part::Nginx),
            (self.django, Part::Django),
            (self.firewall, Part::Firewall),
        ];
        match chosen.iter().find(|(on, _)| *on) {
            Some((_, part)) => vec![*part],
            None => Part::ALL.to_vec(),
        }
    }
}

/// `90s`, `10m`, `1h`, `1h30m`, `500ms`, or plain seconds.
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("\"{text}\" is not a duration: write e.g. 90s, 10m, 1h, 1h30m or 500ms");
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(std::time::Duration::from_secs(secs));
    }
    let mut millis: u64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        millis = n
            .checked_mul(scale)
            .and_then(|v| millis.checked_add(v))
            .ok_or_else(bad)?;
    }
    if text.is_empty() {
        return Err(bad());
    }
    Ok(std::time::Duration::from_millis(millis))
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
    /// Attempts per AWS request, retries included (else AWS_MAX_ATTEMPTS, else 5).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=20))]
    max_attempts: Option<u32>,
    /// Longest pause between two attempts, e.g. 2s or 500ms (default 20s).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    max_backoff: Option<std::time::Duration>,
    /// `adaptive` also slows sending down once AWS throttles, for runs over many stacks
    /// (else AWS_RETRY_MODE, else standard).
    #[arg(long, value_name = "MODE", value_parser = ["standard", "adaptive"])]
    retry_mode: Option<String>,
}

impl AwsFlags {
    fn options(&self) -> AwsOptions {
        AwsOptions {
            region: self.region.clone(),
            profile: self.profile.clone(),
            endpoint_url: self.endpoint_url.clone(),
            max_attempts: self.max_attempts,
            max_backoff: self.max_backoff,
            adaptive: self.retry_mode.as_deref().map(|m| m == "adaptive"),
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
        Command::Init {
            name,
            zone,
            output,
            force,
            aws,
        } => runtime().and_then(|rt| {
            rt.block_on(init_cmd(
                &name,
                zone.as_deref(),
                output.as_deref(),
                force,
                &aws,
            ))
        }),
        Command::Unlock { files, aws } => {
            runtime().and_then(|rt| rt.block_on(unlock_cmd(&files, &aws)))
        }
        Command::Backend { file, part } => backend(&file, &part.parts()),
        Command::Apply {
            planfile,
            files,
            yes,
            max_wait,
            parallelism,
            parallel_stacks,
            json,
            lock_timeout,
            aws,
        } => {
            let opts = reconcile::apply::Options {
                parallelism: usize::from(parallelism),
                max_wait,
                ..Default::default()
            };
            let how = ApplyArgs {
                yes,
                json,
                parallel_stacks: usize::from(parallel_stacks),
                opts,
                lock_timeout,
                aws,
            };
            runtime().and_then(|rt| rt.block_on(apply_cmd(planfile.as_deref(), &files, &how)))
        }
        Command::Plan {
            files,
            json,
            graph,
            out,
            detailed_exitcode,
            aws,
        } => {
            let view = match (json, graph) {
                (true, _) => PlanView::Json,
                (false, Some(g)) => PlanView::Graph(g.format()),
                (false, None) => PlanView::Human,
            };
            runtime().and_then(|rt| {
                rt.block_on(plan(&files, view, out.as_deref(), detailed_exitcode, &aws))
            })
        }
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
    let pipe = Some(std::io::ErrorKind::BrokenPipe);
    e.downcast_ref::<std::io::Error>().map(|e| e.kind()) == pipe
        || e.downcast_ref::<serde_json::Error>()
            .and_then(|e| e.io_error_kind())
            == pipe
}

/// Writes to standard error; a closed stderr (`2>&1 | head`) is not worth a panic.
fn report(text: &str) {
    use std::io::Write as _;
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
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
                Err(d) => report(&d.to_string()),
            }
        }
    }
    Ok(if ok {
        Outcome::Success
    } else {
        Outcome::Failed
    })
}

fn backend(file: &std::path::Path, parts: &[reconcile::backend::Part]) -> anyhow::Result<Outcome> {
    let m = match manifest::load(file) {
        Ok(m) => m,
        Err(d) => {
            report(&d.to_string());
            return Ok(Outcome::Failed);
        }
    };
    match reconcile::backend::render(&m, &file.display().to_string(), parts) {
        Ok(text) => {
            std::io::stdout().lock().write_all(text.as_bytes())?;
            Ok(Outcome::Success)
        }
        Err(e) => {
            eprintln!("error: {}: {e}", file.display());
            Ok(Outcome::Failed)
        }
    }
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

/// Loads and validates every manifest; prints their problems and gives `None` when any is
/// invalid (before any AWS call).
fn load_or_report(
    files: Result<Vec<PathBuf>, app::Error>,
) -> anyhow::Result<Option<Vec<app::Loaded>>> {
    match files.and_then(|f| app::load_all(&f)) {
        Ok(l) => Ok(Some(l)),
        Err(app::Error::Manifests(m)) => {
            report(&m.to_string());
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// How `plan` shows the plan.
#[derive(Clone, Copy, PartialEq, Eq)]
enum PlanView {
    Human,
    Json,
    Graph(graph::Format),
}

async fn plan(
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

struct ApplyArgs {
    yes: bool,
    json: bool,
    parallel_stacks: usize,
    opts: reconcile::apply::Options,
    lock_timeout: std::time::Duration,
    aws: AwsFlags,
}

fn read_saved(path: &std::path::Path) -> anyhow::Result<SavedPlan> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read the plan {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "{} is not a plan saved by `reconcile plan --out`: {e}",
            path.display()
        )
    })
}

/// Reads the stacks of a saved plan again, and refuses when the manifest or the live state
/// differ from what the plan was made from.
async fn replan_saved(
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
    // Carry out the saved plan itself, against the state it was made from.
    Ok(Ok(fresh
        .into_iter()
        .zip(saved.stacks)
        .map(|(f, s)| app::Planned { plan: s.plan, ..f })
        .collect()))
}

fn confirm() -> anyhow::Result<bool> {
    print!("\nApply these changes? Only 'yes' is accepted: ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(answer.trim() == "yes")
}

/// Loads what to apply (offline), takes every stack's lock, applies, releases the locks.
async fn apply_cmd(
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
                Ok(Outcome::Failed)
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

async fn apply_locked(
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
            waiting.join(", "),
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
    Ok(Outcome::Success)
}

/// Releases the locks of the manifests' stacks by hand.
async fn unlock_cmd(files: &[PathBuf], aws: &AwsFlags) -> anyhow::Result<Outcome> {
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

async fn init_cmd(
    name: &str,
    zone: Option<&str>,
    output: Option<&std::path::Path>,
    force: bool,
    aws: &AwsFlags,
) -> anyhow::Result<Outcome> {
    if let Some(out) = output.filter(|o| o.exists() && !force) {
        eprintln!(
            "error: {} exists; nothing was written (pass --force to overwrite it)",
            out.display()
        );
        return Ok(Outcome::Failed);
    }
    if !manifest::net::is_dns_name(name, false) {
        eprintln!("error: \"{name}\" is not a host name (e.g. www.example.com)");
        return Ok(Outcome::Failed);
    }
    let opts = aws.options();
    let config = reconcile::aws::loader(&opts).load().await;
    let Some(region) = config.region().map(|r| r.to_string()) else {
        eprintln!("error: no AWS region: pass --region or set AWS_REGION");
        return Ok(Outcome::Failed);
    };
    let clients = reconcile::aws::Clients::new(&config);
    let meter = reconcile::aws::Meter::new();
    let found = match reconcile::init::init(&clients, &meter, name, zone, &region).await {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}; nothing was written");
            return Ok(Outcome::Failed);
        }
    };
    let text = serde_json::to_string_pretty(&found.manifest)? + "\n";
    eprintln!("Assumptions made (check them):");
    for a in &found.assumptions {
        eprintln!("  - {a}");
    }
    if !found.review.is_empty() {
        eprintln!("To review before `reconcile apply`:");
        for r in &found.review {
            eprintln!("  - {r}");
        }
    }
    match output {
        Some(out) => {
            std::fs::write(out, &text)
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", out.display()))?;
            eprintln!(
                "Wrote {}. Next: `reconcile plan -f {0}`, then `reconcile apply -f {0}`.",
                out.display()
            );
        }
        None => print!("{text}"),
    }
    Ok(Outcome::Success)
}
