//! Small checks and normal forms for the values a manifest holds: AWS ids, CIDRs, DNS
//! names, health-check matchers. Also used by the diff, so that spelling never shows as
//! a change.

use std::net::IpAddr;

/// `prefix-` followed by 8 or 17 lowercase hex digits (`vpc-0123abcd`, `i-0123456789abcdef0`).
pub fn is_aws_id(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|hex| {
            (hex.len() == 8 || hex.len() == 17)
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

/// Looks like an AWS region: `us-east-1`, `eu-west-2`, `us-gov-west-1`.
pub fn is_region(r: &str) -> bool {
    let parts: Vec<&str> = r.split('-').collect();
    parts.len() >= 3
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].parse::<u8>().is_ok()
}

/// `arn:<partition>:<service>:<region>:<12-digit account>:<resource>` → (region,
/// resource), for ARNs of `service`.
fn arn_of<'a>(arn: &'a str, service: &str) -> Option<(&'a str, &'a str)> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    (parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == service
        && parts[4].len() == 12
        && parts[4].bytes().all(|b| b.is_ascii_digit()))
    .then(|| (parts[3], parts[5]))
}

/// `arn:<partition>:acm:<region>:<12-digit account>:certificate/<id>`.
pub fn is_acm_arn(arn: &str) -> bool {
    arn_of(arn, "acm").is_some_and(|(region, resource)| {
        is_region(region)
            && resource
                .strip_prefix("certificate/")
                .is_some_and(|id| !id.is_empty())
    })
}

/// Where a certificate a listener may use is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CertStore {
    /// AWS Certificate Manager, in the load balancer's region.
    #[default]
    Acm,
    /// IAM's server certificates (global: one list per account).
    Iam,
}

/// A certificate ARN a listener takes: ACM's, or an IAM server certificate's
/// (`arn:<partition>:iam::<12-digit account>:server-certificate/[<path>/]<name>`).
pub fn cert_store(arn: &str) -> Option<CertStore> {
    if is_acm_arn(arn) {
        Some(CertStore::Acm)
    } else if iam_server_cert_name(arn).is_some() {
        Some(CertStore::Iam)
    } else {
        None
    }
}

/// The name of the IAM server certificate `arn` points at (what `GetServerCertificate`
/// takes; names are unique in an account whatever their path). `None` when `arn` is not
/// an IAM server-certificate ARN.
pub fn iam_server_cert_name(arn: &str) -> Option<&str> {
    let (region, resource) = arn_of(arn, "iam")?;
    if !region.is_empty() {
        return None;
    }
    let rest = resource.strip_prefix("server-certificate/")?;
    let name = rest.rsplit('/').next()?;
    // IAM's names: 1 to 128 of letters, digits and +=,.@_-.
    let valid = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b));
    valid.then_some(name)
}

/// What an Elastic Load Balancing ARN names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElbResource {
    /// `loadbalancer/app/<name>/<id>`: an Application Load Balancer.
    ApplicationLoadBalancer,
    /// `targetgroup/<name>/<id>`.
    TargetGroup,
}

/// The region of an Elastic Load Balancing ARN of the given kind
/// (`arn:<partition>:elasticloadbalancing:<region>:<12-digit account>:loadbalancer/app/<name>/<id>`),
/// or `None` when it is not one.
pub fn elb_arn_region(arn: &str, kind: ElbResource) -> Option<&str> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [scheme, partition, service, region, account, resource] = parts.as_slice() else {
        return None;
    };
    let prefix = match kind {
        ElbResource::ApplicationLoadBalancer => "loadbalancer/app/",
        ElbResource::TargetGroup => "targetgroup/",
    };
    let named = resource.strip_prefix(prefix).is_some_and(|rest| {
        let mut it = rest.split('/');
        matches!((it.next(), it.next(), it.next()), (Some(n), Some(id), None) if !n.is_empty() && !id.is_empty())
    });
    (*scheme == "arn"
        && partition.starts_with("aws")
        && *service == "elasticloadbalancing"
        && is_region(region)
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && named)
        .then_some(*region)
}

