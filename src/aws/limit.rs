//! Staying under AWS's request rates instead of retrying once throttled. Each service
//! throttles an account's requests per Region with token buckets (a bucket of N tokens,
//! refilled at R a second; one request takes one token): Route53 five requests a second
//! for the whole account, EC2 and Elastic Load Balancing a bucket per API whose size
//! depends on its kind. A run over many stacks sends its reads in bursts well above those
//! rates, and every throttled request costs a retry and a backoff. So every request waits
//! here for a token of a client-side bucket shaped like AWS's, slightly smaller, before it
//! is sent: at the documented rates, no request is throttled.
//!
//! The wait is in the HTTP connector, so every attempt (the SDK's retries included) takes
//! a token, as it does on AWS; an interceptor labels each request with its operation
//! (the SDK's own [`Metadata`], a typed value) for the connector to pick the bucket.
//!
//! Sources (the rates are AWS's documented defaults; accounts can have them raised, which
//! `--rate-scale` follows):
//! - Route53: "Amazon Route 53 API requests: five requests per second per AWS account"
//!   (Route 53 Developer Guide, Quotas).
//! - EC2: "Request throttling for the Amazon EC2 API" (EC2 Developer Guide): per-API
//!   buckets; non-mutating actions 100 tokens refilled at 20/s, unfiltered and
//!   unpaginated non-mutating actions 50 at 10/s, mutating actions 50 at 5/s.
//! - Elastic Load Balancing: "Request throttling for the ELB API" (ELB User Guide):
//!   an account bucket of 40 refilled at 10/s shared by every request, and one bucket per
//!   kind: `Describe*` 40 at 10/s, target registration 20 at 4/s, `CreateLoadBalancer`
//!   and `SetSubnets` 10 at 0.2/s, other changes 20 at 3/s (see [`buckets`]).
//! - ACM: "Quotas" (ACM User Guide), API rate quotas per operation (a bucket of one
//!   second's worth).

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextMut,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, Metadata};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use super::operation::{Access, Operation};
use super::Service;

/// A token bucket as AWS documents it: `size` tokens, refilled at `refill` a second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    pub size: u32,
    pub refill: f64,
}

/// How much earlier than sent, relative to each other, two requests may reach AWS (one
/// delayed on the way, the next not): the client-side buckets keep this much margin.
/// Between taking its token and reaching AWS a request waits for a connection and for
/// the CPU: with twenty stacks applied at once on two cores, 0.2 s proved too little
/// (one `DescribeTargetHealth` in 600 throttled on the AWS-like layer).
const JITTER: f64 = 0.5;

/// Which of AWS's buckets a request takes a token from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    /// One bucket for every request to the service in the account.
    Account(Service),
    /// One bucket for a kind of request (Elastic Load Balancing's categories), or for the
    /// requests of operations reconcile does not know.
    Kind(Service, &'static str),
    /// One bucket per API (EC2, ACM).
    Api(Operation),
}

/// AWS's documented buckets for `op`: a request takes a token from each.
fn buckets(op: Operation) -> Vec<(Key, Bucket)> {
    use Operation as O;
    let service = op.service();
    let api = |size, refill: f64| (Key::Api(op), Bucket { size, refill });
    let kind = |name, size, refill: f64| (Key::Kind(service, name), Bucket { size, refill });
    let account = |size, refill: f64| (Key::Account(service), Bucket { size, refill });
    let read = op.access() == Access::Read;
    match service {
        Service::Route53 => vec![account(5, 5.0)],
        Service::Ec2 => vec![match op {
            // Listed among the "unfiltered and unpaginated" reads: the smaller bucket,
            // whether or not a call filters (the safe side).
            O::DescribeInstances | O::DescribeNetworkInterfaces | O::DescribeSecurityGroups => {
                api(50, 10.0)
            }
            O::CreateTags => api(100, 10.0),
            _ if read => api(100, 20.0),
            _ => api(50, 5.0),
        }],
        Service::Elbv2 => vec![
            account(40, 10.0),
            match op {
                O::CreateLoadBalancer | O::SetSubnets => kind("resource-intensive", 10, 0.2),
                O::RegisterTargets | O::DeregisterTargets => kind("registration", 20, 4.0),
                _ if read => kind("non-mutating", 40, 10.0),
                _ => kind("mutating", 20, 3.0),
            },
        ],
        Service::Acm => vec![match op {
            O::DescribeCertificate | O::DeleteCertificate | O::ListTagsForCertificate => {
                api(10, 10.0)
            }
            O::ListCertificates => api(8, 8.0),
            _ => api(5, 5.0),
        }],
        // IAM publishes no request rates; it throttles per account, and the tool reads
        // it only for server certificates. A small bucket is the safe side.
        Service::Iam => vec![account(10, 5.0)],
        // GetMetricStatistics: 400 requests a second per account and region; a bake
        // asks a handful every poll.
        Service::CloudWatch => vec![account(50, 50.0)],
    }
}

