//! The manifest's serde types (format version 1), exactly as a user writes them.
//!
//! These types accept what is *well-formed*; whether it is *sensible* (references resolve,
//! ports are in range, names fit AWS limits) is decided by `validate`. Numbers that have a
//! valid range are read as `i64` so that an out-of-range value is reported with its path
//! and a hint instead of a bare type error.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The whole manifest: one stack, one load balancer, the groups and records around it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Optional pointer to the JSON Schema, for editors. Ignored by the tool.
    #[serde(rename = "$schema", default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// Manifest format version; must be 1.
    pub version: i64,
    /// The owner id. Everything the tool creates is tagged `reconcile:stack=<stack>` and named
    /// from it (load balancer `<stack>`, groups `<stack>-<key>`).
    pub stack: String,
    /// AWS region; the standard AWS chain (or `--region`) is used when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The VPC the load balancer, its groups and the backends live in (`vpc-...`).
    pub vpc: String,
    /// Extra tags put on everything the stack creates.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// Certificates by local name, referred to by HTTPS listeners.
    #[serde(default)]
    pub certificates: BTreeMap<String, Certificate>,
    /// Security groups by local name, created and owned unless `existing` gives an id.
    #[serde(default)]
    pub security_groups: BTreeMap<String, SecurityGroup>,
    /// Target groups by local name, referred to by listeners' `forward`.
    #[serde(default)]
    pub target_groups: BTreeMap<String, TargetGroup>,
    /// The Application Load Balancer. Absent when the site is served by the instances
    /// directly (the reverse migration: the stack's load balancer, listeners and target
    /// groups are then removed once DNS has moved back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<LoadBalancer>,
    /// The hosted zone and the records that point at the load balancer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<Dns>,
}

/// An ACM certificate: found by `domain` (the ISSUED certificate covering that name,
/// wildcards count), requested by the stack (`domain` with `request: true`), or pinned by
/// `arn`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Certificate {
    /// A host name the certificate must cover, e.g. `www.example.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// The ARN of one ACM certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    /// `true`: when no ISSUED certificate covers `domain` (and `alternative_names`), the
    /// stack requests one from ACM, validated by DNS through the manifest's zone (its
    /// validation records are written there and kept: ACM renews with them), and waits
    /// until it is ISSUED before a listener uses it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<bool>,
    /// Further names a requested certificate covers (inside the manifest's zone).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alternative_names: Vec<String>,
}

/// A security group. With `existing` only its ingress rules are managed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecurityGroup {
    /// Description of a created group (AWS cannot change it later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Id (`sg-...`) of a group the stack does not own; only its ingress rules are managed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub existing: Option<String>,
    /// Id (`sg-...`) of a group made by hand that the stack takes over: tagged with the
    /// stack first, then owned whole (its rules exclusive, deleted when it leaves the
    /// manifest). Keep it in the manifest for as long as the group lives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopt: Option<String>,
    /// Remove rules not listed here, once doing so can no longer cut anyone off.
    /// Groups the stack creates are always exclusive.
    #[serde(default)]
    pub exclusive: bool,
    /// Ingress rules.
    #[serde(default)]
    pub ingress: Vec<IngressRule>,
}

/// One ingress rule: TCP `ports` from `cidrs` or from another group (`from`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IngressRule {
    /// TCP ports, each 1..65535.
    pub ports: Vec<i64>,
    /// IPv4 or IPv6 networks, e.g. `0.0.0.0/0`, `::/0`, `198.51.100.0/24`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cidrs: Vec<String>,
    /// Another group: a key of `security_groups` or an `sg-` id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Rule description shown in the AWS console.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Protocol of a listener or target group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Protocol {
    #[serde(rename = "HTTP")]
    Http,
    #[serde(rename = "HTTPS")]
    Https,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http => "HTTP",
            Protocol::Https => "HTTPS",
        }
    }
}