/// A network in normal form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    pub fn is_whole_internet(&self) -> bool {
        self.prefix == 0
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Parses `a.b.c.d/n` or `x::/n`; the address must be the network's own (no host bits).
pub fn parse_cidr(s: &str) -> Result<Cidr, String> {
    let (addr, prefix) = s
        .split_once('/')
        .ok_or_else(|| "missing the /prefix length".to_owned())?;
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| format!("\"{addr}\" is not an IP address"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix: u8 = prefix
        .parse()
        .ok()
        .filter(|p| *p <= max)
        .ok_or_else(|| format!("the prefix length must be 0..{max}"))?;
    let host_bits = match addr {
        IpAddr::V4(a) => {
            let bits = u32::from(a);
            let mask = u32::MAX.checked_shr(u32::from(prefix)).unwrap_or(0);
            bits & mask
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            let mask = u128::MAX.checked_shr(u32::from(prefix)).unwrap_or(0);
            u32::from(bits & mask != 0)
        }
    };
    if host_bits != 0 {
        return Err("host bits are set after the prefix".to_owned());
    }
    Ok(Cidr { addr, prefix })
}

/// Lowercase, without a trailing dot: the form names are compared in.
pub fn normalize_dns(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// A host name of letters, digits, hyphens and underscores, labels 1..63, at most 253
/// characters; `*.` may start it when `wildcard` is allowed.
pub fn is_dns_name(name: &str, wildcard: bool) -> bool {
    let name = name.trim_end_matches('.');
    let body = match name.strip_prefix("*.") {
        Some(rest) if wildcard => rest,
        _ => name,
    };
    !body.is_empty()
        && name.len() <= 253
        && body.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Does a certificate name (`www.example.com` or `*.example.com`) cover host `name`?
pub fn covers(cert_name: &str, name: &str) -> bool {
    let cert = normalize_dns(cert_name);
    let name = normalize_dns(name);
    match cert.strip_prefix("*.") {
        Some(parent) => name
            .split_once('.')
            .is_some_and(|(first, rest)| !first.is_empty() && rest == parent),
        None => cert == name,
    }
}

/// A health-check matcher: codes and ranges, comma separated, each within 200..499.
pub fn check_matcher(m: &str) -> Result<(), String> {
    let code = |s: &str| -> Result<u16, String> {
        let c: u16 = s
            .trim()
            .parse()
            .map_err(|_| format!("\"{s}\" is not a number"))?;
        if (200..=499).contains(&c) {
            Ok(c)
        } else {
            Err(format!("{c} is outside 200..499"))
        }
    };
    if m.trim().is_empty() {
        return Err("it is empty".to_owned());
    }
    for part in m.split(',') {
        match part.split_once('-') {
            Some((lo, hi)) => {
                if code(lo)? > code(hi)? {
                    return Err(format!("the range {part} runs backwards"));
                }
            }
            None => {
                code(part)?;
            }
        }
    }
    Ok(())
}

/// The TLS security policies Application Load Balancers offer (`aws elbv2
/// describe-ssl-policies`, December 2026): a name outside it would be refused by AWS in
/// the middle of an apply.
pub const SSL_POLICIES: &[&str] = &[
    "ELBSecurityPolicy-TLS13-1-2-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Ext1-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Ext2-2021-06",
    "ELBSecurityPolicy-TLS13-1-1-2021-06",
    "ELBSecurityPolicy-TLS13-1-0-2021-06",
    "ELBSecurityPolicy-TLS13-1-3-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-2-Ext1-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-2-Ext2-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-0-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-3-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-3-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-2-Res-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-2-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-2-Ext0-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-2-Ext1-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-2-Ext2-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-1-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-0-FIPS-2023-04",
    "ELBSecurityPolicy-FS-1-2-Res-2020-10",
    "ELBSecurityPolicy-FS-1-2-Res-2019-08",
    "ELBSecurityPolicy-FS-1-2-2019-08",
    "ELBSecurityPolicy-FS-1-1-2019-08",
    "ELBSecurityPolicy-FS-2018-06",
    "ELBSecurityPolicy-TLS-1-2-Ext-2018-06",
    "ELBSecurityPolicy-TLS-1-2-2017-01",
    "ELBSecurityPolicy-TLS-1-1-2017-01",
    "ELBSecurityPolicy-2016-08",
    "ELBSecurityPolicy-TLS-1-0-2015-04",
    "ELBSecurityPolicy-2015-05",
];

/// An S3 bucket name: 3..63 of lowercase letters, digits, `.` and `-`, starting and ending
/// with a letter or digit, no `..`, not shaped like an IP address.
pub fn is_s3_bucket(b: &str) -> bool {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-';
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    (3..=63).contains(&b.len())
        && b.chars().all(ok_char)
        && edge(b.chars().next())
        && edge(b.chars().last())
        && !b.contains("..")
        && b.parse::<std::net::Ipv4Addr>().is_err()
}

/// The longest response-header value the listener attributes take.
pub const MAX_HEADER_VALUE: usize = 1000;

/// A `Strict-Transport-Security` value (RFC 6797): `max-age=<seconds>` once, optionally
/// `includeSubDomains` and `preload`, separated by `;`.
pub fn check_hsts(v: &str) -> Result<(), String> {
    let mut max_age = None;
    for d in v.split(';').map(str::trim).filter(|d| !d.is_empty()) {
        let (name, value) = match d.split_once('=') {
            Some((n, val)) => (n.trim(), Some(val.trim().trim_matches('"'))),
            None => (d, None),
        };
        match (name.to_ascii_lowercase().as_str(), value) {
            ("max-age", Some(secs)) => {
                if max_age.is_some() {
                    return Err("`max-age` is given twice".to_owned());
                }
                let secs: u64 = secs
                    .parse()
                    .map_err(|_| format!("max-age \"{secs}\" is not a number of seconds"))?;
                max_age = Some(secs);
            }
            ("includesubdomains" | "preload", None) => {}
            _ => return Err(format!("\"{d}\" is not a Strict-Transport-Security directive (max-age, includeSubDomains, preload)")),
        }
    }
    match max_age {
        Some(_) => Ok(()),
        None => Err("Strict-Transport-Security needs `max-age=<seconds>`".to_owned()),
    }
}

/// `DENY`, `SAMEORIGIN` or `ALLOW-FROM <http(s) origin>`.
pub fn is_x_frame_options(v: &str) -> bool {
    match v.split_once(' ') {
        None => v == "DENY" || v == "SAMEORIGIN",
        Some(("ALLOW-FROM", uri)) => {
            let host = uri
                .strip_prefix("https://")
                .or_else(|| uri.strip_prefix("http://"));
            host.is_some_and(|h| {
                let h = h.trim_end_matches('/');
                let h = h.split_once(':').map_or(h, |(h, _)| h);
                is_dns_name(h, false)
            })
        }
        Some(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_arns_name_their_store() {
        let acm =
            "arn:aws:acm:us-east-1:123456789012:certificate/0b1c2d3e-aaaa-bbbb-cccc-0123456789ab";
        assert_eq!(cert_store(acm), Some(CertStore::Acm));
        let iam = "arn:aws:iam::123456789012:server-certificate/www-example";
        assert_eq!(cert_store(iam), Some(CertStore::Iam));
        assert_eq!(iam_server_cert_name(iam), Some("www-example"));
        let pathed =
            "arn:aws:iam::123456789012:server-certificate/cloudfront/site/www.example.com_2026";
        assert_eq!(iam_server_cert_name(pathed), Some("www.example.com_2026"));
        for not in [
            "arn:aws:iam::123456789012:role/www-example",
            "arn:aws:iam:us-east-1:123456789012:server-certificate/www",
            "arn:aws:iam::1234:server-certificate/www",
            "arn:aws:iam::123456789012:server-certificate/",
            "arn:aws:iam::123456789012:server-certificate/a/",
            "arn:aws:iam::123456789012:server-certificate/w w",
            "arn:aws:acm:us-east-1:123456789012:certificate/",
            "www-example",
        ] {
            assert_eq!(cert_store(not), None, "{not}");
        }
    }

    #[test]
    fn s3_bucket_names() {
        assert!(is_s3_bucket("example-logs"));
        assert!(is_s3_bucket("logs.example.com"));
        assert!(!is_s3_bucket("Example"));
        assert!(!is_s3_bucket("ab"));
        assert!(!is_s3_bucket("-logs"));
        assert!(!is_s3_bucket("a..b"));
        assert!(!is_s3_bucket("192.168.1.1"));
        assert!(!is_s3_bucket("arn:aws:s3:::logs"));
    }

    #[test]
    fn hsts_values() {
        assert!(check_hsts("max-age=31536000; includeSubDomains; preload").is_ok());
        assert!(check_hsts("max-age=0").is_ok());
        assert!(check_hsts("includeSubDomains").is_err());
        assert!(check_hsts("max-age=a year").is_err());
        assert!(check_hsts("max-age=1; max-age=2").is_err());
        assert!(check_hsts("max-age=1; nosniff").is_err());
    }

    #[test]
    fn x_frame_options_values() {
        assert!(is_x_frame_options("DENY"));
        assert!(is_x_frame_options("SAMEORIGIN"));
        assert!(is_x_frame_options("ALLOW-FROM https://example.com/"));
        assert!(!is_x_frame_options("deny"));
        assert!(!is_x_frame_options("ALLOW-FROM example.com"));
        assert!(!is_x_frame_options("ALLOW-ALL"));
    }

    #[test]
    fn ids() {
        assert!(is_aws_id("vpc-0123456789abcdef0", "vpc"));
        assert!(is_aws_id("sg-0123abcd", "sg"));
        assert!(!is_aws_id("sg-0123ABCD", "sg"));
        assert!(!is_aws_id("sg-123", "sg"));
        assert!(!is_aws_id("subnet-0123abcd", "sg"));
    }

    #[test]
    fn elb_arns() {
        let lb = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/site/50dc6c495c0c9188";
        let tg = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/site-http/73e2d6bc24d8a067";
        assert_eq!(
            elb_arn_region(lb, ElbResource::ApplicationLoadBalancer),
            Some("eu-west-1")
        );
        assert_eq!(
            elb_arn_region(tg, ElbResource::TargetGroup),
            Some("eu-west-1")
        );
        assert_eq!(elb_arn_region(lb, ElbResource::TargetGroup), None);
        assert_eq!(
            elb_arn_region(tg, ElbResource::ApplicationLoadBalancer),
            None
        );
        let nlb = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/net/site/50dc6c495c0c9188";
        assert_eq!(
            elb_arn_region(nlb, ElbResource::ApplicationLoadBalancer),
            None
        );
        assert_eq!(
            elb_arn_region(
                "arn:aws:elasticloadbalancing:eu-west-1:1234:targetgroup/a/b",
                ElbResource::TargetGroup
            ),
            None
        );
        assert_eq!(elb_arn_region("site", ElbResource::TargetGroup), None);
    }

    #[test]
    fn cidrs() {
        assert!(parse_cidr("0.0.0.0/0").is_ok_and(|c| c.is_whole_internet()));
        assert!(parse_cidr("::/0").is_ok_and(|c| c.is_whole_internet()));
        assert!(parse_cidr("198.51.100.0/24").is_ok());
        assert!(parse_cidr("198.51.100.1/24").is_err());
        assert!(parse_cidr("10.0.0.0/33").is_err());
        assert!(parse_cidr("10.0.0/8").is_err());
        assert!(parse_cidr("2001:db8::/32").is_ok());
        assert!(parse_cidr("2001:db8::1/32").is_err());
        assert!(parse_cidr("10.0.0.1/32").is_ok());
        assert_eq!(
            parse_cidr("2001:0db8:0000::/32").map(|c| c.to_string()),
            Ok("2001:db8::/32".to_owned())
        );
    }

    #[test]
    fn names_and_cover() {
        assert!(is_dns_name("www.example.com.", false));
        assert!(!is_dns_name("*.example.com", false));
        assert!(is_dns_name("*.example.com", true));
        assert!(!is_dns_name("-a.example.com", false));
        assert!(covers("*.example.com", "www.example.com"));
        assert!(!covers("*.example.com", "a.www.example.com"));
        assert!(!covers("*.example.com", "example.com"));
        assert!(covers("WWW.example.com.", "www.example.com"));
    }

    #[test]
    fn matchers() {
        assert!(check_matcher("200").is_ok());
        assert!(check_matcher("200,204").is_ok());
        assert!(check_matcher("200-299").is_ok());
        assert!(check_matcher("ok").is_err());
        assert!(check_matcher("600").is_err());
        assert!(check_matcher("299-200").is_err());
        assert!(check_matcher("").is_err());
    }
}
