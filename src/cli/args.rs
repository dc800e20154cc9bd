//! The arguments, as clap reads them: commands, their flags, and durations like `90s`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use reconcile::aws::AwsOptions;
use reconcile::render::graph;

/// Keeps a web site's AWS front door (load balancer, listeners, target groups, security
/// groups, certificate, DNS record) equal to a JSON manifest, changing it in an order that
/// never takes the site down.
#[derive(Parser)]
#[command(name = "reconcile", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// When to colour the output: auto (on a terminal, unless NO_COLOR is set), always,
    /// never.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "auto",
        value_name = "WHEN"
    )]
    pub color: Color,
    /// Log every AWS call (operation, status, request id) and the SDK's events on
    /// standard error; RUST_LOG chooses what in more detail.
    #[arg(long, global = true)]
    pub debug: bool,
}

/// `plan --format`.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PlanFormat {
    Text,
    Json,
    Markdown,
}

/// `--color`.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Color {
    Auto,
    Always,
    Never,
}

impl Color {
    pub fn choice(self) -> reconcile::render::human::ColorChoice {
        use reconcile::render::human::ColorChoice;
        match self {
            Color::Auto => ColorChoice::Auto,
            Color::Always => ColorChoice::Always,
            Color::Never => ColorChoice::Never,
        }
    }
}

