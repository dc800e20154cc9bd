//! The AWS side: SDK clients from the standard AWS chain, one thin adapter per service
//! (reads returning the project's own types, never SDK types, and the writes the executor
//! carries out), typed errors, and a [`Meter`] that counts every request and the round it
//! was sent in, for the run and for each stack the request served.

pub mod acm;
pub mod cloudwatch;
pub mod ec2;
pub mod elbv2;
pub mod iam;
pub mod limit;
pub mod operation;
pub mod policy;
pub mod route53;
pub mod settle;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, ConfigLoader, Region, SdkConfig};
// The SDK crates share these types (aws-smithy); any service crate's re-export will do.
use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use serde::Serialize;

pub use operation::Operation;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How many times the SDK tries a request (throttling, 5xx, timeouts) before giving up.
const MAX_ATTEMPTS: u32 = 5;

// ---------------------------------------------------------------------------------------
// Clients

/// Overrides of the standard AWS chain (flags win over the environment and profiles).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsOptions {
    /// `--region`, or else the manifest's `region`; `None` leaves it to the chain.
    pub region: Option<String>,
    /// `--profile`; `None` leaves it to `AWS_PROFILE` and the chain.
    pub profile: Option<String>,
    /// `--endpoint-url`; `None` leaves it to `AWS_ENDPOINT_URL` (read by aws-config).
    pub endpoint_url: Option<String>,
    /// `--max-attempts`, else `AWS_MAX_ATTEMPTS`, else 5: attempts per request in the SDK's
    /// standard retry mode (throttling, 5xx and dropped connections are retried).
    pub max_attempts: Option<u32>,
    /// `--max-backoff`: the longest pause between two attempts (default 20 s).
    pub max_backoff: Option<std::time::Duration>,
    /// `--retry-mode adaptive` (`Some(true)`) or `standard`, else `AWS_RETRY_MODE`, else
    /// standard. The adaptive mode adds the SDK's client-side rate limiter, which slows
    /// requests down once AWS answers with throttling errors.
    pub adaptive: Option<bool>,
    /// `--api-rate`: the percentage of AWS's documented request rates the client-side
    /// limiter allows ([`limit`]); `None` is 100, `Some(0)` turns the limiter off.
    pub api_rate_percent: Option<u32>,
    /// `--call-timeout` (or `RECONCILE_CALL_TIMEOUT`): how long one attempt of a request
    /// may wait for AWS's answer before it is given up (and retried); `None` is
    /// [`CALL_TIMEOUT`].
    pub call_timeout: Option<std::time::Duration>,
}

/// How long one attempt waits for an answer by default. AWS's control-plane calls answer
/// in well under a second, so ten seconds is a generous margin for a slow answer, and an
/// endpoint that accepts and never answers is an error naming the call within about a
/// minute with the default 5 attempts (5 × 10 s plus the backoffs between them), never a
/// hang that holds a CI job. A loaded test endpoint (an emulator checking every change
/// under one lock for twenty stacks) answers far slower: runs against one set
/// `--call-timeout` (or `RECONCILE_CALL_TIMEOUT`) themselves.
pub const CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// How long a connection may take to open.
pub const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

impl AwsOptions {
    /// The retry mode, attempts and backoff asked for, with the environment's
    /// `AWS_MAX_ATTEMPTS` and `AWS_RETRY_MODE` where no flag gives them.
    pub fn retry_config(&self) -> RetryConfig {
        self.retry_config_with(|name| std::env::var(name).ok())
    }

    /// [`AwsOptions::retry_config`] reading the environment through `env`.
    pub fn retry_config_with(&self, env: impl Fn(&str) -> Option<String>) -> RetryConfig {
        let attempts = self
            .max_attempts
            .or_else(|| env("AWS_MAX_ATTEMPTS").and_then(|v| v.trim().parse().ok()))
            .unwrap_or(MAX_ATTEMPTS)
            .max(1);
        let adaptive = self.adaptive.unwrap_or_else(|| {
            env("AWS_RETRY_MODE").is_some_and(|m| m.trim().eq_ignore_ascii_case("adaptive"))
        });
        let mode = if adaptive {
            RetryConfig::adaptive()
        } else {
            RetryConfig::standard()
        };
        let mut config = mode.with_max_attempts(attempts);
        if let Some(cap) = self.max_backoff {
            config = config
                .with_max_backoff(cap)
                .with_initial_backoff(cap.min(std::time::Duration::from_secs(1)));
        }
        config
    }
}