/// A target group of EC2 instances.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetGroup {
    /// Port the targets receive traffic on (1..65535). Changing it replaces the group.
    pub port: i64,
    /// Protocol to the targets. Changing it replaces the group.
    pub protocol: Protocol,
    /// Health check; every field has the AWS default when absent.
    #[serde(default)]
    pub health_check: HealthCheck,
    /// Instance ids (`i-...`).
    #[serde(default)]
    pub targets: Vec<String>,
    /// ARN of a target group made by hand that the stack takes over (tagged with the
    /// stack first, then owned like one it created). Keep it in the manifest for as long
    /// as the group lives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopt: Option<String>,
}

/// Health check of a target group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HealthCheck {
    /// Protocol of the check; defaults to the group's protocol.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,
    /// Port of the check; defaults to the traffic port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i64>,
    /// Path requested; must answer the matcher without authentication.
    #[serde(default = "defaults::path")]
    pub path: String,
    /// HTTP codes that count as healthy: `200`, `200,204` or `200-299`.
    #[serde(default = "defaults::matcher")]
    pub matcher: String,
    /// Seconds between checks (5..300).
    #[serde(default = "defaults::interval")]
    pub interval_seconds: i64,
    /// Seconds before a check counts as failed (2..120, less than the interval).
    #[serde(default = "defaults::timeout")]
    pub timeout_seconds: i64,
    /// Consecutive successes before a target is healthy (2..10).
    #[serde(default = "defaults::healthy")]
    pub healthy_threshold: i64,
    /// Consecutive failures before a target is unhealthy (2..10).
    #[serde(default = "defaults::unhealthy")]
    pub unhealthy_threshold: i64,
    /// Faster values used while the plan waits on this group's health (a group it creates
    /// starts with them, an existing one whose targets must be waited on gets them before
    /// the wait); the values above are set again once the switch's old answers have
    /// expired. Each field absent keeps the value above.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transition: Option<HealthTransition>,
}

/// A health check's timing while a move is in flight (`health_check.transition`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HealthTransition {
    /// Seconds between checks (5..300, at most the resting interval).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_seconds: Option<i64>,
    /// Consecutive successes before a target is healthy (2..10, at most the resting
    /// threshold).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy_threshold: Option<i64>,
    /// Consecutive failures before a target is unhealthy (2..10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unhealthy_threshold: Option<i64>,
    /// Seconds before a check counts as failed (2..120, less than the transition's
    /// interval).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<i64>,
}

impl Default for HealthCheck {
    fn default() -> Self {
        HealthCheck {
            protocol: None,
            port: None,
            path: defaults::path(),
            matcher: defaults::matcher(),
            interval_seconds: defaults::interval(),
            timeout_seconds: defaults::timeout(),
            healthy_threshold: defaults::healthy(),
            unhealthy_threshold: defaults::unhealthy(),
            transition: None,
        }
    }
}

/// AWS's own defaults for an HTTP target group's health check.
mod defaults {
    pub fn path() -> String {
        "/".to_owned()
    }
    pub fn matcher() -> String {
        "200".to_owned()
    }
    pub fn interval() -> i64 {
        30
    }
    pub fn timeout() -> i64 {
        5
    }
    pub fn healthy() -> i64 {
        5
    }
    pub fn unhealthy() -> i64 {
        2
    }
}

/// Whether the load balancer faces the internet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Scheme {
    #[serde(rename = "internet-facing")]
    InternetFacing,
    #[serde(rename = "internal")]
    Internal,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::InternetFacing => "internet-facing",
            Scheme::Internal => "internal",
        }
    }
}