#[derive(Subcommand)]
pub enum Command {
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
        /// Print the plan as a versioned JSON document (the same as --format json).
        #[arg(long)]
        json: bool,
        /// How to print the plan: text (default), json, or markdown (for a pull-request
        /// comment).
        #[arg(long, value_enum, value_name = "FORMAT", conflicts_with_all = ["json", "graph"])]
        format: Option<PlanFormat>,
        /// Print the change graph as a picture instead: Graphviz (`dot -Tsvg`) or Mermaid.
        #[arg(long, value_name = "FORMAT", value_enum, conflicts_with = "json")]
        graph: Option<GraphFormat>,
        /// Save the plan, for `reconcile apply PLANFILE`.
        #[arg(long, value_name = "PLANFILE")]
        out: Option<PathBuf>,
        /// Exit 2 when there are changes, 0 when there are none (1 stays an error).
        #[arg(long)]
        detailed_exitcode: bool,
        /// Show what `reconcile destroy` would delete instead (not savable).
        #[arg(long, conflicts_with = "out")]
        destroy: bool,
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
        #[command(flatten)]
        run: RunFlags,
        #[command(flatten)]
        aws: AwsFlags,
    },
    /// Deletes everything the stacks own (found by name and tag, not by the manifest
    /// alone), in reverse dependency order, and the rules their `existing` groups hold
    /// naming a group that goes; records are left alone. Refused while a managed record
    /// still leads to the stack's load balancer (move it first with the reverse migration,
    /// `init --direct`). `plan --destroy` shows it first.
    Destroy {
        /// Manifest file or folder of manifests; repeat for several stacks.
        #[arg(short = 'f', long = "file", required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        #[command(flatten)]
        run: RunFlags,
        #[command(flatten)]
        aws: AwsFlags,
    },
    /// Writes a manifest from the live site behind a host name: its record, the instances
    /// it leads to, their group, subnets and certificate (the migration behind a load
    /// balancer). For a site already behind a load balancer, the manifest describing it as
    /// it is: one made by hand is adopted (`adopt`: `apply` tags it first), a stack's own
    /// is written under that stack. Reads only; nothing is changed.
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
        /// The way back: for a site behind a stack's load balancer, write the manifest that
        /// leads the name to the instances again (an A record to their public addresses,
        /// the backend open on 80 and 443, no load balancer).
        #[arg(long)]
        direct: bool,
        /// The load balancer redirects port 80 to https itself (a 301 to the same host and
        /// path): no port-80 target group, the backends admit it on the app's port only.
        #[arg(long, conflicts_with = "direct")]
        redirect_at_lb: bool,
        #[command(flatten)]
        aws: AwsFlags,
    },
    /// Releases a stack's apply lock by hand: one whose holder's lease has ended (or whose
    /// holder died on this machine) at once; a live one only with --force and its token.
    Unlock {
        /// Manifest file or folder of manifests.
        #[arg(short = 'f', long = "file", required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Release the lock even though its holder's lease has not ended, naming the
        /// holder's token (shown by `apply` when it waits for the lock, and by `unlock`).
        /// Only when that run is known to be gone: two applies of one stack must never run
        /// at once.
        #[arg(long, value_name = "TOKEN")]
        force: Option<String>,
        #[command(flatten)]
        aws: AwsFlags,
    },
    /// Shows a plan saved by `plan --out`, as `plan` showed it (or as its JSON document),
    /// without reading AWS: a drift job reads AWS once and keeps both views.
    Show {
        /// The plan file.
        #[arg(value_name = "PLANFILE")]
        planfile: PathBuf,
        /// Print the versioned JSON document instead.
        #[arg(long)]
        json: bool,
    },
    /// Prints the least-privilege IAM policy reconcile needs: for plan, init and drift
    /// detection with --read-only, for apply (and its lock) without.
    IamPolicy {
        /// Only what reading needs (plan, init, drift detection).
        #[arg(long)]
        read_only: bool,
    },
    /// Prints a shell's completion script: `reconcile completions bash > /etc/bash_completion.d/reconcile`,
    /// `reconcile completions zsh > "${fpath[1]}/_reconcile"`, `reconcile completions fish >
    /// ~/.config/fish/completions/reconcile.fish`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Prints the man page (roff): `reconcile man > reconcile.1; man ./reconcile.1`; with
    /// --dir, writes one page per command there (reconcile.1, reconcile-plan.1, ...).
    Man {
        /// Folder to write every page to.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Prints the manifest's JSON Schema (or, with --events, that of `apply --json`'s events).
    Schema {
        /// The schema of the events `apply --json` writes, one per line.
        #[arg(long)]
        events: bool,
    },
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
pub enum GraphFormat {
    /// Graphviz: `reconcile plan -f site.json --graph dot | dot -Tsvg > plan.svg`.
    Dot,
    /// A Mermaid flowchart, for a ```mermaid code block.
    Mermaid,
}

impl GraphFormat {
    pub fn format(self) -> graph::Format {
        match self {
            GraphFormat::Dot => graph::Format::Dot,
            GraphFormat::Mermaid => graph::Format::Mermaid,
        }
    }
}

/// Which part of the backend configuration to print; all three when none is given.
#[derive(Args)]
#[group(multiple = false)]
pub struct BackendPart {
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
    pub fn parts(&self) -> Vec<reconcile::backend::Part> {
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

/// `90s`, `10m`, `1h`, `1h30m`, `500ms` (humantime's forms), or plain seconds.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(std::time::Duration::from_secs(secs));
    }
    humantime::parse_duration(text).map_err(|e| {
        format!("\"{text}\" is not a duration ({e}): write e.g. 90s, 10m, 1h, 1h30m or 500ms")
    })
}

/// AWS settings; each overrides the standard AWS chain (environment, profiles).
/// How `apply` and `destroy` run.
#[derive(Debug, Clone, clap::Args)]
pub struct RunFlags {
    /// Go ahead without asking (required when not on a terminal).
    #[arg(long)]
    pub yes: bool,
    /// Stop cleanly at a TTL wait that would end later than this (e.g. 90s, 10m, 1h);
    /// running the command again afterwards continues where it stopped.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub max_wait: Option<std::time::Duration>,
    /// How long a Route53 change may take to reach every Route53 server after it is
    /// accepted (default 60s, Route53's documented figure). A run stopped between sending
    /// a change and Route53 confirming it leaves this recorded with the change's time, and
    /// the next run adds it to the TTL it waits out.
    #[arg(long, value_name = "DURATION", env = "RECONCILE_PROPAGATION_ALLOWANCE", value_parser = parse_duration)]
    pub propagation_allowance: Option<std::time::Duration>,
    /// How many changes and waits may run at once, in each stack.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallelism: u16,
    /// How many stacks are run at once (each independently of the others).
    #[arg(long, default_value_t = 4, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallel_stacks: u16,
    /// Stream progress as JSON events, one per line.
    #[arg(long)]
    pub json: bool,
    /// Exit 3 when `--max-wait` paused the run (0 only once it is finished), so that
    /// a pipeline can tell a paused run from a finished one.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// How long to wait for another run of the same stack to finish.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "2m")]
    pub lock_timeout: std::time::Duration,
    /// Point a record's probe at ADDRESS instead of the load balancer, as curl's
    /// --resolve (e.g. www.example.com:443:127.0.0.1); ADDRESS may carry its own port
    /// (127.0.0.1:8443). Repeatable.
    #[arg(long, value_name = "NAME:PORT:ADDRESS")]
    pub resolve: Vec<reconcile::apply::probe::Resolve>,
}

#[derive(Args, Clone)]
pub struct AwsFlags {
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
    /// Share of AWS's documented API request rates to use, in percent (default 100):
    /// every request waits for its turn so that none is throttled. Lower it when other
    /// tools share the account's rates, raise it when AWS raised yours; 0 turns it off.
    #[arg(long, value_name = "PERCENT", env = "RECONCILE_API_RATE", value_parser = clap::value_parser!(u32).range(0..=10_000))]
    api_rate: Option<u32>,
    /// How long one attempt of an AWS request waits for the answer before it is retried,
    /// e.g. 30s (default 10s; connecting may take 5s more). Every attempt failing so is an
    /// error naming the call: with the default 5 attempts, within about a minute.
    #[arg(long, value_name = "DURATION", env = "RECONCILE_CALL_TIMEOUT", value_parser = parse_duration)]
    call_timeout: Option<std::time::Duration>,
}

impl AwsFlags {
    pub fn options(&self) -> AwsOptions {
        AwsOptions {
            region: self.region.clone(),
            profile: self.profile.clone(),
            endpoint_url: self.endpoint_url.clone(),
            max_attempts: self.max_attempts,
            max_backoff: self.max_backoff,
            adaptive: self.retry_mode.as_deref().map(|m| m == "adaptive"),
            api_rate_percent: self.api_rate,
            call_timeout: self.call_timeout,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    pub fn durations() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
        for bad in ["", "m", "10x", "-1s", "99999999999999999999h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