/// One SDK client per service, sharing one configuration.
#[derive(Debug, Clone)]
pub struct Clients {
    pub elbv2: aws_sdk_elasticloadbalancingv2::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub route53: aws_sdk_route53::Client,
    pub acm: aws_sdk_acm::Client,
    pub iam: aws_sdk_iam::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
}

impl Clients {
    /// Clients that send every request at once (tests, and readers that must not wait).
    pub fn new(config: &SdkConfig) -> Clients {
        // Labelled (for `--debug`), not limited.
        macro_rules! client {
            ($sdk:ident) => {
                $sdk::Client::from_conf(
                    $sdk::config::Builder::from(config)
                        .interceptor(limit::label())
                        .build(),
                )
            };
        }
        Clients {
            elbv2: client!(aws_sdk_elasticloadbalancingv2),
            ec2: client!(aws_sdk_ec2),
            route53: client!(aws_sdk_route53),
            acm: client!(aws_sdk_acm),
            iam: client!(aws_sdk_iam),
            cloudwatch: client!(aws_sdk_cloudwatch),
        }
    }

    /// Clients whose requests wait for `limiter`'s tokens, so that they stay under AWS's
    /// request rates ([`limit`]).
    pub fn limited(config: &SdkConfig, limiter: &Arc<limit::Limiter>) -> Clients {
        // One client per service, each on the limiter's HTTP client for its buckets.
        macro_rules! client {
            ($sdk:ident, $service:expr) => {
                $sdk::Client::from_conf(
                    $sdk::config::Builder::from(config)
                        .http_client(limit::client($service, limiter))
                        .interceptor(limit::label())
                        .stalled_stream_protection(limit::stall_protection())
                        .build(),
                )
            };
        }
        Clients {
            elbv2: client!(aws_sdk_elasticloadbalancingv2, Service::Elbv2),
            ec2: client!(aws_sdk_ec2, Service::Ec2),
            route53: client!(aws_sdk_route53, Service::Route53),
            acm: client!(aws_sdk_acm, Service::Acm),
            iam: client!(aws_sdk_iam, Service::Iam),
            cloudwatch: client!(aws_sdk_cloudwatch, Service::CloudWatch),
        }
    }

    /// [`Clients::limited`] by the run's limiter at `opts`' rate, or [`Clients::new`] when
    /// `--api-rate 0` turns it off. Every region of the run shares one limiter (Route53's
    /// rate is the account's, whatever the region; for the others it is conservative).
    pub fn for_run(config: &SdkConfig, opts: &AwsOptions) -> Clients {
        static RUN: std::sync::OnceLock<Arc<limit::Limiter>> = std::sync::OnceLock::new();
        match opts.api_rate_percent.unwrap_or(100) {
            0 => Clients::new(config),
            percent => Clients::limited(
                config,
                RUN.get_or_init(|| limit::Limiter::new(f64::from(percent) / 100.0)),
            ),
        }
    }
}

/// The standard AWS chain with `opts` applied and the SDK's standard retry mode. Callers
/// that need more (a test's static credentials) add to it before `load()`.
pub fn loader(opts: &AwsOptions) -> ConfigLoader {
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(opts.call_timeout.unwrap_or(CALL_TIMEOUT))
        .build();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(opts.retry_config())
        .timeout_config(timeouts);
    if let Some(region) = &opts.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(profile) = &opts.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(url) = &opts.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    loader
}

/// Clients configured from the standard AWS chain with `opts` applied.
pub async fn connect(opts: &AwsOptions) -> Clients {
    Clients::for_run(&loader(opts).load().await, opts)
}

// ---------------------------------------------------------------------------------------
// Errors

/// The AWS service a request went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Service {
    Elbv2,
    Ec2,
    Route53,
    Acm,
    Iam,
    CloudWatch,
}

