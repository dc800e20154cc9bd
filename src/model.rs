//! Desired and Observed: the project's own types for what a manifest asks for and what AWS
//! has. No SDK type crosses this line; the AWS adapters translate into these, the planner
//! reads only these. Values are kept in normal form (lowercase DNS names without trailing
//! dot, canonical CIDRs, `traffic-port` for a health check on the traffic port) so that
//! spelling never shows as a difference.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::manifest::{self, net, Manifest};
use crate::names;

pub type Tags = BTreeMap<String, String>;

// ---------------------------------------------------------------------------------------
// Shared pieces

/// Where an ingress rule admits traffic from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// A network in canonical form (`0.0.0.0/0`, `2001:db8::/32`).
    Cidr(String),
    /// A security group by id.
    Group(String),
    /// A security group by manifest key (desired side only; resolved to an id when known).
    Key(String),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Cidr(c) => f.write_str(c),
            Source::Group(id) => f.write_str(id),
            Source::Key(k) => write!(f, "group \"{k}\""),
        }
    }
}

/// What identifies an ingress rule: protocol, port range and source.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RuleKey {
    /// `tcp`, `udp`, `icmp`, or `-1` for all traffic.
    pub protocol: IpProtocol,
    pub from_port: i32,
    pub to_port: i32,
    pub source: Source,
}

impl RuleKey {
    pub fn tcp(port: u16, source: Source) -> RuleKey {
        RuleKey {
            protocol: IpProtocol::Tcp,
            from_port: i32::from(port),
            to_port: i32::from(port),
            source,
        }
    }

    /// Does this rule admit TCP `port`?
    pub fn admits_tcp(&self, port: u16) -> bool {
        let p = i32::from(port);
        match self.protocol {
            IpProtocol::All => true,
            IpProtocol::Tcp => self.from_port <= p && p <= self.to_port,
            IpProtocol::Other(_) => false,
        }
    }

    /// This rule with its source, where that is a group named by manifest key, named by the
    /// group's id as `id_of` finds it (kept by key where it finds none). The one resolver
    /// of a rule's source: the planner's from the groups that exist, the interpreter's from
    /// those the run created too.
    pub fn resolve<E>(
        &self,
        id_of: impl FnOnce(&str) -> Result<Option<String>, E>,
    ) -> Result<RuleKey, E> {
        let Source::Key(key) = &self.source else {
            return Ok(self.clone());
        };
        Ok(match id_of(key)? {
            Some(id) => RuleKey {
                source: Source::Group(id),
                ..self.clone()
            },
            None => self.clone(),
        })
    }

    pub fn is_from_internet(&self) -> bool {
        matches!(&self.source, Source::Cidr(c) if c == "0.0.0.0/0" || c == "::/0")
    }
}

impl std::fmt::Display for RuleKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let proto = match self.protocol {
            IpProtocol::All => "all",
            _ => self.protocol.as_str(),
        };
        if self.from_port == self.to_port {
            write!(f, "{proto}/{} from {}", self.from_port, self.source)
        } else {
            write!(
                f,
                "{proto}/{}-{} from {}",
                self.from_port, self.to_port, self.source
            )
        }
    }
}

/// Port a health check probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthPort {
    TrafficPort,
    Port(u16),
}

/// A target group's health check in normal form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheck {
    pub protocol: Protocol,
    pub port: HealthPort,
    pub path: String,
    pub matcher: String,
    pub interval_seconds: i32,
    pub timeout_seconds: i32,
    pub healthy_threshold: i32,
    pub unhealthy_threshold: i32,
}

impl std::fmt::Display for HealthCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let port = match self.port {
            HealthPort::TrafficPort => "the traffic port".to_owned(),
            HealthPort::Port(p) => format!("port {p}"),
        };
        write!(
            f,
            "{} {} on {port}, expecting {}, every {}s (timeout {}s), healthy after {}, unhealthy after {}",
            self.protocol,
            self.path,
            self.matcher,
            self.interval_seconds,
            self.timeout_seconds,
            self.healthy_threshold,
            self.unhealthy_threshold
        )
    }
}

impl HealthCheck {
    /// The health port in normal form: the traffic port, however it is spelled, is
    /// `TrafficPort`.
    pub fn normal_port(port: Option<u16>, traffic_port: u16) -> HealthPort {
        match port {
            Some(p) if p != traffic_port => HealthPort::Port(p),
            _ => HealthPort::TrafficPort,
        }
    }