/// The buckets of a request whose operation reconcile does not know (none is sent today:
/// [`Operation`] lists every one): the service's account bucket where it has one, else
/// the smallest of its per-API buckets, shared by every such request.
fn unknown(service: Service) -> Vec<(Key, Bucket)> {
    let kind = |size, refill: f64| (Key::Kind(service, "unknown"), Bucket { size, refill });
    let account = |size, refill: f64| (Key::Account(service), Bucket { size, refill });
    match service {
        Service::Route53 => vec![account(5, 5.0)],
        Service::Ec2 => vec![kind(50, 5.0)],
        Service::Elbv2 => vec![account(40, 10.0), kind(10, 0.2)],
        Service::Acm => vec![kind(5, 5.0)],
        Service::Iam => vec![account(10, 5.0)],
        Service::CloudWatch => vec![account(50, 50.0)],
    }
}

/// The client-side buckets of a run, one per AWS bucket, shaped so that requests that
/// leave them reach AWS within its bucket even when some arrive up to [`JITTER`] closer
/// together than they were sent.
#[derive(Debug)]
pub struct Limiter {
    scale: f64,
    buckets: Mutex<HashMap<Key, Arc<DefaultDirectRateLimiter>>>,
}

/// A client-side bucket: a burst of `burst`, then one request every `period`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pace {
    pub burst: u32,
    pub period: Duration,
}

impl Limiter {
    /// Buckets at `scale` times AWS's documented rates and sizes (1.0: the defaults).
    pub fn new(scale: f64) -> Arc<Limiter> {
        Arc::new(Limiter {
            scale: if scale.is_finite() && scale > 0.0 {
                scale
            } else {
                1.0
            },
            buckets: Mutex::new(HashMap::new()),
        })
    }

    /// The client-side pace for an AWS bucket. A burst of `size - refill × JITTER` at
    /// AWS's refill rate keeps every window of arrivals within the bucket; when that
    /// leaves no burst (a bucket of one or two), requests go one at a time, spaced by the
    /// refill period plus the jitter.
    pub fn pace(&self, aws: Bucket) -> Pace {
        let size = (f64::from(aws.size) * self.scale).floor().max(1.0);
        let refill = (aws.refill * self.scale).max(0.001);
        let margin = (refill * JITTER).ceil().max(1.0);
        if size - margin >= 1.0 {
            Pace {
                burst: size as u32 - margin as u32,
                period: Duration::from_secs_f64(1.0 / refill),
            }
        } else {
            Pace {
                burst: 1,
                period: Duration::from_secs_f64(1.0 / refill + JITTER),
            }
        }
    }

    fn limiters(&self, buckets: Vec<(Key, Bucket)>) -> Vec<Arc<DefaultDirectRateLimiter>> {
        let mut held = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        buckets
            .into_iter()
            .map(|(key, aws)| {
                held.entry(key)
                    .or_insert_with(|| {
                        let pace = self.pace(aws);
                        let quota = Quota::with_period(pace.period)
                            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
                            .allow_burst(NonZeroU32::new(pace.burst).unwrap_or(NonZeroU32::MIN));
                        Arc::new(RateLimiter::direct(quota))
                    })
                    .clone()
            })
            .collect()
    }

    /// Waits until a request of `operation` may be sent: a token of each of its buckets.
    pub async fn acquire(&self, operation: Operation) {
        for limiter in self.limiters(buckets(operation)) {
            limiter.until_ready().await;
        }
    }

    /// Waits until a request of an operation reconcile does not know may be sent.
    async fn acquire_unknown(&self, service: Service) {
        for limiter in self.limiters(unknown(service)) {
            limiter.until_ready().await;
        }
    }
}

/// The SDK's name of a request's operation, put on it by [`Label`] for [`Limited`] to
/// read.
#[derive(Debug, Clone)]
struct Sent(String);

/// Labels each request with its operation (from the SDK's own metadata).
#[derive(Debug)]
struct Label;

impl Intercept for Label {
    fn name(&self) -> &'static str {
        "reconcile::aws::limit::Label"
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(m) = cfg.load::<Metadata>() {
            context
                .request_mut()
                .add_extension(Sent(m.name().to_owned()));
        }
        Ok(())
    }

    /// `--debug`: each answer with its operation, status and AWS's request id (what AWS
    /// support asks for).
    fn read_before_deserialization(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let response = context.response();
        let headers = response.headers();
        let request_id = headers
            .get("x-amzn-requestid")
            .or_else(|| headers.get("x-amz-request-id"))
            .unwrap_or("-");
        tracing::debug!(
            target: "reconcile::aws",
            operation = cfg.load::<Metadata>().map_or("?", |m| m.name()),
            status = response.status().as_u16(),
            request_id,
            "answer"
        );
        Ok(())
    }
}

/// An HTTP client whose requests each wait for a token of their bucket first.
#[derive(Debug)]
struct Limited {
    inner: SharedHttpClient,
    service: Service,
    limiter: Arc<Limiter>,
}