impl std::fmt::Display for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Service::Elbv2 => "elasticloadbalancing",
            Service::Ec2 => "ec2",
            Service::Route53 => "route53",
            Service::Acm => "acm",
            Service::Iam => "iam",
            Service::CloudWatch => "cloudwatch",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// AWS answered with an error.
    #[error("{} {operation} failed: {code}: {message}", operation.service())]
    Api {
        operation: Operation,
        code: String,
        message: String,
    },
    /// No usable answer: the request could not be built or sent, timed out after the
    /// retries, or its answer could not be read.
    #[error("{} {operation} got no answer: {detail}", operation.service())]
    Transport {
        operation: Operation,
        detail: String,
    },
    /// No usable credentials: the chain found none, or the profile named is not there.
    #[error("{} {operation}: no usable AWS credentials ({detail}). Set AWS_PROFILE (or pass --profile) to a profile in ~/.aws/config, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; `aws sts get-caller-identity` shows whether the chain finds any", operation.service())]
    Credentials {
        operation: Operation,
        detail: String,
    },
    /// AWS answered without a field that every such answer has.
    #[error("{} {operation} answered without {field}", operation.service())]
    Incomplete {
        operation: Operation,
        field: &'static str,
    },
    /// More than one public (or, with none public, private) hosted zone has the name.
    #[error(
        "more than one hosted zone is named {name} ({}); reconcile cannot tell which one is \
         delegated",
        ids.join(", ")
    )]
    AmbiguousZone { name: String, ids: Vec<String> },
    /// A create found a resource with the stack's name that the stack does not own.
    #[error(
        "a {kind} named {name} already exists and is not tagged {}=<this stack>; reconcile \
         will not take it over",
        crate::names::STACK_TAG
    )]
    NotOwned { kind: &'static str, name: String },
    /// The caller passed what the planner never produces: a bug in reconcile, not in AWS.
    #[error("bug in reconcile: {0}")]
    Bug(String),
}

impl Error {
    /// Worth trying again: no answer (a dropped connection, a timeout), throttling, or a
    /// server-side failure.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Transport { .. } => true,
            Error::Api { code, .. } => matches!(
                code.as_str(),
                "Throttling"
                    | "ThrottlingException"
                    | "RequestLimitExceeded"
                    | "TooManyRequestsException"
                    | "InternalFailure"
                    | "InternalError"
                    | "ServiceUnavailable"
                    | "ServiceUnavailableException"
            ),
            _ => false,
        }
    }

    /// AWS's error code, when AWS answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The operation that failed.
    pub fn operation(&self) -> Option<Operation> {
        match self {
            Error::Api { operation, .. }
            | Error::Transport { operation, .. }
            | Error::Incomplete { operation, .. }
            | Error::Credentials { operation, .. } => Some(*operation),
            Error::AmbiguousZone { .. } => Some(Operation::ListHostedZonesByName),
            Error::NotOwned { .. } | Error::Bug(_) => None,
        }
    }
}

/// An SDK error as the project's error, naming the service and operation.
pub(crate) fn sdk_error<E, R>(operation: Operation, err: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    if let Some(c) = credentials_error(&err) {
        return Error::Credentials {
            operation,
            // The chain's first line, without the list of providers tried after it.
            detail: c
                .lines()
                .next()
                .unwrap_or_default()
                .trim_end_matches(" Attempted:")
                .to_owned(),
        };
    }
    match &err {
        SdkError::ServiceError(_) => Error::Api {
            operation,
            code: err.code().unwrap_or("Unknown").to_owned(),
            message: err.message().unwrap_or("").to_owned(),
        },
        // Nothing reached AWS: the endpoint's name did not resolve or it could not be
        // connected to, which is what an unknown region looks like too.
        SdkError::DispatchFailure(d) if d.is_io() => Error::Transport {
            operation,
            detail: format!(
                "{}; check the network, and that the region (--region, AWS_REGION or the manifest's `region`) exists: an unknown region has no endpoint",
                chain(&err)
            ),
        },
        _ => Error::Transport {
            operation,
            detail: chain(&err),
        },
    }
}

/// The credential chain's own error, when that is why a request could not be sent.
fn credentials_error(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cause {
        if let Some(c) = e.downcast_ref::<aws_credential_types::provider::error::CredentialsError>()
        {
            return Some(chain(c));
        }
        cause = e.source();
    }
    None
}

/// A request the SDK could not build (a required field left out) as the project's error.
pub(crate) fn unbuilt(operation: Operation, err: &dyn std::error::Error) -> Error {
    Error::Transport {
        operation,
        detail: chain(err),
    }
}

/// An error and its causes on one line (`dispatch failure: io error: ...: Connection
/// refused`), each cause once.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(e) = cause {
        let more = e.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = e.source();
    }
    text
}