    /// The port actually probed.
    pub fn probed_port(&self, traffic_port: u16) -> u16 {
        match self.port {
            HealthPort::TrafficPort => traffic_port,
            HealthPort::Port(p) => p,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Desired

/// What the manifest asks for, resolved and in normal form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Desired {
    pub stack: String,
    pub region: Option<String>,
    pub vpc: String,
    /// Tags for everything created, including `reconcile:stack`.
    pub tags: Tags,
    pub certificates: BTreeMap<String, CertSpec>,
    pub security_groups: BTreeMap<String, DesiredSg>,
    pub target_groups: BTreeMap<String, DesiredTg>,
    /// None when the records lead to the instances directly (the stack's load balancer,
    /// if any, goes once DNS has moved away from it).
    pub load_balancer: Option<DesiredLb>,
    pub dns: Option<DesiredDns>,
}

impl Desired {
    /// The name of the stack's load balancer, declared or not (one the stack made earlier
    /// is found by it).
    pub fn lb_name(&self) -> String {
        names::load_balancer(&self.stack)
    }

    /// Does the manifest adopt the resource with this ARN or id?
    pub fn adopts(&self, id: &str) -> bool {
        let adopted = |a: &Option<String>| a.as_deref() == Some(id);
        self.load_balancer
            .as_ref()
            .is_some_and(|lb| adopted(&lb.adopt))
            || self.target_groups.values().any(|t| adopted(&t.adopt))
            || self.security_groups.values().any(|g| adopted(&g.adopt))
    }

    /// The listener ports visitors come on: the manifest's, or, without a load balancer,
    /// the web ports (what a load balancer still serving old answers must keep answering).
    pub fn lb_ports(&self) -> Vec<u16> {
        match &self.load_balancer {
            Some(lb) => lb.listeners.keys().copied().collect(),
            None => vec![80, 443],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CertSpec {
    /// The ISSUED certificate covering this name (wildcards count).
    Domain(String),
    Arn(String),
    /// An ISSUED certificate covering every one of these names (the first is its domain),
    /// else one the stack requests from ACM and validates through the zone.
    Request(Vec<String>),
}

impl CertSpec {
    /// The names a certificate must cover to answer it (none for one pinned by ARN).
    pub fn names(&self) -> Vec<String> {
        match self {
            CertSpec::Domain(d) => vec![d.clone()],
            CertSpec::Request(names) => names.clone(),
            CertSpec::Arn(_) => vec![],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DesiredSg {
    pub key: String,
    /// Name of a created group; for an existing group, its id.
    pub name: String,
    /// Id of a group the stack does not own (only its rules are managed).
    pub existing: Option<String>,
    /// Id of a group made by hand that the stack takes over (then owned whole).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopt: Option<String>,
    /// Unlisted rules are removed (always true for a created or adopted group).
    pub exclusive: bool,
    pub description: String,
    /// Rules with their descriptions.
    pub rules: BTreeMap<RuleKey, Option<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DesiredTg {
    pub key: String,
    /// Base name; a replacement takes [`names::alternate`] of it.
    pub name: String,
    pub port: u16,
    pub protocol: Protocol,
    pub health: HealthCheck,
    /// The health check while the plan waits on the group's health (the resting one with
    /// the manifest's `transition` timing); absent when the manifest gives none or it
    /// changes nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transition: Option<HealthCheck>,
    pub targets: BTreeSet<String>,
    /// ARN of a group made by hand that the stack takes over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopt: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupRef {
    Key(String),
    Id(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DesiredLb {
    pub name: String,
    pub scheme: String,
    pub subnets: BTreeSet<String>,
    pub security_groups: Vec<GroupRef>,
    pub listeners: BTreeMap<u16, DesiredListener>,
    /// ARN of a load balancer made by hand that the stack takes over (it keeps its name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopt: Option<String>,
    /// Every managed attribute with its value (defaults filled in).
    #[serde(default)]
    pub attributes: LbAttributes,
}

/// A load balancer's managed attributes, each with its value: all of them on the desired
/// side (defaults filled in), all of them on the observed side too (AWS's default for one
/// it did not describe), so that an unset attribute is never drift.
pub type LbAttributes = BTreeMap<LbAttr, String>;

/// A load-balancer attribute the manifest manages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LbAttr {
    DropInvalidHeaderFields,
    DeletionProtection,
    IdleTimeout,
    DesyncMitigationMode,
    AccessLogsEnabled,
    AccessLogsBucket,
    AccessLogsPrefix,
}

impl LbAttr {
    pub const ALL: [LbAttr; 7] = [
        LbAttr::DropInvalidHeaderFields,
        LbAttr::DeletionProtection,
        LbAttr::IdleTimeout,
        LbAttr::DesyncMitigationMode,
        LbAttr::AccessLogsEnabled,
        LbAttr::AccessLogsBucket,
        LbAttr::AccessLogsPrefix,
    ];

    /// AWS's key.
    pub fn key(self) -> &'static str {
        match self {
            LbAttr::DropInvalidHeaderFields => "routing.http.drop_invalid_header_fields.enabled",
            LbAttr::DeletionProtection => "deletion_protection.enabled",
            LbAttr::IdleTimeout => "idle_timeout.timeout_seconds",
            LbAttr::DesyncMitigationMode => "routing.http.desync_mitigation_mode",
            LbAttr::AccessLogsEnabled => "access_logs.s3.enabled",
            LbAttr::AccessLogsBucket => "access_logs.s3.bucket",
            LbAttr::AccessLogsPrefix => "access_logs.s3.prefix",
        }
    }

    /// AWS's value for a load balancer nobody set it on.
    pub fn aws_default(self) -> &'static str {
        match self {
            LbAttr::DropInvalidHeaderFields
            | LbAttr::DeletionProtection
            | LbAttr::AccessLogsEnabled => "false",
            LbAttr::IdleTimeout => "60",
            LbAttr::DesyncMitigationMode => "defensive",
            LbAttr::AccessLogsBucket | LbAttr::AccessLogsPrefix => "",
        }
    }

    /// Its name in the plan (the manifest's field under `attributes`).
    pub fn field(self) -> &'static str {
        match self {
            LbAttr::DropInvalidHeaderFields => "drop_invalid_header_fields",
            LbAttr::DeletionProtection => "deletion_protection",
            LbAttr::IdleTimeout => "idle_timeout",
            LbAttr::DesyncMitigationMode => "desync_mitigation_mode",
            LbAttr::AccessLogsEnabled => "access_logs.enabled",
            LbAttr::AccessLogsBucket => "access_logs.bucket",
            LbAttr::AccessLogsPrefix => "access_logs.prefix",
        }
    }

    /// The managed attributes among those AWS describes, AWS's default for each missing.
    pub fn from_aws<'a>(attrs: impl IntoIterator<Item = (&'a str, &'a str)>) -> LbAttributes {
        let attrs: BTreeMap<&str, &str> = attrs.into_iter().collect();
        let mut out: LbAttributes = LbAttr::ALL
            .into_iter()
            .map(|a| {
                (
                    a,
                    attrs
                        .get(a.key())
                        .copied()
                        .unwrap_or(a.aws_default())
                        .to_owned(),
                )
            })
            .collect();
        // A bucket left behind by logs turned off is not where anything goes.
        if out.get(&LbAttr::AccessLogsEnabled).map(String::as_str) != Some("true") {
            out.insert(LbAttr::AccessLogsBucket, String::new());
            out.insert(LbAttr::AccessLogsPrefix, String::new());
        }
        out
    }

    /// The manifest's `attributes` with every default filled in.
    pub fn from_manifest(m: Option<&manifest::LbAttributes>) -> LbAttributes {
        let m = m.cloned().unwrap_or_default();
        let logs = m.access_logs.as_ref();
        [
            (
                LbAttr::DropInvalidHeaderFields,
                m.drop_invalid_header_fields.unwrap_or(true).to_string(),
            ),
            (
                LbAttr::DeletionProtection,
                m.deletion_protection.unwrap_or(false).to_string(),
            ),
            (
                LbAttr::IdleTimeout,
                m.idle_timeout.unwrap_or(60).to_string(),
            ),
            (
                LbAttr::DesyncMitigationMode,
                m.desync_mitigation_mode
                    .map_or("defensive", |d| d.as_str())
                    .to_owned(),
            ),
            (LbAttr::AccessLogsEnabled, logs.is_some().to_string()),
            (
                LbAttr::AccessLogsBucket,
                logs.map(|l| l.bucket.clone()).unwrap_or_default(),
            ),
            (
                LbAttr::AccessLogsPrefix,
                logs.and_then(|l| l.prefix.clone()).unwrap_or_default(),
            ),
        ]
        .into_iter()
        .collect()
    }
}

impl DesiredLb {
    /// The ports of the listeners the manifest gives `headers` to.
    pub fn header_ports(&self) -> BTreeSet<u16> {
        self.listeners
            .values()
            .filter(|l| l.headers.is_some())
            .map(|l| l.port)
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredListener {
    pub port: u16,
    pub protocol: Protocol,
    pub to: ListenerTo,
    /// Key of the certificate.
    pub certificate: Option<String>,
    /// The TLS policy of an HTTPS listener (none for HTTP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_policy: Option<SslPolicy>,
    /// The response headers it sets, by attribute, only those not at AWS's default; `None`
    /// when the manifest gives it no `headers` (they are then not the stack's to manage,
    /// unless it managed them before: [`names::HEADERS_TAG`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<Headers>,
}

/// An HTTPS listener's TLS security policy, and whether the manifest left it to the default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SslPolicy {
    pub name: String,
    pub defaulted: bool,
}

use crate::manifest::DEFAULT_SSL_POLICY;

/// A listener's response headers: each managed header attribute with a value other than
/// AWS's default (an attribute at its default is left out, so that equal maps mean equal
/// listeners).
pub type Headers = BTreeMap<ResponseHeader, String>;

/// A response header the load balancer sets (or, for `Server`, leaves out): one listener
/// attribute each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseHeader {
    Hsts,
    ContentSecurityPolicy,
    XFrameOptions,
    XContentTypeOptions,
    Server,
}

impl ResponseHeader {
    pub const ALL: [ResponseHeader; 5] = [
        ResponseHeader::Hsts,
        ResponseHeader::ContentSecurityPolicy,
        ResponseHeader::XFrameOptions,
        ResponseHeader::XContentTypeOptions,
        ResponseHeader::Server,
    ];

    /// The listener attribute's key.
    pub fn attribute(self) -> &'static str {
        match self {
            ResponseHeader::Hsts => "routing.http.response.strict_transport_security.header_value",
            ResponseHeader::ContentSecurityPolicy => {
                "routing.http.response.content_security_policy.header_value"
            }
            ResponseHeader::XFrameOptions => "routing.http.response.x_frame_options.header_value",
            ResponseHeader::XContentTypeOptions => {
                "routing.http.response.x_content_type_options.header_value"
            }
            ResponseHeader::Server => "routing.http.response.server.enabled",
        }
    }

    /// The attribute's value when nothing is set (what setting it back removes the header
    /// with).
    pub fn unset(self) -> &'static str {
        match self {
            ResponseHeader::Server => "true",
            _ => "",
        }
    }

    /// Its field in the manifest's `headers`.
    pub fn field(self) -> &'static str {
        match self {
            ResponseHeader::Hsts => "hsts",
            ResponseHeader::ContentSecurityPolicy => "content_security_policy",
            ResponseHeader::XFrameOptions => "x_frame_options",
            ResponseHeader::XContentTypeOptions => "x_content_type_options",
            ResponseHeader::Server => "server",
        }
    }

    /// The header as a browser sees it.
    pub fn http_name(self) -> &'static str {
        match self {
            ResponseHeader::Hsts => "Strict-Transport-Security",
            ResponseHeader::ContentSecurityPolicy => "Content-Security-Policy",
            ResponseHeader::XFrameOptions => "X-Frame-Options",
            ResponseHeader::XContentTypeOptions => "X-Content-Type-Options",
            ResponseHeader::Server => "Server",
        }
    }

    /// The managed headers among a listener's attributes as AWS describes them, those at
    /// their default left out.
    pub fn from_attributes<'a>(attrs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Headers {
        let attrs: BTreeMap<&str, &str> = attrs.into_iter().collect();
        ResponseHeader::ALL
            .into_iter()
            .filter_map(|h| {
                let v = attrs.get(h.attribute())?;
                (*v != h.unset()).then(|| (h, (*v).to_owned()))
            })
            .collect()
    }

    /// The manifest's `headers` as attributes, those at their default left out.
    pub fn from_manifest(h: &manifest::Headers) -> Headers {
        let server = h.server.map(|on| on.to_string());
        let values = [
            (ResponseHeader::Hsts, h.hsts.clone()),
            (
                ResponseHeader::ContentSecurityPolicy,
                h.content_security_policy.clone(),
            ),
            (ResponseHeader::XFrameOptions, h.x_frame_options.clone()),
            (
                ResponseHeader::XContentTypeOptions,
                h.x_content_type_options.clone(),
            ),
            (ResponseHeader::Server, server),
        ];
        values
            .into_iter()
            .filter_map(|(k, v)| v.filter(|v| v != k.unset()).map(|v| (k, v)))
            .collect()
    }
}

/// What a listener does with a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListenerTo {
    /// Forwards to the target group with this manifest key.
    Forward(String),
    /// Answers with a redirect; no target group serves the port.
    Redirect(Redirect),
}