/// The Application Load Balancer, named after the stack.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoadBalancer {
    /// `internet-facing` or `internal`. Changing it replaces the load balancer.
    pub scheme: Scheme,
    /// At least two subnets (`subnet-...`) in different availability zones.
    pub subnets: Vec<String>,
    /// Keys of `security_groups`, or `sg-` ids.
    pub security_groups: Vec<String>,
    /// Listeners, one per port.
    pub listeners: Vec<Listener>,
    /// ARN of a load balancer made by hand that the stack takes over (tagged with the
    /// stack first, then owned like one it created; it keeps its name). Keep it in the
    /// manifest for as long as the load balancer lives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopt: Option<String>,
    /// Load-balancer attributes; each one left out takes its default (AWS's, except
    /// `drop_invalid_header_fields`, on by default here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<LbAttributes>,
}

/// Attributes of the load balancer (AWS's `ModifyLoadBalancerAttributes`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LbAttributes {
    /// Drop request headers whose names are not valid HTTP (attribute
    /// `routing.http.drop_invalid_header_fields.enabled`). Default true (AWS's is false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drop_invalid_header_fields: Option<bool>,
    /// Refuse to delete the load balancer (attribute `deletion_protection.enabled`).
    /// Default false. When true, a replacement or `destroy` turns it off first, as a
    /// planned step of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_protection: Option<bool>,
    /// Seconds a connection may stay idle, 1..4000 (attribute
    /// `idle_timeout.timeout_seconds`). Default 60.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<i64>,
    /// How requests that may be HTTP desync attacks are treated (attribute
    /// `routing.http.desync_mitigation_mode`). Default `defensive`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desync_mitigation_mode: Option<DesyncMitigationMode>,
    /// Access logs to an existing S3 bucket whose policy lets Elastic Load Balancing write
    /// (attributes `access_logs.s3.*`). Default off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_logs: Option<AccessLogs>,
}

/// `routing.http.desync_mitigation_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DesyncMitigationMode {
    Monitor,
    Defensive,
    Strictest,
}

impl DesyncMitigationMode {
    pub fn as_str(self) -> &'static str {
        match self {
            DesyncMitigationMode::Monitor => "monitor",
            DesyncMitigationMode::Defensive => "defensive",
            DesyncMitigationMode::Strictest => "strictest",
        }
    }
}

/// Where access logs go.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AccessLogs {
    /// Name of the S3 bucket (in the load balancer's region).
    pub bucket: String,
    /// Prefix of the log objects' keys inside the bucket (no leading or trailing `/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

/// Where a listener redirects to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum RedirectTo {
    /// `https://` on port 443, the same host, path and query, with a 301.
    #[serde(rename = "https")]
    Https,
}

/// A listener: forwarding to one target group, or (HTTP only) redirecting to https.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Listener {
    /// Port the load balancer listens on (1..65535), unique per load balancer.
    pub port: i64,
    /// `HTTP`, or `HTTPS` (which needs `certificate`).
    pub protocol: Protocol,
    /// Key of the target group that receives the traffic (or `redirect`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward: Option<String>,
    /// `"https"`: the load balancer answers every request with a 301 to the same host and
    /// path over https, and no target group serves this port (instead of `forward`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect: Option<RedirectTo>,
    /// Key of `certificates`; required for HTTPS, not allowed for HTTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
    /// The TLS security policy of an HTTPS listener (AWS's `SslPolicy`), e.g.
    /// `ELBSecurityPolicy-TLS13-1-2-2021-06`, the default: TLS 1.3 and 1.2 only, rather
    /// than the API's own default `ELBSecurityPolicy-2016-08`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_policy: Option<String>,
    /// Response headers the load balancer sets on every answer of this listener (listener
    /// attributes `routing.http.response.*`). A header left out is not set: one set
    /// earlier, by hand or by an older manifest, is removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<Headers>,
}