/// A field AWS always fills, or [`Error::Incomplete`].
pub(crate) fn need<T>(value: Option<T>, operation: Operation, field: &'static str) -> Result<T> {
    value.ok_or(Error::Incomplete { operation, field })
}

// ---------------------------------------------------------------------------------------
// Counting requests

/// The round a request is sent in: one after the latest round whose answer it needed.
/// `Round::START` stands for "needs no answer", so the first requests are round 1.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Round(pub usize);

impl Round {
    pub const START: Round = Round(0);
}

/// An adapter's answer with the round it was complete in (the last page's round).
#[derive(Debug, Clone, PartialEq)]
pub struct Answer<T> {
    pub value: T,
    pub round: Round,
}

impl<T> Answer<T> {
    /// The same answer, its value turned by `f`, in the same round.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Answer<U> {
        Answer {
            value: f(self.value),
            round: self.round,
        }
    }
}

/// What a read cost.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReadStats {
    /// Requests sent (an SDK retry of the same request is not counted again).
    pub requests: usize,
    /// Longest chain of requests that each needed the previous one's answer.
    pub rounds: usize,
    /// Of `requests`, those whose answer also served other stacks of the run (a listing
    /// read once for all of them): for one stack they are counted in full, so the figures
    /// of several stacks add up to more than the run's.
    pub shared: usize,
    pub by_operation: BTreeMap<String, usize>,
}

impl ReadStats {
    fn add(&mut self, operation: Operation, round: Round, shared: bool) {
        self.requests += 1;
        self.rounds = self.rounds.max(round.0);
        self.shared += usize::from(shared);
        *self
            .by_operation
            .entry(operation.name().to_owned())
            .or_default() += 1;
    }
}

#[derive(Debug, Default)]
struct Counts {
    run: ReadStats,
    by_stack: BTreeMap<String, ReadStats>,
}

/// Counts requests, for the whole run and for the stacks each request serves. Cheap to
/// clone; clones count into the same totals.
#[derive(Debug, Clone, Default)]
pub struct Meter {
    counts: Arc<Mutex<Counts>>,
    /// The stacks that requests recorded through this handle are made for.
    serves: Arc<[String]>,
}

tokio::task_local! {
    /// The round of the last request sent by the current task, when the task runs
    /// inside [`chained`]: its requests are taken to wait on each other.
    static CHAIN: std::cell::Cell<Round>;
}

/// Runs `work` as one sequential chain of requests that starts after round `after`: each
/// request it records is one round after the one before (requests it sends concurrently
/// are counted as if sequential, so the figure is an upper bound). Returns the round of
/// its last request (`after` if it sent none). The executor runs each node this way.
pub async fn chained<F: Future>(after: Round, work: F) -> (F::Output, Round) {
    CHAIN
        .scope(std::cell::Cell::new(after), async move {
            let out = work.await;
            (out, CHAIN.try_with(std::cell::Cell::get).unwrap_or(after))
        })
        .await
}

impl Meter {
    pub fn new() -> Meter {
        Meter::default()
    }

    /// A handle that counts into the same totals and attributes what it records to
    /// `stacks` (replacing this handle's stacks).
    pub fn serving<S: Into<String>>(&self, stacks: impl IntoIterator<Item = S>) -> Meter {
        let mut serves: Vec<String> = stacks.into_iter().map(Into::into).collect();
        serves.sort();
        serves.dedup();
        Meter {
            counts: self.counts.clone(),
            serves: serves.into(),
        }
    }

    /// Records one `operation` request that needed the answers up to round `after`;
    /// returns the round it is sent in.
    pub fn record(&self, operation: Operation, after: Round) -> Round {
        let after = CHAIN.try_with(|c| c.get().max(after)).unwrap_or(after);
        let round = Round(after.0 + 1);
        let _ = CHAIN.try_with(|c| c.set(round));
        // A poisoned lock only means another thread panicked mid-count; the counts are
        // still plain numbers, so keep using them.
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let shared = self.serves.len() > 1;
        counts.run.add(operation, round, shared);
        for stack in self.serves.iter() {
            counts
                .by_stack
                .entry(stack.clone())
                .or_default()
                .add(operation, round, shared);
        }
        round
    }