impl ListenerTo {
    /// The key of the target group it forwards to.
    pub fn forward(&self) -> Option<&str> {
        match self {
            ListenerTo::Forward(k) => Some(k),
            ListenerTo::Redirect(_) => None,
        }
    }
}

/// A redirect as AWS's `RedirectConfig` holds it (`#{host}` and the like keep the request's
/// own parts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redirect {
    pub protocol: Protocol,
    pub port: String,
    pub host: String,
    pub path: String,
    pub query: String,
    pub status: RedirectStatus,
}

impl Redirect {
    /// To https on 443, the same host, path and query, permanently.
    pub fn https() -> Redirect {
        Redirect {
            protocol: Protocol::Https,
            port: "443".into(),
            host: "#{host}".into(),
            path: "/#{path}".into(),
            query: "#{query}".into(),
            status: RedirectStatus::Permanent,
        }
    }

    /// Does it send visitors to https on 443 (whatever else it keeps)?
    pub fn is_to_https(&self) -> bool {
        self.protocol == Protocol::Https && self.port == "443"
    }
}

impl std::fmt::Display for Redirect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let status = self.status.as_str();
        let code = status.strip_prefix("HTTP_").unwrap_or(status);
        write!(
            f,
            "{code} to {}://{}:{}{}?{}",
            self.protocol.as_str().to_ascii_lowercase(),
            self.host,
            self.port,
            self.path,
            self.query
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DesiredDns {
    /// Zone name in normal form.
    pub zone: String,
    pub records: Vec<DesiredRecord>,
}

/// What a record leads to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordTo {
    /// The stack's load balancer: a CNAME to its DNS name, or an alias A/AAAA record.
    LoadBalancer,
    /// The record's own values in normal form (addresses in canonical form and sorted, or
    /// one host name), served with the record's TTL.
    Values(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredRecord {
    /// Name in normal form.
    pub name: String,
    /// `CNAME`, `A` or `AAAA`; `A`/`AAAA` leading to the load balancer are alias records.
    pub kind: RecordKind,
    pub to: RecordTo,
    /// TTL at rest (none for alias records).
    pub ttl: Option<u32>,
    /// TTL while the value changes.
    pub transition_ttl: u32,
    /// Asked through the load balancer before the record switches to it.
    pub probe: Option<DesiredProbe>,
    /// The switch made in weighted steps, watched, instead of at once.
    pub cutover: Option<DesiredCutover>,
}

/// A staged switch in normal form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredCutover {
    /// Shares of answers for the new value, rising, the last 100.
    pub steps: Vec<u8>,
    /// How long each step below 100 is held, seconds.
    pub bake: u32,
    /// The highest share of 5xx answers among the new path's requests, in hundredths of
    /// a percent (100 = 1 %).
    pub max_5xx_basis_points: u32,
    /// The most unhealthy targets allowed.
    pub max_unhealthy: u32,
}

/// The default bake of a cutover step: five minutes.
pub const CUTOVER_BAKE_SECS: u32 = 300;

/// A request through the load balancer, by the record's name, that must pass before the
/// record switches to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredProbe {
    /// Absolute path, `/` by default.
    pub path: String,
    /// The statuses that pass.
    pub expect: Vec<u16>,
}