/// Response headers set by the load balancer, each one listener attribute.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Headers {
    /// `Strict-Transport-Security`, e.g. `max-age=31536000; includeSubDomains` (attribute
    /// `routing.http.response.strict_transport_security.header_value`). HTTPS listeners only:
    /// browsers ignore it over plain HTTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hsts: Option<String>,
    /// `Content-Security-Policy`, e.g. `default-src 'self'` (attribute
    /// `routing.http.response.content_security_policy.header_value`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_security_policy: Option<String>,
    /// `X-Frame-Options`: `DENY`, `SAMEORIGIN` or `ALLOW-FROM <uri>` (attribute
    /// `routing.http.response.x_frame_options.header_value`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x_frame_options: Option<String>,
    /// `X-Content-Type-Options`: `nosniff`, its one value (attribute
    /// `routing.http.response.x_content_type_options.header_value`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x_content_type_options: Option<String>,
    /// `false`: the load balancer's own `Server` header is left out of its answers
    /// (attribute `routing.http.response.server.enabled`; AWS's default is true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<bool>,
}

/// The hosted zone and the records managed in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Dns {
    /// Name of the Route53 hosted zone, e.g. `example.com`.
    pub zone: String,
    /// Records pointing at the load balancer.
    pub records: Vec<Record>,
}

/// Record types the tool manages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum RecordType {
    /// A CNAME to the load balancer's DNS name.
    #[serde(rename = "CNAME")]
    Cname,
    /// An alias A record to the load balancer.
    A,
    /// An alias AAAA record to the load balancer.
    #[serde(rename = "AAAA")]
    Aaaa,
}

impl RecordType {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordType::Cname => "CNAME",
            RecordType::A => "A",
            RecordType::Aaaa => "AAAA",
        }
    }
}

/// What a record points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum RecordTarget {
    /// The stack's load balancer.
    #[serde(rename = "load_balancer")]
    LoadBalancer,
}

/// One DNS record: `to` the load balancer, or its own `values` (exactly one of the two).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// Fully qualified name inside the zone, e.g. `www.example.com`.
    pub name: String,
    /// `CNAME`, or `A`/`AAAA` (an alias record with `to`, a plain one with `values`).
    #[serde(rename = "type")]
    pub kind: RecordType,
    /// What the record points at: the stack's load balancer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<RecordTarget>,
    /// The record's own values instead of `to`: IPv4 addresses for `A` (the instances'
    /// elastic IPs), IPv6 addresses for `AAAA`, one host name for `CNAME`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    /// TTL at rest, in seconds (required for CNAME and for `values`; alias records take
    /// the target's TTL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<i64>,
    /// TTL used while the record's value changes (defaults to the smaller of 300 and `ttl`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transition_ttl: Option<i64>,
    /// Before the record switches to the load balancer, ask the site through it, by this
    /// record's name, and refuse to switch unless it answers as expected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<Probe>,
    /// Move visitors to the load balancer in weighted steps, each watched for errors, and
    /// back to the old value on a breach, instead of all at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cutover: Option<Cutover>,
}

/// A staged switch: the share of answers that name the new value, step by step, each held
/// for `bake` while the load balancer's errors are watched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Cutover {
    /// Percentages of answers for the new value, rising, the last one 100, e.g.
    /// `[10, 50, 100]`.
    pub steps: Vec<i64>,
    /// How long each step below 100 is held and watched (`"5m"`, `"90s"`; default
    /// `"5m"`); never shorter than the record's TTL once Route53 is in sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bake: Option<String>,
    /// The highest share of 5xx answers (the load balancer's and the targets') among the
    /// new path's requests during a bake, in percent (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_5xx_percent: Option<f64>,
    /// The most unhealthy targets allowed during a bake (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unhealthy: Option<i64>,
}

/// The request made through the load balancer before a record switches to it: the
/// article's test with the name pointed at the load balancer in /etc/hosts, automated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Probe {
    /// The path requested (default `/`): a real page, not the health check's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The statuses that pass (default `[200]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<Vec<i64>>,
}

/// The TLS policy an HTTPS listener gets when the manifest names none: TLS 1.3 and 1.2
/// (the API's own default, `ELBSecurityPolicy-2016-08`, still takes TLS 1.0).
pub const DEFAULT_SSL_POLICY: &str = "ELBSecurityPolicy-TLS13-1-2-2021-06";