    /// Sends one request of `operation` that needs no earlier answer: counts it, awaits
    /// `request` (the SDK's `send()`; the limiter paces it, every attempt) and maps its
    /// error to the project's, naming the operation. Every write goes through here.
    pub async fn send<T, E, R>(
        &self,
        operation: Operation,
        request: impl Future<Output = std::result::Result<T, SdkError<E, R>>>,
    ) -> Result<T>
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + 'static,
    {
        self.record(operation, Round::START);
        request.await.map_err(|e| sdk_error(operation, e))
    }

    /// Sends one read of `operation` that needed the answers up to round `after`: counts
    /// it in its round, awaits `request` and maps its error, naming the operation; `None`
    /// where AWS answers that what was asked about is not there (`absent` says which of the
    /// operation's errors mean that). The reads of one thing by id go through here.
    pub async fn read<T, E, R>(
        &self,
        operation: Operation,
        after: Round,
        request: impl Future<Output = std::result::Result<T, SdkError<E, R>>>,
        absent: impl FnOnce(&E) -> bool,
    ) -> Result<Answer<Option<T>>>
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + 'static,
    {
        let round = self.record(operation, after);
        let value = match request.await {
            Ok(out) => Some(out),
            Err(e) if e.as_service_error().is_some_and(absent) => None,
            Err(e) => return Err(sdk_error(operation, e)),
        };
        Ok(Answer { value, round })
    }

    /// What the whole run cost so far.
    pub fn stats(&self) -> ReadStats {
        self.counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .run
            .clone()
    }

    /// What the requests made for `stack` cost (shared ones counted in full).
    pub fn stats_of(&self, stack: &str) -> ReadStats {
        self.counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .by_stack
            .get(stack)
            .cloned()
            .unwrap_or_default()
    }
}

/// Reads every page of a paginated operation: `page(token)` sends one request and returns
/// its items and the next token. Each page is one round after the one before.
pub(crate) async fn paginate<T, K, F, Fut>(
    meter: &Meter,
    operation: Operation,
    after: Round,
    mut page: F,
) -> Result<Answer<Vec<T>>>
where
    K: Clone + PartialEq,
    F: FnMut(Option<K>) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, Option<K>)>>,
{
    let mut items = Vec::new();
    let mut token: Option<K> = None;
    let mut round = after;
    loop {
        round = meter.record(operation, round);
        let (mut got, next) = page(token.clone()).await?;
        items.append(&mut got);
        // A server that hands back the token it was given would loop forever.
        match next {
            Some(next) if token.as_ref() != Some(&next) => token = Some(next),
            _ => break,
        }
    }
    Ok(Answer {
        value: items,
        round,
    })
}

/// Runs the futures concurrently; the first error wins and the rest are dropped.
/// Outputs come in the order of the inputs.
pub(crate) use futures::future::try_join_all;

#[cfg(test)]
mod tests {
    use super::*;
    use aws_config::retry::RetryMode;