impl DesiredRecord {
    /// An alias record (A/AAAA to the load balancer), which has no TTL of its own.
    pub fn is_alias(&self) -> bool {
        self.kind != RecordKind::Cname && self.to == RecordTo::LoadBalancer
    }
}

/// A record's values in normal form: addresses canonical and sorted, host names lowercase
/// without the trailing dot.
pub fn normal_values(kind: &RecordKind, values: &[String]) -> Vec<String> {
    let mut out: Vec<String> = values
        .iter()
        .map(|v| match kind {
            RecordKind::A | RecordKind::Aaaa => v
                .parse::<std::net::IpAddr>()
                .map_or_else(|_| v.clone(), |ip| ip.to_string()),
            _ => net::normalize_dns(v),
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

fn port(p: i64) -> u16 {
    // Validation has checked every port is within 1..65535.
    u16::try_from(p).unwrap_or(0)
}

fn seconds(s: i64) -> i32 {
    i32::try_from(s).unwrap_or(i32::MAX)
}

impl Desired {
    /// The desired model of a validated manifest.
    pub fn from_manifest(m: &Manifest) -> Desired {
        let mut tags = m.tags.clone();
        tags.insert(names::STACK_TAG.to_owned(), m.stack.clone());
        let certificates = m
            .certificates
            .iter()
            .map(|(k, c)| {
                let domain = net::normalize_dns(c.domain.as_deref().unwrap_or(""));
                let spec = match (&c.arn, c.request == Some(true)) {
                    (Some(arn), _) => CertSpec::Arn(arn.clone()),
                    (None, true) => CertSpec::Request(
                        std::iter::once(domain)
                            .chain(c.alternative_names.iter().map(|n| net::normalize_dns(n)))
                            .collect(),
                    ),
                    (None, false) => CertSpec::Domain(domain),
                };
                (k.clone(), spec)
            })
            .collect();
        let security_groups = m
            .security_groups
            .iter()
            .map(|(k, sg)| (k.clone(), desired_sg(m, k, sg)))
            .collect();
        let target_groups = m
            .target_groups
            .iter()
            .map(|(k, tg)| {
                let p = port(tg.port);
                let hc = &tg.health_check;
                let health = HealthCheck {
                    protocol: hc.protocol.unwrap_or(tg.protocol).into(),
                    port: HealthCheck::normal_port(hc.port.map(port), p),
                    path: hc.path.clone(),
                    matcher: hc.matcher.replace(' ', ""),
                    interval_seconds: seconds(hc.interval_seconds),
                    timeout_seconds: seconds(hc.timeout_seconds),
                    healthy_threshold: seconds(hc.healthy_threshold),
                    unhealthy_threshold: seconds(hc.unhealthy_threshold),
                };
                let transition = hc.transition.as_ref().and_then(|t| {
                    let fast = HealthCheck {
                        interval_seconds: t
                            .interval_seconds
                            .map_or(health.interval_seconds, seconds),
                        timeout_seconds: t.timeout_seconds.map_or(health.timeout_seconds, seconds),
                        healthy_threshold: t
                            .healthy_threshold
                            .map_or(health.healthy_threshold, seconds),
                        unhealthy_threshold: t
                            .unhealthy_threshold
                            .map_or(health.unhealthy_threshold, seconds),
                        ..health.clone()
                    };
                    (fast != health).then_some(fast)
                });
                let desired = DesiredTg {
                    key: k.clone(),
                    name: names::target_group(&m.stack, k),
                    port: p,
                    protocol: tg.protocol.into(),
                    health,
                    transition,
                    targets: tg.targets.iter().cloned().collect(),
                    adopt: tg.adopt.clone(),
                };
                (k.clone(), desired)
            })
            .collect();
        let load_balancer = m.load_balancer.as_ref().map(|lb| DesiredLb {
            name: names::load_balancer(&m.stack),
            scheme: lb.scheme.as_str().to_owned(),
            subnets: lb.subnets.iter().cloned().collect(),
            security_groups: lb.security_groups.iter().map(|g| group_ref(m, g)).collect(),
            listeners: lb
                .listeners
                .iter()
                .map(|l| {
                    let p = port(l.port);
                    // Validation has checked that exactly one of the two is given.
                    let to = match (&l.forward, l.redirect) {
                        (_, Some(manifest::RedirectTo::Https)) => {
                            ListenerTo::Redirect(Redirect::https())
                        }
                        (f, None) => ListenerTo::Forward(f.clone().unwrap_or_default()),
                    };
                    let https = l.protocol == manifest::Protocol::Https;
                    let ssl_policy = https.then(|| SslPolicy {
                        name: l
                            .ssl_policy
                            .clone()
                            .unwrap_or_else(|| DEFAULT_SSL_POLICY.to_owned()),
                        defaulted: l.ssl_policy.is_none(),
                    });
                    let listener = DesiredListener {
                        port: p,
                        protocol: l.protocol.into(),
                        to,
                        certificate: l.certificate.clone(),
                        ssl_policy,
                        headers: l.headers.as_ref().map(ResponseHeader::from_manifest),
                    };
                    (p, listener)
                })
                .collect(),
            adopt: lb.adopt.clone(),
            attributes: LbAttr::from_manifest(lb.attributes.as_ref()),
        });
        let dns = m.dns.as_ref().map(|d| DesiredDns {
            zone: net::normalize_dns(&d.zone),
            records: d
                .records
                .iter()
                .map(|r| {
                    let ttl = r.ttl.map(|t| u32::try_from(t).unwrap_or(u32::MAX));
                    let transition = r
                        .transition_ttl
                        .map(|t| u32::try_from(t).unwrap_or(u32::MAX))
                        .unwrap_or_else(|| ttl.unwrap_or(300).min(300));
                    let kind = RecordKind::from(r.kind);
                    DesiredRecord {
                        name: net::normalize_dns(&r.name),
                        to: match r.to {
                            Some(_) => RecordTo::LoadBalancer,
                            None => RecordTo::Values(normal_values(&kind, &r.values)),
                        },
                        kind,
                        ttl,
                        transition_ttl: transition,
                        cutover: r.cutover.as_ref().map(|c| DesiredCutover {
                            steps: c
                                .steps
                                .iter()
                                .filter_map(|s| u8::try_from(*s).ok())
                                .collect(),
                            bake: c
                                .bake
                                .as_deref()
                                .and_then(|b| humantime::parse_duration(b).ok())
                                .map_or(CUTOVER_BAKE_SECS, |d| {
                                    u32::try_from(d.as_secs()).unwrap_or(u32::MAX)
                                }),
                            // Validation keeps it within 0..=100.
                            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                            max_5xx_basis_points: (c.max_5xx_percent.unwrap_or(1.0) * 100.0)
                                .round()
                                .clamp(0.0, 10_000.0)
                                as u32,
                            max_unhealthy: c
                                .max_unhealthy
                                .map_or(0, |n| u32::try_from(n).unwrap_or(0)),
                        }),
                        probe: r.probe.as_ref().map(|p| DesiredProbe {
                            path: p.path.clone().unwrap_or_else(|| "/".to_owned()),
                            expect: p.expect.as_ref().map_or_else(
                                || vec![200],
                                |e| e.iter().filter_map(|c| u16::try_from(*c).ok()).collect(),
                            ),
                        }),
                    }
                })
                .collect(),
        });
        Desired {
            stack: m.stack.clone(),
            region: m.region.clone(),
            vpc: m.vpc.clone(),
            tags,
            certificates,
            security_groups,
            target_groups,
            load_balancer,
            dns,
        }
    }
}

fn group_ref(m: &Manifest, g: &str) -> GroupRef {
    match m.security_groups.get(g) {
        Some(sg) => match &sg.existing {
            Some(id) => GroupRef::Id(id.clone()),
            None => GroupRef::Key(g.to_owned()),
        },
        None => GroupRef::Id(g.to_owned()),
    }
}

fn desired_sg(m: &Manifest, key: &str, sg: &manifest::SecurityGroup) -> DesiredSg {
    let mut rules = BTreeMap::new();
    for rule in &sg.ingress {
        let sources: Vec<Source> = match &rule.from {
            Some(from) => vec![match group_ref(m, from) {
                GroupRef::Key(k) => Source::Key(k),
                GroupRef::Id(id) => Source::Group(id),
            }],
            None => rule
                .cidrs
                .iter()
                .map(|c| {
                    Source::Cidr(net::parse_cidr(c).map_or_else(|_| c.clone(), |c| c.to_string()))
                })
                .collect(),
        };
        for p in &rule.ports {
            for s in &sources {
                rules.insert(RuleKey::tcp(port(*p), s.clone()), rule.description.clone());
            }
        }
    }
    DesiredSg {
        key: key.to_owned(),
        name: sg
            .existing
            .clone()
            .unwrap_or_else(|| names::security_group(&m.stack, key)),
        existing: sg.existing.clone(),
        adopt: sg.adopt.clone(),
        exclusive: sg.exclusive || sg.existing.is_none(),
        description: sg
            .description
            .clone()
            .unwrap_or_else(|| format!("reconcile stack {}: {key}", m.stack)),
        rules,
    }
}

// ---------------------------------------------------------------------------------------
// Observed

/// What AWS has, as far as a manifest speaks about it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Observed {
    /// Load balancers named after the stack (base name or replacement name).
    pub load_balancers: Vec<ObservedLb>,
    /// Target groups named `<stack>-...`, with their tags (ownership is decided by tag).
    pub target_groups: Vec<ObservedTg>,
    /// Security groups the stack speaks about: those the manifest names by id, those of
    /// its VPC named `<stack>-...` or tagged with the stack, and those attached to its
    /// load balancers.
    pub security_groups: Vec<ObservedSg>,
    /// ISSUED certificates, and every certificate pinned by ARN.
    pub certificates: Vec<ObservedCert>,
    /// The hosted zone named under `dns`, with the records the manifest speaks about.
    pub zone: Option<ObservedZone>,
    /// The instances the manifest's target groups list (those that exist): their own
    /// security groups decide what reaches them, whatever rules the manifest declares.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<ObservedInstance>,
    /// The load balancer's subnets named in the manifest (those that exist).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subnets: Vec<ObservedSubnet>,
    /// Load balancers not named after the stack that a managed record leads to now, with
    /// their tags (no listeners): a record another stack serves is not this one's to move.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub foreign_load_balancers: Vec<ObservedLb>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObservedLb {
    pub arn: String,
    pub name: String,
    pub dns_name: String,
    /// Route53 zone id of the load balancer's DNS name (for alias records).
    pub hosted_zone_id: String,
    pub scheme: String,
    pub state: LbState,
    pub vpc: String,
    pub subnets: BTreeSet<String>,
    pub security_groups: BTreeSet<String>,
    pub tags: Tags,
    pub listeners: Vec<ObservedListener>,
    /// Its managed attributes, when read (every attribute there: AWS's default for one not
    /// described).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<LbAttributes>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedListener {
    pub arn: String,
    pub port: u16,
    pub protocol: Protocol,
    /// Default certificate ARN(s).
    pub certificates: Vec<String>,
    /// Target groups the default action sends traffic to (weight above zero).
    pub forward: Vec<String>,
    /// Target groups attached to the default action with weight zero: health-checked by
    /// the load balancer, sent no traffic (how a replacement group is verified first).
    #[serde(default)]
    pub standby: Vec<String>,
    /// The default action's redirect, when it redirects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect: Option<Redirect>,
    /// The TLS policy as described (AWS describes one on HTTP listeners too: meaningless
    /// there, and ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_policy: Option<String>,
    /// Its response headers, when read (for the listeners the manifest sets `headers` on
    /// and those the load balancer's [`names::HEADERS_TAG`] lists: one request each).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<Headers>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObservedTg {
    pub arn: String,
    pub name: String,
    pub port: u16,
    pub protocol: Protocol,
    pub vpc: String,
    pub health: HealthCheck,
    pub tags: Tags,
    pub load_balancers: Vec<String>,
    pub targets: Vec<TargetHealth>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetHealth {
    pub id: String,
    pub state: TargetState,
    /// AWS's reason code, e.g. `Target.ResponseCodeMismatch`.
    pub reason: Option<TargetReason>,
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObservedSg {
    pub id: String,
    pub name: String,
    pub vpc: String,
    pub description: String,
    pub tags: Tags,
    pub rules: Vec<ObservedRule>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedRule {
    /// `sgr-...` when AWS reports it.
    pub id: Option<String>,
    pub key: RuleKey,
    pub description: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedCert {
    pub arn: String,
    pub domain: String,
    /// Every name the certificate covers (including `domain`).
    pub names: Vec<String>,
    pub status: CertStatus,
    /// Expiry, seconds since the epoch.
    pub not_after: Option<i64>,
    /// It expires within [`EXPIRY_WARNING_DAYS`] of when it was read.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub expiring: bool,
    /// ACM's managed renewal status (`SUCCESS`, `PENDING_AUTO_RENEWAL`,
    /// `PENDING_VALIDATION`, `FAILED`), when described and ACM renews it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewal: Option<String>,
    /// The DNS validation records ACM asks for (described, DNS-validated certificates).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub validation: Vec<ValidationRecord>,
    /// ACM's, or an IAM server certificate (never renewed by AWS; `status` is `ISSUED`
    /// until it expires, then `EXPIRED`).
    #[serde(default, skip_serializing_if = "is_acm")]
    pub store: net::CertStore,
    /// When ACM was asked for it (seconds since the epoch), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<i64>,
    /// It has awaited validation longer than [`PENDING_WARNING_SECS`] when it was read.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub overdue: bool,
    /// Whether a load balancer (or another AWS service) uses it, as ACM tells; `None` when
    /// not told (an IAM certificate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_use: Option<bool>,
    /// Its tags, read for an ACM certificate that a stack may have requested (one no load
    /// balancer uses, or one a listener of the stack's uses); empty otherwise. A stack's
    /// own carries [`names::STACK_TAG`] and [`names::CERTIFICATE_TAG`] (the manifest's key).
    #[serde(default, skip_serializing_if = "Tags::is_empty")]
    pub tags: Tags,
}

fn is_acm(s: &net::CertStore) -> bool {
    *s == net::CertStore::Acm
}

/// A CNAME record by which ACM validates (and renews) a certificate.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ValidationRecord {
    /// In normal form (lowercase, no trailing dot).
    pub name: String,
    pub value: String,
}

impl ValidationRecord {
    /// Is `r` this validation record: a CNAME of its name to its value alone?
    pub fn is(&self, r: &ObservedRecord) -> bool {
        r.name == self.name && r.kind == RecordKind::Cname && r.values == [self.value.clone()]
    }
}

/// A certificate in use that expires within this many days is warned about.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// Whether a certificate expiring at `not_after` (seconds since the epoch) expires within
/// [`EXPIRY_WARNING_DAYS`] from now.
pub fn expires_soon(not_after: Option<i64>) -> bool {
    not_after.is_some_and(|t| t - epoch_now() < EXPIRY_WARNING_DAYS * 86_400)
}

/// A certificate awaiting DNS validation for longer than this (seconds) is warned about:
/// with its records in the zone ACM issues within minutes, and it gives up after 72 hours.
pub const PENDING_WARNING_SECS: i64 = 3600;

/// An enum of AWS's, by the names AWS gives its values; a value AWS adds later is kept as
/// it reads (`Other`), never mistaken for a known one. In JSON, AWS's own names.
macro_rules! aws_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $text:literal,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(from = "String", into = "String")]
        pub enum $name {
            #[default]
            $($variant,)*
            Other(String),
        }

        impl $name {
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $text,)*
                    $name::Other(s) => s,
                }
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> $name {
                match s {
                    $($text => $name::$variant,)*
                    other => $name::Other(other.to_owned()),
                }
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> $name {
                $name::from(s.as_str())
            }
        }

        impl From<$name> for String {
            fn from(s: $name) -> String {
                s.as_str().to_owned()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        // Ordered by AWS's text, so that sets and maps keyed by one keep the order
        // they had as strings (and that text and value never disagree on it).
        impl Ord for $name {
            fn cmp(&self, other: &Self) -> std::cmp::Ordering {
                self.as_str().cmp(other.as_str())
            }
        }

        impl PartialOrd for $name {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }
    };
}

aws_enum! {
    /// A certificate's status, as ACM names it (an IAM server certificate is `ISSUED` or,
    /// past its expiry, `EXPIRED`).
    CertStatus {
        Issued = "ISSUED",
        PendingValidation = "PENDING_VALIDATION",
        Expired = "EXPIRED",
        Failed = "FAILED",
        ValidationTimedOut = "VALIDATION_TIMED_OUT",
        Revoked = "REVOKED",
        Inactive = "INACTIVE",
    }
}

impl CertStatus {
    /// ACM gave up on it: it never issues (a new request is needed).
    pub fn failed(&self) -> bool {
        matches!(self, CertStatus::Failed | CertStatus::ValidationTimedOut)
    }
}

aws_enum! {
    /// A listener's, a target group's, a health check's or a redirect's protocol, as
    /// Elastic Load Balancing names it (a redirect may also keep the request's own,
    /// `#{protocol}`, which is `Other`).
    Protocol {
        Http = "HTTP",
        Https = "HTTPS",
        Tls = "TLS",
    }
}

aws_enum! {
    /// A redirect's status code, as Elastic Load Balancing names it.
    RedirectStatus {
        Permanent = "HTTP_301",
        Found = "HTTP_302",
    }
}

aws_enum! {
    /// A record set's type, as Route53 names it.
    RecordKind {
        A = "A",
        Aaaa = "AAAA",
        Cname = "CNAME",
        Txt = "TXT",
    }
}

impl From<crate::manifest::Protocol> for Protocol {
    fn from(p: crate::manifest::Protocol) -> Protocol {
        match p {
            crate::manifest::Protocol::Http => Protocol::Http,
            crate::manifest::Protocol::Https => Protocol::Https,
        }
    }
}

impl From<crate::manifest::RecordType> for RecordKind {
    fn from(t: crate::manifest::RecordType) -> RecordKind {
        match t {
            crate::manifest::RecordType::A => RecordKind::A,
            crate::manifest::RecordType::Aaaa => RecordKind::Aaaa,
            crate::manifest::RecordType::Cname => RecordKind::Cname,
        }
    }
}

impl RecordKind {
    /// An address record or a CNAME: the kinds that lead a visitor to a site.
    pub fn leads_to_site(&self) -> bool {
        matches!(self, RecordKind::A | RecordKind::Aaaa | RecordKind::Cname)
    }
}

aws_enum! {
    /// An ingress rule's IP protocol, as EC2 names it (`-1`: all traffic).
    IpProtocol {
        Tcp = "tcp",
        All = "-1",
    }
}

aws_enum! {
    /// A registered target's health, as Elastic Load Balancing names it.
    TargetState {
        Initial = "initial",
        Healthy = "healthy",
        Unhealthy = "unhealthy",
        Unused = "unused",
        Draining = "draining",
        Unavailable = "unavailable",
    }
}

aws_enum! {
    /// Why a target is not healthy, as Elastic Load Balancing names it.
    TargetReason {
        RegistrationInProgress = "Elb.RegistrationInProgress",
        InitialHealthChecking = "Elb.InitialHealthChecking",
        InternalError = "Elb.InternalError",
        ResponseCodeMismatch = "Target.ResponseCodeMismatch",
        Timeout = "Target.Timeout",
        FailedHealthChecks = "Target.FailedHealthChecks",
        NotRegistered = "Target.NotRegistered",
        NotInUse = "Target.NotInUse",
        DeregistrationInProgress = "Target.DeregistrationInProgress",
        InvalidState = "Target.InvalidState",
        IpUnusable = "Target.IpUnusable",
        HealthCheckDisabled = "Target.HealthCheckDisabled",
    }
}

aws_enum! {
    /// A load balancer's state, as Elastic Load Balancing names it.
    LbState {
        Active = "active",
        Provisioning = "provisioning",
        ActiveImpaired = "active_impaired",
        Failed = "failed",
    }
}

aws_enum! {
    /// An EC2 instance's state, as EC2 names it.
    InstanceState {
        Running = "running",
        Pending = "pending",
        Stopping = "stopping",
        Stopped = "stopped",
        ShuttingDown = "shutting-down",
        Terminated = "terminated",
    }
}

/// Whether a certificate of `status` requested at `created_at` has awaited validation
/// longer than [`PENDING_WARNING_SECS`].
pub fn pending_too_long(status: &CertStatus, created_at: Option<i64>) -> bool {
    *status == CertStatus::PendingValidation
        && created_at.is_some_and(|t| epoch_now() - t > PENDING_WARNING_SECS)
}

fn epoch_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedZone {
    pub id: String,
    pub name: String,
    pub records: Vec<ObservedRecord>,
    /// Other address records of the zone that share a value with one the manifest names
    /// (say `api` on the same address as `www`): not the stack's, read only to warn that
    /// closing the backend's public rules cuts them off too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub neighbours: Vec<ObservedRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedRecord {
    /// Name in normal form.
    pub name: String,
    /// `A`, `AAAA`, `CNAME`, `TXT`, ...
    pub kind: RecordKind,
    /// None for alias records.
    pub ttl: Option<u32>,
    /// Values in normal form (DNS names lowercased without trailing dot).
    pub values: Vec<String>,
    pub alias: Option<AliasTarget>,
    /// Its place in a group of weighted records of the same name and type (Route53's
    /// `SetIdentifier` and `Weight`); none for a simple record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weighted: Option<Weighted>,
}

/// A record set's identity and share in a routing group (a weighted one for a cutover).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Weighted {
    /// `SetIdentifier`, unique among the sets of one name and type.
    pub id: String,
    /// `Weight`, 0..=255; none for another routing policy (latency, failover...), which
    /// reconcile does not manage.
    pub weight: Option<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AliasTarget {
    /// DNS name in normal form (no `dualstack.` prefix, lowercase, no trailing dot).
    pub dns_name: String,
    pub zone_id: String,
}

impl ObservedRecord {
    /// Does this record lead to the load balancer whose DNS name (in normal form) is
    /// `dns`: an alias to it, or a CNAME to its name?
    pub fn leads_to(&self, dns: &str) -> bool {
        self.alias.as_ref().is_some_and(|a| a.dns_name == dns)
            || (self.kind == RecordKind::Cname && self.values.iter().any(|v| v == dns))
    }
}

impl ObservedSg {
    /// Is it its VPC's default group? AWS names that one `default`, allows no other group
    /// that name, and never deletes it; its name is the only mark the API gives of it.
    pub fn is_vpc_default(&self) -> bool {
        self.name == "default"
    }
}

impl Observed {
    pub fn sg_by_id(&self, id: &str) -> Option<&ObservedSg> {
        self.security_groups.iter().find(|g| g.id == id)
    }

    pub fn tg_by_arn(&self, arn: &str) -> Option<&ObservedTg> {
        self.target_groups.iter().find(|t| t.arn == arn)
    }
}

/// Is a resource with these tags owned by `stack`?
pub fn owned_by(tags: &Tags, stack: &str) -> bool {
    tags.get(names::STACK_TAG).map(String::as_str) == Some(stack)
}

/// An EC2 instance: its state and the security groups that guard it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedInstance {
    pub id: String,
    pub state: InstanceState,
    pub vpc: String,
    pub subnet: String,
    pub groups: Vec<String>,
    pub public_ip: Option<String>,
    /// In normal form.
    pub public_dns: Option<String>,
}

impl ObservedInstance {
    /// Is `value` (a record's value in normal form) this instance's public address or
    /// public DNS name?
    pub fn holds(&self, value: &str) -> bool {
        self.public_ip.as_deref() == Some(value) || self.public_dns.as_deref() == Some(value)
    }
}

/// A subnet, its availability zone and its VPC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedSubnet {
    pub id: String,
    pub zone: String,
    #[serde(default)]
    pub vpc: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_from_a_key_resolves_to_the_group_id_and_nothing_else_changes() {
        let by_key = RuleKey {
            protocol: IpProtocol::Tcp,
            from_port: 80,
            to_port: 81,
            source: Source::Key("lb".into()),
        };
        let found: Result<_, ()> = by_key.resolve(|k| Ok((k == "lb").then(|| "sg-1".into())));
        assert_eq!(
            found,
            Ok(RuleKey {
                source: Source::Group("sg-1".into()),
                ..by_key.clone()
            })
        );
        assert_eq!(by_key.resolve(|_| Ok::<_, ()>(None)), Ok(by_key.clone()));
        assert_eq!(by_key.resolve(|_| Err("not created")), Err("not created"));
        let by_cidr = RuleKey::tcp(443, Source::Cidr("0.0.0.0/0".into()));
        let untouched: Result<_, ()> = by_cidr.resolve(|_| Err(()));
        assert_eq!(untouched, Ok(by_cidr));
    }

    #[test]
    fn aws_enums_order_by_aws_text_and_keep_what_they_do_not_know() {
        let mut kinds: Vec<RecordKind> = ["TXT", "CNAME", "AAAA", "MX", "A"]
            .into_iter()
            .map(RecordKind::from)
            .collect();
        kinds.sort();
        let text: Vec<&str> = kinds.iter().map(RecordKind::as_str).collect();
        assert_eq!(text, ["A", "AAAA", "CNAME", "MX", "TXT"]);
        assert_eq!(RecordKind::from("MX"), RecordKind::Other("MX".into()));
        assert_eq!(Protocol::from("HTTPS"), Protocol::Https);
        assert_eq!(
            serde_json::to_string(&Protocol::from("GENEVE"))
                .ok()
                .as_deref(),
            Some("\"GENEVE\"")
        );
    }

    #[test]
    fn expiry_is_soon_within_thirty_days_only() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        assert!(expires_soon(Some(now - 1)), "expired");
        assert!(expires_soon(Some(now + 29 * 86_400)));
        assert!(!expires_soon(Some(now + 31 * 86_400)));
        assert!(!expires_soon(Some(i64::MAX)));
        assert!(!expires_soon(None));
    }

    #[test]
    fn lb_attributes_unset_are_aws_defaults_and_the_manifest_drops_invalid_headers() {
        let aws = LbAttr::from_aws([]);
        let mine = LbAttr::from_manifest(None);
        let differ: Vec<LbAttr> = LbAttr::ALL
            .into_iter()
            .filter(|a| aws.get(a) != mine.get(a))
            .collect();
        assert_eq!(differ, vec![LbAttr::DropInvalidHeaderFields]);
    }

    #[test]
    fn headers_at_their_default_are_left_out() {
        let h = ResponseHeader::from_attributes([
            ("routing.http.response.server.enabled", "true"),
            (
                "routing.http.response.strict_transport_security.header_value",
                "",
            ),
            ("routing.http.response.x_frame_options.header_value", "DENY"),
        ]);
        assert_eq!(
            h,
            Headers::from([(ResponseHeader::XFrameOptions, "DENY".to_owned())])
        );
        let m = manifest::Headers {
            server: Some(true),
            hsts: Some("max-age=1".into()),
            ..Default::default()
        };
        assert_eq!(
            ResponseHeader::from_manifest(&m),
            Headers::from([(ResponseHeader::Hsts, "max-age=1".to_owned())])
        );
    }
}