#[derive(Debug)]
struct LimitedConnector {
    inner: SharedHttpConnector,
    service: Service,
    limiter: Arc<Limiter>,
}

impl HttpClient for Limited {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(LimitedConnector {
            inner: self.inner.http_connector(settings, components),
            service: self.service,
            limiter: self.limiter.clone(),
        })
    }
}

impl HttpConnector for LimitedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let sent = request.extension::<Sent>().cloned();
        let (inner, service, limiter) = (self.inner.clone(), self.service, self.limiter.clone());
        HttpConnectorFuture::new(async move {
            match sent.map(|Sent(name)| Operation::of(service, &name)) {
                Some(Some(op)) => limiter.acquire(op).await,
                Some(None) => limiter.acquire_unknown(service).await,
                None => {}
            }
            inner.call(request).await
        })
    }
}

/// The default HTTPS client (the SDK's: hyper with rustls), its requests limited.
pub(crate) fn client(service: Service, limiter: &Arc<Limiter>) -> SharedHttpClient {
    let inner = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .build_https();
    SharedHttpClient::new(Limited {
        inner,
        service,
        limiter: limiter.clone(),
    })
}

/// The SDK's stalled-stream protection for limited clients: on for answers (a server that
/// stops sending), off for uploads. The upload check counts the time a request waits for
/// its token as a stalled upload and fails it after its grace period (5 s), which a run
/// over many stacks waits routinely; the requests themselves are a few hundred bytes.
pub(crate) fn stall_protection(
) -> aws_smithy_runtime_api::client::stalled_stream_protection::StalledStreamProtectionConfig {
    aws_smithy_runtime_api::client::stalled_stream_protection::StalledStreamProtectionConfig::enabled()
        .upload_enabled(false)
        .build()
}

/// The interceptor that labels requests for [`client`].
pub(crate) fn label() -> impl Intercept + 'static {
    Label
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route53_shares_one_bucket_and_ec2_one_per_api() {
        let keys = |op| -> Vec<Key> { buckets(op).into_iter().map(|(k, _)| k).collect() };
        assert_eq!(
            keys(Operation::ListResourceRecordSets),
            keys(Operation::GetChange)
        );
        assert_ne!(
            keys(Operation::DescribeSecurityGroups),
            keys(Operation::CreateSecurityGroup)
        );
        // Elastic Load Balancing: the account's bucket and the kind's.
        let elb = keys(Operation::DescribeListeners);
        assert_eq!(elb.len(), 2);
        assert_eq!(elb, keys(Operation::DescribeTargetHealth));
        assert_ne!(elb, keys(Operation::CreateListener));
    }

    /// The most requests a pace lets reach AWS within `window` seconds when each may
    /// arrive up to JITTER early: the burst plus what the period allows in the window
    /// widened by the jitter.
    fn worst_arrivals(p: Pace, window: f64) -> f64 {
        f64::from(p.burst - 1) + ((window + JITTER) / p.period.as_secs_f64()).floor() + 1.0
    }

    #[test]
    fn client_paces_never_overflow_aws_buckets() {
        let l = Limiter::new(1.0);
        let services = [
            Service::Route53,
            Service::Ec2,
            Service::Elbv2,
            Service::Acm,
            Service::Iam,
            Service::CloudWatch,
        ];
        let all = Operation::ALL
            .iter()
            .map(|&op| (op.to_string(), buckets(op)))
            .chain(services.map(|s| (format!("{s} unknown"), unknown(s))));
        for (op, buckets) in all {
            for (_, aws) in buckets {
                let pace = l.pace(aws);
                assert!(pace.period.as_secs_f64() >= 1.0 / aws.refill - 1e-9, "{op}");
                for window in [0.0, 0.1, 0.5, 1.0, 3.0, 10.0, 60.0] {
                    let allowed = f64::from(aws.size) + aws.refill * window;
                    assert!(
                        worst_arrivals(pace, window) <= allowed + 1e-9,
                        "{op}: {pace:?} against {aws:?} over {window} s"
                    );
                }
            }
        }
        let half = Limiter::new(0.5).pace(Bucket {
            size: 5,
            refill: 5.0,
        });
        assert_eq!(half.burst, 1);
    }

    #[tokio::test]
    async fn a_burst_waits_for_the_refill() {
        let l = Limiter::new(1.0);
        // Route53: a burst (5 less the margin), then 5 a second.
        let burst = l
            .pace(Bucket {
                size: 5,
                refill: 5.0,
            })
            .burst;
        assert_eq!(burst, 2);
        let t0 = std::time::Instant::now();
        for _ in 0..burst {
            l.acquire(Operation::GetChange).await;
        }
        assert!(t0.elapsed() < std::time::Duration::from_millis(100));
        for _ in 0..5 {
            l.acquire(Operation::ListHostedZonesByName).await;
        }
        let took = t0.elapsed();
        assert!(
            took >= std::time::Duration::from_millis(900),
            "5 more requests at 5/s took {took:?}"
        );
    }
}