    #[test]
    fn retries_follow_flags_then_the_environment() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        let none = AwsOptions::default();
        let c = none.retry_config_with(env(&[]));
        assert_eq!(
            (c.mode(), c.max_attempts()),
            (RetryMode::Standard, MAX_ATTEMPTS)
        );
        let c = none.retry_config_with(env(&[
            ("AWS_RETRY_MODE", " Adaptive"),
            ("AWS_MAX_ATTEMPTS", "7"),
        ]));
        assert_eq!((c.mode(), c.max_attempts()), (RetryMode::Adaptive, 7));
        let c = none.retry_config_with(env(&[
            ("AWS_RETRY_MODE", "legacy"),
            ("AWS_MAX_ATTEMPTS", "x"),
        ]));
        assert_eq!(
            (c.mode(), c.max_attempts()),
            (RetryMode::Standard, MAX_ATTEMPTS)
        );
        let flags = AwsOptions {
            max_attempts: Some(2),
            adaptive: Some(false),
            ..AwsOptions::default()
        };
        let c = flags.retry_config_with(env(&[
            ("AWS_RETRY_MODE", "adaptive"),
            ("AWS_MAX_ATTEMPTS", "9"),
        ]));
        assert_eq!((c.mode(), c.max_attempts()), (RetryMode::Standard, 2));
        let adaptive = AwsOptions {
            adaptive: Some(true),
            ..AwsOptions::default()
        };
        assert_eq!(
            adaptive.retry_config_with(env(&[])).mode(),
            RetryMode::Adaptive
        );
    }

    #[test]
    fn meter_counts_rounds_by_dependency() {
        let meter = Meter::new();
        let a = meter.record(Operation::DescribeLoadBalancers, Round::START);
        let b = meter.record(Operation::DescribeTargetGroups, Round::START);
        let c = meter.record(Operation::DescribeTags, a.max(b));
        meter.record(Operation::DescribeListeners, a);
        meter.clone().record(Operation::DescribeTags, c);
        let stats = meter.stats();
        assert_eq!(stats.requests, 5);
        assert_eq!(stats.rounds, 3);
        assert_eq!(stats.by_operation["DescribeTags"], 2);
    }

    #[test]
    fn requests_are_attributed_to_the_stacks_they_serve() {
        let meter = Meter::new();
        let both = meter.serving(["b", "a", "b"]);
        let a = meter.serving(["a"]);
        let listed = both.record(Operation::DescribeLoadBalancers, Round::START);
        a.record(Operation::DescribeListeners, listed);
        a.record(Operation::DescribeListeners, listed);
        let run = meter.stats();
        assert_eq!((run.requests, run.rounds, run.shared), (3, 2, 1));
        let of_a = meter.stats_of("a");
        assert_eq!((of_a.requests, of_a.rounds, of_a.shared), (3, 2, 1));
        let of_b = meter.stats_of("b");
        assert_eq!((of_b.requests, of_b.rounds, of_b.shared), (1, 1, 1));
        assert_eq!(meter.stats_of("c"), ReadStats::default());
    }

    #[tokio::test]
    async fn a_chain_counts_its_requests_one_after_another() {
        let meter = Meter::new();
        let ((), last) = chained(Round(2), async {
            meter.record(Operation::CreateLoadBalancer, Round::START);
            meter.record(Operation::DescribeLoadBalancers, Round::START);
        })
        .await;
        assert_eq!(last, Round(4));
        let ((), none) = chained(Round(7), async {}).await;
        assert_eq!(none, Round(7));
        // Outside a chain, the round is the one given.
        assert_eq!(meter.record(Operation::GetChange, Round::START), Round(1));
        assert_eq!(meter.stats().rounds, 4);
    }

    #[test]
    fn sdk_errors_name_service_operation_and_code() {
        use aws_sdk_acm::operation::describe_certificate::DescribeCertificateError;
        use aws_sdk_ec2::error::ErrorMetadata;
        let refused = DescribeCertificateError::generic(
            ErrorMetadata::builder()
                .code("AccessDenied")
                .message("not allowed")
                .build(),
        );
        let e = sdk_error(
            Operation::DescribeCertificate,
            SdkError::<_, ()>::service_error(refused, ()),
        );
        assert_eq!(e.code(), Some("AccessDenied"));
        assert_eq!(
            e.to_string(),
            "acm DescribeCertificate failed: AccessDenied: not allowed"
        );
        let e = sdk_error(
            Operation::DescribeTags,
            SdkError::<DescribeCertificateError, ()>::timeout_error("no answer in 3s"),
        );
        assert_eq!(e.code(), None);
        assert_eq!(e.operation(), Some(Operation::DescribeTags));
        assert!(e.to_string().ends_with(": no answer in 3s"), "{e}");
    }

    #[tokio::test]
    async fn pages_are_later_rounds() {
        let meter = Meter::new();
        let answer = paginate(
            &meter,
            Operation::ListResourceRecordSets,
            Round(1),
            |token: Option<u32>| async move {
                let n = token.unwrap_or(0);
                Ok((vec![n], (n < 2).then_some(n + 1)))
            },
        )
        .await
        .map_err(|e| e.to_string());
        assert_eq!(
            answer,
            Ok(Answer {
                value: vec![0, 1, 2],
                round: Round(4)
            })
        );
        assert_eq!(meter.stats().requests, 3);
    }

    #[tokio::test]
    async fn try_join_all_keeps_order_and_stops_at_an_error() {
        let ok = try_join_all((0..4).map(|i| async move { Ok::<_, Error>(i * 2) })).await;
        assert_eq!(ok.map_err(|e| e.to_string()), Ok(vec![0, 2, 4, 6]));
        let failed = try_join_all((0..3).map(|i| async move {
            if i == 1 {
                Err(Error::Incomplete {
                    operation: Operation::DescribeInstances,
                    field: "x",
                })
            } else {
                Ok(i)
            }
        }))
        .await;
        assert!(failed.is_err());
    }
}
