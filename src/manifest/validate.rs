//! Semantic checks of a parsed manifest: references resolve, values are possible, names fit
//! AWS's limits, and the manifest does not contradict the job. Runs before any AWS call and
//! reports every problem it finds, each with the JSON path of the offending field.

use std::collections::{BTreeMap, BTreeSet};

use super::diag::Diagnostic;
use super::net::{self, Cidr};
use super::span::Path;
use super::types::{HealthCheck, HealthTransition, Manifest, Protocol, RecordType};
use crate::names;

/// All problems in `m`; empty when the manifest is valid.
pub fn validate(m: &Manifest) -> Vec<Diagnostic> {
    let mut v = Validator { m, out: Vec::new() };
    v.top();
    v.certificates();
    v.security_groups();
    v.target_groups();
    v.load_balancer();
    v.reachability();
    v.serves_the_record();
    v.dns();
    v.adoptions();
    v.out
}

struct Validator<'a> {
    m: &'a Manifest,
    out: Vec<Diagnostic>,
}

fn root() -> Path {
    Path::root()
}

/// `a` or `a, b and c`, each quoted, for hints that list the choices.
/// `"a", "b", "c"` for hints that list the choices; at most ten, so that a hint stays a
/// line however many keys a (hostile) manifest declares.
fn choices<'a>(keys: impl ExactSizeIterator<Item = &'a String>) -> String {
    let n = keys.len();
    let shown: Vec<String> = keys.take(10).map(|k| format!("\"{k}\"")).collect();
    match n {
        0 => "(none declared)".to_owned(),
        n if n > 10 => format!("{}, and {} more", shown.join(", "), n - 10),
        _ => shown.join(", "),
    }
}

/// The longest bake a cutover step may have.
const CUTOVER_BAKE_MAX_SECS: u64 = 24 * 3600;

impl Validator<'_> {
    fn err(&mut self, path: &Path, message: impl Into<String>, hint: impl Into<String>) {
        self.out.push(Diagnostic::new(path, message).hint(hint));
    }

    fn port(&mut self, path: &Path, port: i64) {
        if !(1..=65535).contains(&port) {
            self.err(
                path,
                format!("port {port} is outside 1..65535"),
                "use a TCP port between 1 and 65535",
            );
        }
    }

    fn range(&mut self, path: &Path, value: i64, lo: i64, hi: i64, what: &str) {
        if !(lo..=hi).contains(&value) {
            self.err(
                path,
                format!("{what} {value} is outside {lo}..{hi}"),
                format!("AWS accepts {lo} to {hi}"),
            );
        }
    }

    /// `health_check.transition`: the resting ranges, and never slower than the resting
    /// values (it exists to make the gates shorter).
    fn transition(&mut self, p: &Path, rest: &HealthCheck, t: &HealthTransition) {
        let interval = t.interval_seconds.unwrap_or(rest.interval_seconds);
        let timeout = t.timeout_seconds.unwrap_or(rest.timeout_seconds);
        if let Some(v) = t.interval_seconds {
            self.range(&p.key("interval_seconds"), v, 5, 300, "interval");
            if v > rest.interval_seconds {
                self.err(
                    &p.key("interval_seconds"),
                    format!(
                        "the transition's interval {v}s is longer than the resting interval {}s",
                        rest.interval_seconds
                    ),
                    "the transition is the faster check used during the move: give it an interval at most the resting one, or lengthen `health_check.interval_seconds`",
                );
            }
        }
        if let Some(v) = t.timeout_seconds {
            self.range(&p.key("timeout_seconds"), v, 2, 120, "timeout");
        }
        if timeout >= interval {
            let (path, hint) = match t.timeout_seconds {
                Some(_) => (p.key("timeout_seconds"), "AWS needs the timeout below the interval"),
                None => (
                    p.key("interval_seconds"),
                    "AWS needs the timeout below the interval: give the transition a `timeout_seconds` below its interval",
                ),
            };
            self.err(
                &path,
                format!(
                    "the transition's timeout {timeout}s is not shorter than its interval {interval}s"
                ),
                hint,
            );
        }
        if let Some(v) = t.healthy_threshold {
            self.range(&p.key("healthy_threshold"), v, 2, 10, "healthy threshold");
            if v > rest.healthy_threshold {
                self.err(
                    &p.key("healthy_threshold"),
                    format!(
                        "the transition's healthy threshold {v} is above the resting one, {}",
                        rest.healthy_threshold
                    ),
                    "the transition is the faster check used during the move: ask for at most as many passing checks as `health_check.healthy_threshold`",
                );
            }
        }
        if let Some(v) = t.unhealthy_threshold {
            self.range(
                &p.key("unhealthy_threshold"),
                v,
                2,
                10,
                "unhealthy threshold",
            );
        }
    }

    fn aws_id(&mut self, path: &Path, id: &str, prefix: &str, what: &str) {
        if !net::is_aws_id(id, prefix) {
            self.err(
                path,
                format!("\"{id}\" is not a valid {what} id"),
                format!("{what} ids look like {prefix}-0123456789abcdef0 ({prefix}- then 8 or 17 hex digits)"),
            );
        }
    }

    /// An ELB name (load balancer or target group): 1..32 characters, alphanumerics and
    /// hyphens, no hyphen at either end, with room for the replacement suffix.
    fn elb_name(&mut self, path: &Path, name: &str, what: &str, derived_from: &str) {
        let room = names::MAX_ELB_NAME - names::REPLACEMENT_SUFFIX.len();
        if name.len() > room {
            self.err(
                path,
                format!(
                    "derived {what} name \"{name}\" is {} characters; AWS allows {}, and a replacement needs {} more (\"{}\")",
                    name.chars().count(),
                    names::MAX_ELB_NAME,
                    names::REPLACEMENT_SUFFIX.len(),
                    names::alternate(name)
                ),
                format!("shorten {derived_from} so the name is at most {room} characters"),
            );
        }
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            || name.starts_with('-')
            || name.ends_with('-')
        {
            self.err(
                path,
                format!("derived {what} name \"{name}\" is not a valid AWS name"),
                format!("{derived_from} may use only letters, digits and inner hyphens"),
            );
        }
    }

    fn top(&mut self) {
        let m = self.m;
        if m.version != 1 {
            self.err(
                &root().key("version"),
                format!("unsupported manifest version {}", m.version),
                "this release of reconcile reads version 1",
            );
        }
        let stack = root().key("stack");
        if m.stack.is_empty() {
            self.err(
                &stack,
                "the stack id is empty",
                "name the stack after the site, e.g. \"www-example\"",
            );
        } else {
            self.elb_name(
                &stack,
                &names::load_balancer(&m.stack),
                "load balancer",
                "`stack`",
            );
            if m.stack.to_ascii_lowercase().starts_with("internal-") {
                self.err(
                    &stack,
                    "a load balancer name cannot start with \"internal-\"",
                    "choose another stack id",
                );
            }
            if m.stack.to_ascii_lowercase().starts_with("sg-") {
                self.err(
                    &stack,
                    "security group names derived from the stack cannot start with \"sg-\"",
                    "choose another stack id",
                );
            }
        }
        if let Some(region) = &m.region {
            if !net::is_region(region) {
                self.err(
                    &root().key("region"),
                    format!("\"{region}\" is not an AWS region name"),
                    "regions look like us-east-1 or eu-west-2",
                );
            }
        }
        self.aws_id(&root().key("vpc"), &m.vpc, "vpc", "VPC");
        for (k, val) in &m.tags {
            let p = root().key("tags").key(k);
            if k == names::STACK_TAG || k.to_ascii_lowercase().starts_with("aws:") {
                self.err(
                    &p,
                    format!("tag key \"{k}\" is reserved"),
                    format!(
                        "the tool sets {} itself from `stack`; AWS reserves aws:",
                        names::STACK_TAG
                    ),
                );
            } else if k.is_empty() || k.chars().count() > 128 || val.chars().count() > 256 {
                self.err(
                    &p,
                    "tag key or value has the wrong length",
                    "tag keys are 1..128 characters, values 0..256",
                );
            }
        }
        if m.tags.len() > 40 {
            self.err(
                &root().key("tags"),
                format!("{} tags is too many", m.tags.len()),
                "AWS allows 50 tags per resource and the tool needs some; keep to 40",
            );
        }
    }

    fn certificates(&mut self) {
        for (key, cert) in &self.m.certificates {
            let p = root().key("certificates").key(key);
            match (&cert.domain, &cert.arn) {
                (Some(_), Some(_)) => self.err(
                    &p,
                    "a certificate takes `domain` or `arn`, not both",
                    "keep `arn` to pin one certificate, or `domain` to find the issued one",
                ),
                (None, None) => self.err(
                    &p,
                    "a certificate needs `domain` or `arn`",
                    "e.g. {\"domain\": \"www.example.com\"}",
                ),
                (Some(domain), None) => {
                    if !net::is_dns_name(domain, true) {
                        self.err(
                            &p.key("domain"),
                            format!("\"{domain}\" is not a valid host name"),
                            "e.g. www.example.com or *.example.com",
                        );
                    }
                }
                (None, Some(arn)) => {
                    if net::cert_store(arn).is_none() {
                        self.err(
                            &p.key("arn"),
                            format!("\"{arn}\" is neither an ACM certificate ARN nor an IAM server certificate's"),
                            "ARNs look like arn:aws:acm:us-east-1:123456789012:certificate/<uuid> (ACM) or arn:aws:iam::123456789012:server-certificate/<name> (IAM)",
                        );
                    }
                }
            }
            let requested = cert.request == Some(true);
            if requested && cert.arn.is_some() {
                self.err(
                    &p.key("request"),
                    "a certificate pinned by `arn` is not requested",
                    "keep `arn` to use that certificate, or `domain` with `request: true` to have the stack request one",
                );
            }
            if !requested && !cert.alternative_names.is_empty() {
                self.err(
                    &p.key("alternative_names"),
                    "`alternative_names` are names of a certificate the stack requests",
                    "add \"request\": true, or leave them out (a certificate found by `domain` is any ISSUED one covering it)",
                );
            }
            if requested && cert.domain.is_some() {
                self.requested(&p, cert);
            }
        }
    }

    /// A certificate the stack requests: its names valid, each once, and inside the zone
    /// its DNS validation records are written to.
    fn requested(&mut self, p: &Path, cert: &crate::manifest::Certificate) {
        let zone = self.m.dns.as_ref().map(|d| net::normalize_dns(&d.zone));
        let Some(zone) = zone else {
            self.err(
                &p.key("request"),
                "a requested certificate is validated through the manifest's hosted zone, and the manifest has no `dns`",
                "add `dns` with the zone that holds these names, or request and validate the certificate in ACM yourself and find it by `domain`",
            );
            return;
        };
        let mut seen = BTreeSet::new();
        if let Some(d) = &cert.domain {
            seen.insert(net::normalize_dns(d));
        }
        for (i, name) in cert.alternative_names.iter().enumerate() {
            let np = p.key("alternative_names").index(i);
            if !net::is_dns_name(name, true) {
                self.err(
                    &np,
                    format!("\"{name}\" is not a valid host name"),
                    "e.g. example.com or *.example.com",
                );
            } else if !seen.insert(net::normalize_dns(name)) {
                self.err(
                    &np,
                    format!("{name} is named twice"),
                    "list each name once; `domain` is covered already",
                );
            }
        }
        let names: Vec<(Path, String)> = cert
            .domain
            .iter()
            .map(|d| (p.key("domain"), d.clone()))
            .chain(
                cert.alternative_names
                    .iter()
                    .enumerate()
                    .map(|(i, n)| (p.key("alternative_names").index(i), n.clone())),
            )
            .collect();
        for (np, name) in names {
            let n = net::normalize_dns(&name);
            let bare = n.strip_prefix("*.").unwrap_or(&n);
            let inside = bare == zone || bare.ends_with(&format!(".{zone}"));
            if !inside {
                self.err(
                    &np,
                    format!("{name} is outside the zone {zone}, where the certificate's DNS validation records go"),
                    "request it for names of this zone, or validate it in ACM yourself and find it by `domain`",
                );
            }
        }
    }

    /// The id a group reference stands for: an `existing` group's id, or the key itself.
    fn resolve_group<'b>(&'b self, reference: &'b str) -> &'b str {
        self.m
            .security_groups
            .get(reference)
            .and_then(|sg| sg.existing.as_deref())
            .unwrap_or(reference)
    }

    /// Is `reference` (a key or an `sg-` id) one of the load balancer's groups?
    fn is_lb_group(&self, reference: &str) -> bool {
        let target = self.resolve_group(reference);
        self.m
            .load_balancer
            .iter()
            .flat_map(|lb| &lb.security_groups)
            .any(|g| self.resolve_group(g) == target)
    }

    /// Ports a backend serves the load balancer on: target group and health-check ports,
    /// and the web ports themselves.
    fn web_ports(&self) -> BTreeSet<i64> {
        let mut ports: BTreeSet<i64> = [80, 443].into();
        for tg in self.m.target_groups.values() {
            ports.insert(tg.port);
            ports.extend(tg.health_check.port);
        }
        ports
    }

    /// A group or rule description as EC2 takes it: at most 255 characters, from letters,
    /// digits, spaces and `._-:/()#,@[]+=&;{}!$*` (anything else fails mid-apply).
    fn ec2_text(&mut self, path: &Path, text: &str, what: &str) {
        const ALSO: &str = " ._-:/()#,@[]+=&;{}!$*";
        if text.len() > 255 {
            self.err(
                path,
                format!("the {what} is {} bytes, over EC2's 255", text.len()),
                "shorten it",
            );
        } else if let Some(c) = text
            .chars()
            .find(|c| !c.is_ascii_alphanumeric() && !ALSO.contains(*c))
        {
            self.err(
                path,
                format!("the {what} contains {c:?}, which EC2 does not accept"),
                format!("use letters, digits, spaces and {}", ALSO.trim_start()),
            );
        }
    }

    fn group_ref(&mut self, path: &Path, reference: &str, field: &str) {
        if self.m.security_groups.contains_key(reference) {
            return;
        }
        if reference.starts_with("sg-") {
            self.aws_id(path, reference, "sg", "security group");
        } else {
            let known = choices(self.m.security_groups.keys());
            self.err(
                path,
                format!("{field} refers to security group \"{reference}\", which is not declared under `security_groups`"),
                format!("use a key of security_groups ({known}) or an sg- id"),
            );
        }
    }

    fn security_groups(&mut self) {
        let m = self.m;
        for (key, sg) in &m.security_groups {
            let p = root().key("security_groups").key(key);
            if let Some(id) = &sg.adopt {
                self.aws_id(&p.key("adopt"), id, "sg", "security group");
                if sg.existing.is_some() {
                    self.err(
                        &p.key("adopt"),
                        "a group is `existing` (only its rules managed) or adopted (owned whole), not both",
                        "keep `existing` to manage only its rules, or `adopt` to take the group over",
                    );
                }
                if sg.description.is_some() {
                    self.err(
                        &p.key("description"),
                        "`description` applies only to a group the stack creates",
                        "an adopted group keeps its own description (AWS cannot change it); remove this field",
                    );
                }
            }
            match &sg.existing {
                _ if sg.adopt.is_some() => {}
                Some(id) => {
                    self.aws_id(&p.key("existing"), id, "sg", "security group");
                    if sg.description.is_some() {
                        self.err(
                            &p.key("description"),
                            "`description` applies only to a group the stack creates",
                            "an existing group keeps its own description; remove this field",
                        );
                    }
                }
                None => {
                    let name = names::security_group(&m.stack, key);
                    if name.len() > 255
                        || !key
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                    {
                        self.err(&p, format!("derived security group name \"{name}\" is not valid"), "group keys may use letters, digits, `-` and `_`, and the name is at most 255 characters");
                    }
                    if let Some(d) = &sg.description {
                        self.ec2_text(&p.key("description"), d, "description");
                    }
                }
            }
            let mut open_world: Vec<(Path, i64, &str)> = Vec::new();
            let mut from_lb: BTreeMap<i64, &str> = BTreeMap::new();
            for (i, rule) in sg.ingress.iter().enumerate() {
                let rp = p.key("ingress").index(i);
                if rule.ports.is_empty() {
                    self.err(
                        &rp.key("ports"),
                        "a rule needs at least one port",
                        "e.g. \"ports\": [80, 443]",
                    );
                }
                for (j, port) in rule.ports.iter().enumerate() {
                    self.port(&rp.key("ports").index(j), *port);
                }
                match (&rule.from, rule.cidrs.is_empty()) {
                    (Some(_), false) => self.err(
                        &rp,
                        "a rule takes `cidrs` or `from`, not both",
                        "split it into two rules",
                    ),
                    (None, true) => self.err(
                        &rp,
                        "a rule needs `cidrs` or `from`",
                        "e.g. \"cidrs\": [\"198.51.100.0/24\"] or \"from\": \"lb\"",
                    ),
                    _ => {}
                }
                if let Some(from) = &rule.from {
                    self.group_ref(&rp.key("from"), from, "`from`");
                    if self.is_lb_group(from) {
                        for port in &rule.ports {
                            from_lb.insert(*port, from);
                        }
                    }
                }
                for (j, cidr) in rule.cidrs.iter().enumerate() {
                    let cp = rp.key("cidrs").index(j);
                    match net::parse_cidr(cidr) {
                        Err(why) => self.err(
                            &cp,
                            format!("\"{cidr}\" is not a valid CIDR: {why}"),
                            "write a network like 198.51.100.0/24 or 2001:db8::/32",
                        ),
                        Ok(c) if c.is_whole_internet() => {
                            for port in &rule.ports {
                                open_world.push((cp.clone(), *port, cidr));
                            }
                        }
                        Ok(Cidr { .. }) => {}
                    }
                }
                if let Some(d) = &rule.description {
                    self.ec2_text(&rp.key("description"), d, "rule description");
                }
            }
            // A backend (a group that admits the load balancer's group) must not also take
            // web traffic from the whole internet: nothing may sneak past the load balancer.
            let web = self.web_ports();
            for (path, port, cidr) in open_world {
                let Some(lb) = from_lb.values().next() else {
                    break;
                };
                if from_lb.contains_key(&port) || web.contains(&port) {
                    self.err(
                        &path,
                        format!("port {port} is open to the whole internet ({cidr}) on a backend group that admits the load balancer's group \"{lb}\""),
                        "drop the public rule: behind the load balancer, backends take web traffic only from it; apply removes the live public rules after the DNS switch",
                    );
                }
            }
        }
    }

    fn target_groups(&mut self) {
        let m = self.m;
        let mut taken: BTreeMap<String, String> = BTreeMap::new();
        for (key, tg) in &m.target_groups {
            let p = root().key("target_groups").key(key);
            let name = names::target_group(&m.stack, key);
            self.elb_name(&p, &name, "target group", "`stack` or this key");
            for n in [name.clone(), names::alternate(&name)] {
                if let Some(other) = taken.insert(n.clone(), key.clone()) {
                    self.err(
                        &p,
                        format!(
                            "target groups \"{other}\" and \"{key}\" both need the name \"{n}\""
                        ),
                        format!(
                            "a replacement of a group takes its name plus \"{}\"; rename one key",
                            names::REPLACEMENT_SUFFIX
                        ),
                    );
                }
            }
            self.port(&p.key("port"), tg.port);
            let hp = p.key("health_check");
            let hc = &tg.health_check;
            if let Some(port) = hc.port {
                self.port(&hp.key("port"), port);
            }
            if !hc.path.starts_with('/') || hc.path.len() > 1024 {
                self.err(&hp.key("path"), format!("health check path \"{}\" must start with `/` and be at most 1024 characters", hc.path), "e.g. \"/health/\"");
            }
            if let Err(why) = net::check_matcher(&hc.matcher) {
                self.err(&hp.key("matcher"), format!("matcher \"{}\" is not an HTTP code or range: {why}", hc.matcher), "use a code (\"200\"), a list (\"200,204\") or a range (\"200-299\"), within 200..499");
            }
            self.range(
                &hp.key("interval_seconds"),
                hc.interval_seconds,
                5,
                300,
                "interval",
            );
            self.range(
                &hp.key("timeout_seconds"),
                hc.timeout_seconds,
                2,
                120,
                "timeout",
            );
            if hc.timeout_seconds >= hc.interval_seconds {
                self.err(
                    &hp.key("timeout_seconds"),
                    format!(
                        "timeout {}s is not shorter than the interval {}s",
                        hc.timeout_seconds, hc.interval_seconds
                    ),
                    "AWS needs the timeout below the interval",
                );
            }
            self.range(
                &hp.key("healthy_threshold"),
                hc.healthy_threshold,
                2,
                10,
                "healthy threshold",
            );
            self.range(
                &hp.key("unhealthy_threshold"),
                hc.unhealthy_threshold,
                2,
                10,
                "unhealthy threshold",
            );
            if let Some(t) = &hc.transition {
                self.transition(&hp.key("transition"), hc, t);
            }
            let mut seen = BTreeSet::new();
            for (i, t) in tg.targets.iter().enumerate() {
                let tp = p.key("targets").index(i);
                self.aws_id(&tp, t, "i", "instance");
                if !seen.insert(t) {
                    self.err(
                        &tp,
                        format!("instance {t} is listed twice"),
                        "list each target once",
                    );
                }
            }
            if tg.targets.is_empty() {
                self.err(
                    &p.key("targets"),
                    format!("target group \"{key}\" has no targets: its listeners would have nothing to forward to"),
                    "list the instance ids that serve the site, e.g. [\"i-0aaaaaaaaaaaaaaa1\"]",
                );
            }
            match &m.load_balancer {
                None => self.err(&p, format!("target group \"{key}\" needs a load balancer, and the manifest declares none"), "remove the target group (without a load balancer the records lead to the instances by their `values`), or declare `load_balancer`"),
                Some(lb) if !lb.listeners.iter().any(|l| l.forward.as_ref() == Some(key)) => {
                    self.err(&p, format!("no listener forwards to target group \"{key}\""), "AWS does not health-check a group no listener uses; forward a listener to it or remove it");
                }
                Some(_) => {}
            }
        }
    }

    fn load_balancer(&mut self) {
        let m = self.m;
        let Some(lb) = &m.load_balancer else { return };
        let p = root().key("load_balancer");
        if let Some(a) = &lb.attributes {
            let ap = p.key("attributes");
            if let Some(t) = a.idle_timeout {
                self.range(&ap.key("idle_timeout"), t, 1, 4000, "idle_timeout");
            }
            if let Some(logs) = &a.access_logs {
                let lp = ap.key("access_logs");
                if !net::is_s3_bucket(&logs.bucket) {
                    self.err(
                        &lp.key("bucket"),
                        format!("\"{}\" is not an S3 bucket name", logs.bucket),
                        "bucket names are 3 to 63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit (the bucket's name, not its ARN or URL)",
                    );
                }
                if let Some(prefix) = &logs.prefix {
                    if prefix.starts_with('/')
                        || prefix.ends_with('/')
                        || prefix.contains("AWSLogs")
                        || prefix.is_empty()
                    {
                        self.err(
                            &lp.key("prefix"),
                            format!("\"{prefix}\" is not a prefix AWS takes for access logs"),
                            "no leading or trailing `/`, and not `AWSLogs` (AWS adds AWSLogs/<account>/ after it); leave it out for the bucket's root",
                        );
                    }
                }
            }
        }
        if lb.subnets.len() < 2 {
            self.err(
                &p.key("subnets"),
                format!(
                    "a load balancer needs at least two subnets, found {}",
                    lb.subnets.len()
                ),
                "list subnets in two different availability zones",
            );
        }
        let mut seen = BTreeSet::new();
        for (i, s) in lb.subnets.iter().enumerate() {
            self.aws_id(&p.key("subnets").index(i), s, "subnet", "subnet");
            if !seen.insert(s) {
                self.err(
                    &p.key("subnets").index(i),
                    format!("subnet {s} is listed twice"),
                    "list each subnet once, in different availability zones",
                );
            }
        }
        if lb.security_groups.is_empty() {
            self.err(
                &p.key("security_groups"),
                "the load balancer needs a security group",
                "declare one under security_groups (open on the listener ports) and name it here",
            );
        }
        for (i, g) in lb.security_groups.iter().enumerate() {
            self.group_ref(&p.key("security_groups").index(i), g, "the load balancer");
        }
        if lb.listeners.is_empty() {
            self.err(
                &p.key("listeners"),
                "the load balancer has no listeners",
                "add e.g. {\"port\": 80, \"protocol\": \"HTTP\", \"forward\": \"http\"}",
            );
        }
        let mut ports: BTreeMap<i64, usize> = BTreeMap::new();
        for (i, l) in lb.listeners.iter().enumerate() {
            let lp = p.key("listeners").index(i);
            self.port(&lp.key("port"), l.port);
            if let Some(first) = ports.insert(l.port, i) {
                self.err(
                    &lp.key("port"),
                    format!("port {} is already used by listeners[{first}]", l.port),
                    "a load balancer has one listener per port",
                );
            }
            match (&l.forward, l.redirect) {
                (Some(f), None) if !m.target_groups.contains_key(f) => {
                    let known = choices(m.target_groups.keys());
                    self.err(&lp.key("forward"), format!("forwards to target group \"{f}\", which is not declared under `target_groups`"), format!("use one of: {known}"));
                }
                (Some(_), None) => {}
                (None, None) => self.err(
                    &lp.key("forward"),
                    "a listener needs `forward` (a target group) or `redirect`",
                    "e.g. \"forward\": \"app\", or on port 80 \"redirect\": \"https\"",
                ),
                (Some(_), Some(_)) => self.err(
                    &lp.key("redirect"),
                    "a listener forwards or redirects, not both",
                    "keep `forward` to serve from a target group, or `redirect` to send visitors to https",
                ),
                (None, Some(_)) if l.protocol == Protocol::Https => self.err(
                    &lp.key("redirect"),
                    "an HTTPS listener redirecting to https would send visitors round in a loop",
                    "redirect on the HTTP listener (port 80); the HTTPS one forwards",
                ),
                (None, Some(_)) => {}
            }
            match (l.protocol, &l.certificate) {
                (Protocol::Https, None) => self.err(
                    &lp,
                    "an HTTPS listener needs a `certificate`",
                    "name a key of `certificates`",
                ),
                (Protocol::Http, Some(_)) => self.err(
                    &lp.key("certificate"),
                    "an HTTP listener takes no certificate",
                    "remove it, or make the listener HTTPS",
                ),
                (_, Some(c)) if !m.certificates.contains_key(c) => {
                    let known = choices(m.certificates.keys());
                    self.err(&lp.key("certificate"), format!("refers to certificate \"{c}\", which is not declared under `certificates`"), format!("use one of: {known}"));
                }
                _ => {}
            }
            if let Some(policy) = &l.ssl_policy {
                if l.protocol == Protocol::Http {
                    self.err(
                        &lp.key("ssl_policy"),
                        "an HTTP listener takes no TLS policy",
                        "remove it, or make the listener HTTPS",
                    );
                } else if !net::SSL_POLICIES.contains(&policy.as_str()) {
                    self.err(
                        &lp.key("ssl_policy"),
                        format!("\"{policy}\" is not a TLS security policy of Application Load Balancers"),
                        format!(
                            "use one of AWS's ELBSecurityPolicy-... names (aws elbv2 describe-ssl-policies), e.g. {}, or leave it out for that default",
                            crate::manifest::DEFAULT_SSL_POLICY
                        ),
                    );
                }
            }
            if let Some(h) = &l.headers {
                self.headers(&lp.key("headers"), h, l.protocol);
            }
        }
    }

    /// Response headers: values AWS and browsers take, each on a listener it means
    /// something on.
    fn headers(&mut self, p: &Path, h: &crate::manifest::Headers, protocol: Protocol) {
        let text = [
            ("hsts", &h.hsts),
            ("content_security_policy", &h.content_security_policy),
            ("x_frame_options", &h.x_frame_options),
            ("x_content_type_options", &h.x_content_type_options),
        ];
        for (field, value) in text {
            let Some(v) = value else { continue };
            if v.trim().is_empty() {
                self.err(
                    &p.key(field),
                    "a header value cannot be empty",
                    "leave the header out to have none (one set earlier is then removed)",
                );
            } else if !v.chars().all(|c| c == ' ' || c.is_ascii_graphic()) {
                self.err(
                    &p.key(field),
                    "a header value holds printable ASCII only (no line breaks, tabs or other characters)",
                    "write it on one line; percent-encode what is not ASCII",
                );
            } else if v.len() > net::MAX_HEADER_VALUE {
                self.err(
                    &p.key(field),
                    format!("{} characters is longer than the {} AWS takes in a header value", v.len(), net::MAX_HEADER_VALUE),
                    "shorten it (a Content-Security-Policy can often move sources into fewer directives)",
                );
            }
        }
        if let Some(v) = &h.hsts {
            if protocol == Protocol::Http {
                self.err(
                    &p.key("hsts"),
                    "Strict-Transport-Security on an HTTP listener: browsers ignore it over plain HTTP",
                    "set it on the HTTPS listener (443), and redirect port 80 to https",
                );
            } else if let Err(why) = net::check_hsts(v) {
                self.err(
                    &p.key("hsts"),
                    why,
                    "e.g. \"max-age=31536000; includeSubDomains\"",
                );
            }
        }
        if let Some(v) = &h.x_frame_options {
            if !net::is_x_frame_options(v) {
                self.err(
                    &p.key("x_frame_options"),
                    format!("\"{v}\" is not an X-Frame-Options value"),
                    "use DENY, SAMEORIGIN, or ALLOW-FROM https://origin.example.com",
                );
            }
        }
        if let Some(v) = &h.x_content_type_options {
            if v != "nosniff" {
                self.err(
                    &p.key("x_content_type_options"),
                    format!("\"{v}\" is not an X-Content-Type-Options value"),
                    "its one value is \"nosniff\"",
                );
            }
        }
    }

    /// The paths the job needs, as far as the manifest tells them: clients reach every
    /// listener port through one of the load balancer's groups, and the load balancer
    /// reaches every target group's traffic and health-check ports on a backend group (a
    /// group that admits the load balancer's group). A group whose live rules may hold
    /// more than the manifest lists (an `sg-` id, or `existing` without `exclusive`) could
    /// open the path by itself, so then nothing is claimed.
    fn reachability(&mut self) {
        for (path, message, hint) in self.unreachable() {
            self.err(&path, message, hint);
        }
    }

    /// The problems [`Validator::reachability`] reports: path, message, hint.
    fn unreachable(&self) -> Vec<(Path, String, String)> {
        let m = self.m;
        let mut out = Vec::new();
        let known = |reference: &str| {
            m.security_groups
                .get(reference)
                .filter(|g| g.existing.is_none() || g.exclusive)
        };
        let opens = |g: &super::types::SecurityGroup, port: i64, lb_only: bool| {
            g.ingress.iter().any(|r| {
                r.ports.contains(&port)
                    && if lb_only {
                        r.from.as_deref().is_some_and(|f| self.is_lb_group(f))
                            || !r.cidrs.is_empty()
                    } else {
                        true
                    }
            })
        };
        let Some(lb) = &m.load_balancer else {
            return out;
        };
        let p = root().key("load_balancer");
        let lb_groups: Option<Vec<(&String, &super::types::SecurityGroup)>> = lb
            .security_groups
            .iter()
            .map(|g| known(g).map(|sg| (g, sg)))
            .collect();
        if let Some(groups) = lb_groups.filter(|g| !g.is_empty()) {
            for (i, l) in lb.listeners.iter().enumerate() {
                if !groups.iter().any(|(_, g)| opens(g, l.port, false)) {
                    let (key, _) = groups[0];
                    out.push((
                        p.key("listeners").index(i).key("port"),
                        format!("no security group of the load balancer lets clients in on port {}", l.port),
                        format!("add {} to the ports of a rule in security_groups.{key}.ingress, e.g. with \"cidrs\": [\"0.0.0.0/0\", \"::/0\"]", l.port),
                    ));
                }
            }
        }
        let backends: Vec<(&String, &super::types::SecurityGroup)> = m
            .security_groups
            .iter()
            .filter(|(k, g)| {
                !self.is_lb_group(k)
                    && g.ingress
                        .iter()
                        .any(|r| r.from.as_deref().is_some_and(|f| self.is_lb_group(f)))
            })
            .collect();
        if backends.is_empty() || backends.iter().any(|(k, _)| known(k).is_none()) {
            return out;
        }
        for (key, tg) in &m.target_groups {
            let tp = root().key("target_groups").key(key);
            let mut wanted = vec![(tp.key("port"), tg.port, "traffic")];
            if let Some(h) = tg.health_check.port.filter(|h| *h != tg.port) {
                wanted.push((tp.key("health_check").key("port"), h, "health check"));
            }
            for (path, port, what) in wanted {
                if !backends.iter().any(|(_, g)| opens(g, port, true)) {
                    let (backend, _) = backends[0];
                    out.push((
                        path,
                        format!("the load balancer cannot reach target group \"{key}\" on its {what} port {port}: no backend group lets the load balancer's group in on it"),
                        format!("add {port} to the ports of the rule `from` the load balancer's group in security_groups.{backend}.ingress"),
                    ));
                }
            }
        }
        out
    }

    /// The end state must serve the site: a managed record leads visitors to the load
    /// balancer, so it must be internet-facing, listen on 80 (HTTP) and 443 (HTTPS), let
    /// the whole internet in on both, and be let in by the backends. A manifest that
    /// misses one would be planned and applied as a normal change, and end with the site
    /// down; it is refused here, before any call.
    fn serves_the_record(&mut self) {
        let m = self.m;
        let Some(name) = m
            .dns
            .as_ref()
            .and_then(|d| d.records.first())
            .map(|r| r.name.clone())
        else {
            return;
        };
        let p = root().key("load_balancer");
        let Some(lb) = &m.load_balancer else {
            self.serves_directly();
            return;
        };
        if lb.scheme == super::types::Scheme::Internal {
            self.err(
                &p.key("scheme"),
                format!("an internal load balancer has no public address: {name} would lead nowhere from the internet"),
                format!("use \"internet-facing\", or take {name} out of dns.records while the load balancer is internal"),
            );
        }
        for (port, protocol) in [(80, Protocol::Http), (443, Protocol::Https)] {
            let word = if protocol == Protocol::Http {
                "HTTP"
            } else {
                "HTTPS"
            };
            match lb.listeners.iter().position(|l| l.port == port) {
                None if !lb.listeners.is_empty() => self.err(
                    &p.key("listeners"),
                    format!("no listener on port {port}: browsers come to {name} on {port}"),
                    format!("add {{\"port\": {port}, \"protocol\": \"{word}\", ...}}"),
                ),
                Some(i) if lb.listeners[i].protocol != protocol => self.err(
                    &p.key("listeners").index(i).key("protocol"),
                    format!("port {port} must be {word}: browsers come to {name} on {port} speaking {word}"),
                    if protocol == Protocol::Https {
                        "make it HTTPS with a `certificate`".to_owned()
                    } else {
                        "make it HTTP (TLS ends on the 443 listener)".to_owned()
                    },
                ),
                _ => {}
            }
        }
        // The load balancer's groups, when the manifest knows their whole rules.
        let known = |key: &str| {
            m.security_groups
                .get(key)
                .filter(|g| g.existing.is_none() || g.exclusive)
        };
        let lb_groups: Option<Vec<(&String, &super::types::SecurityGroup)>> = lb
            .security_groups
            .iter()
            .map(|k| known(k).map(|g| (k, g)))
            .collect();
        if let Some(groups) = lb_groups.filter(|g| !g.is_empty()) {
            for port in [80, 443] {
                let some_rule = groups
                    .iter()
                    .any(|(_, g)| g.ingress.iter().any(|r| r.ports.contains(&port)));
                let world = groups.iter().any(|(_, g)| {
                    g.ingress.iter().any(|r| {
                        r.ports.contains(&port)
                            && r.cidrs
                                .iter()
                                .any(|c| net::parse_cidr(c).is_ok_and(|c| c.is_whole_internet()))
                    })
                });
                // No rule at all is reported by the reachability check.
                if some_rule && !world {
                    let (key, _) = groups[0];
                    self.err(
                        &root().key("security_groups").key(key).key("ingress"),
                        format!("the load balancer's groups do not let the whole internet in on port {port}: visitors of {name} could not reach it"),
                        format!("add \"0.0.0.0/0\" and \"::/0\" to the cidrs of a rule with port {port}"),
                    );
                }
            }
        }
        // The backends: with no group admitting the load balancer, the instances' own
        // groups (`existing`, whole rules known) must let it in on every target port.
        let admits_lb = m.security_groups.iter().any(|(k, g)| {
            !self.is_lb_group(k)
                && g.ingress
                    .iter()
                    .any(|r| r.from.as_deref().is_some_and(|f| self.is_lb_group(f)))
        });
        let instance_groups: Vec<&String> = m
            .security_groups
            .iter()
            .filter(|(k, g)| !self.is_lb_group(k) && g.existing.is_some() && g.exclusive)
            .map(|(k, _)| k)
            .collect();
        let lb_key = lb.security_groups.first().cloned().unwrap_or_default();
        if !admits_lb && !instance_groups.is_empty() {
            for (key, tg) in &m.target_groups {
                let opened = instance_groups.iter().any(|g| {
                    m.security_groups[*g]
                        .ingress
                        .iter()
                        .any(|r| r.ports.contains(&tg.port) && !r.cidrs.is_empty())
                });
                if !opened {
                    let group = instance_groups[0];
                    self.err(
                        &root().key("target_groups").key(key).key("port"),
                        format!("no group of the backends lets the load balancer in on port {}: its targets would not answer it, and {name} would stop serving", tg.port),
                        format!("add {{\"ports\": [{}], \"from\": \"{lb_key}\"}} to security_groups.{group}.ingress", tg.port),
                    );
                }
            }
        }
    }

    /// What a record leads to: the load balancer (`to`, which the manifest must declare) or
    /// its own values (addresses of the record's type, or one host name for a CNAME).
    fn record_value(&mut self, rp: &Path, r: &super::types::Record) {
        match (&r.to, r.values.is_empty()) {
            (Some(_), false) => self.err(
                rp,
                "a record takes `to` or `values`, not both",
                "keep \"to\": \"load_balancer\" to lead to the load balancer, or `values` to lead elsewhere (the way back)",
            ),
            (None, true) => self.err(
                rp,
                "a record needs `to` or `values`",
                "e.g. \"to\": \"load_balancer\", or \"values\": [\"203.0.113.10\"] (the instance's elastic IP)",
            ),
            (Some(_), true) if self.m.load_balancer.is_none() => self.err(
                &rp.key("to"),
                "the record leads to the load balancer, and the manifest declares none",
                "declare `load_balancer`, or give the record its `values` (the instances' addresses)",
            ),
            _ => {}
        }
        let mut seen = BTreeSet::new();
        for (j, v) in r.values.iter().enumerate() {
            let vp = rp.key("values").index(j);
            let ok = match r.kind {
                RecordType::A => v.parse::<std::net::Ipv4Addr>().is_ok(),
                RecordType::Aaaa => v.parse::<std::net::Ipv6Addr>().is_ok(),
                RecordType::Cname => net::is_dns_name(&net::normalize_dns(v), false),
            };
            if !ok {
                let (what, example) = match r.kind {
                    RecordType::A => ("an IPv4 address", "203.0.113.10"),
                    RecordType::Aaaa => ("an IPv6 address", "2001:db8::10"),
                    RecordType::Cname => {
                        ("a host name", "ec2-203-0-113-10.compute-1.amazonaws.com")
                    }
                };
                self.err(
                    &vp,
                    format!("\"{v}\" is not {what}"),
                    format!(
                        "write one like {example} (the record is {})",
                        r.kind.as_str()
                    ),
                );
            }
            if !seen.insert(net::normalize_dns(v)) {
                self.err(
                    &vp,
                    format!("value {v} is listed twice"),
                    "list each value once",
                );
            }
        }
        if r.kind == RecordType::Cname && r.values.len() > 1 {
            self.err(
                &rp.key("values"),
                format!("a CNAME has one value, found {}", r.values.len()),
                "keep one host name; several addresses need an A record",
            );
        }
    }

    /// Without a load balancer the records lead visitors straight to the instances: a
    /// backend group whose whole rules the manifest knows must let the internet in on 443,
    /// or the end state would not serve.
    fn serves_directly(&mut self) {
        let m = self.m;
        let direct: Vec<&super::types::Record> = m
            .dns
            .iter()
            .flat_map(|d| &d.records)
            .filter(|r| !r.values.is_empty())
            .collect();
        let Some(first) = direct.first() else { return };
        let known: Vec<(&String, &super::types::SecurityGroup)> = m
            .security_groups
            .iter()
            .filter(|(_, g)| g.existing.is_some() && g.exclusive)
            .collect();
        // A group whose live rules may hold more than the manifest lists could open 443 by
        // itself: then nothing is claimed.
        let partly_known = m
            .security_groups
            .values()
            .any(|g| g.existing.is_some() && !g.exclusive);
        if known.is_empty() || partly_known {
            return;
        }
        let world_443 = known.iter().any(|(_, g)| {
            g.ingress.iter().any(|r| {
                r.ports.contains(&443)
                    && r.cidrs
                        .iter()
                        .any(|c| net::parse_cidr(c).is_ok_and(|c| c.is_whole_internet()))
            })
        });
        if !world_443 {
            let (key, _) = known[0];
            self.err(
                &root().key("security_groups").key(key).key("ingress"),
                format!("{} leads visitors straight to the instances, and no backend group lets the internet in on 443: the site would stop serving", first.name),
                "add {\"ports\": [80, 443], \"cidrs\": [\"0.0.0.0/0\", \"::/0\"]} to the backend group's ingress",
            );
        }
    }

    fn dns(&mut self) {
        let m = self.m;
        let Some(dns) = &m.dns else { return };
        let p = root().key("dns");
        let zone = net::normalize_dns(&dns.zone);
        if !net::is_dns_name(&zone, false) {
            self.err(
                &p.key("zone"),
                format!("\"{}\" is not a valid zone name", dns.zone),
                "e.g. example.com",
            );
        }
        // A set: many listeners share a certificate, and each record is checked against these.
        let listeners = m.load_balancer.iter().flat_map(|lb| &lb.listeners);
        let https_domains: BTreeSet<&str> = listeners
            .clone()
            .filter(|l| l.protocol == Protocol::Https)
            .filter_map(|l| m.certificates.get(l.certificate.as_deref()?))
            .flat_map(|c| {
                // A requested certificate covers its alternative names too.
                let sans = c
                    .alternative_names
                    .iter()
                    .filter(|_| c.request == Some(true))
                    .map(String::as_str);
                c.domain.as_deref().into_iter().chain(sans)
            })
            .collect();
        let https_list = {
            let mut d: Vec<String> = https_domains.iter().map(|x| (*x).to_owned()).collect();
            d.sort();
            d.dedup();
            choices(d.iter())
        };
        let pinned = listeners.clone().any(|l| {
            l.certificate
                .as_deref()
                .and_then(|c| m.certificates.get(c))
                .is_some_and(|c| c.arn.is_some())
        });
        let mut seen = BTreeSet::new();
        let mut kinds_at: BTreeMap<String, (bool, bool)> = BTreeMap::new();
        for (i, r) in dns.records.iter().enumerate() {
            let rp = p.key("records").index(i);
            let name = net::normalize_dns(&r.name);
            if !net::is_dns_name(&name, false) {
                self.err(
                    &rp.key("name"),
                    format!("\"{}\" is not a valid host name", r.name),
                    "e.g. www.example.com",
                );
                continue;
            }
            if name != zone && !name.ends_with(&format!(".{zone}")) {
                self.err(
                    &rp.key("name"),
                    format!("\"{}\" is outside the zone \"{}\"", r.name, dns.zone),
                    format!("use a name ending in .{zone}, or manage it from its own zone"),
                );
            }
            if name == zone && r.kind == RecordType::Cname {
                self.err(
                    &rp.key("type"),
                    format!("a CNAME cannot stand at the zone apex \"{}\"", dns.zone),
                    "use an alias record (\"type\": \"A\") at the apex",
                );
            }
            if !seen.insert((name.clone(), r.kind.as_str())) {
                self.err(
                    &rp,
                    format!("record {} {} is listed twice", name, r.kind.as_str()),
                    "list each name and type once",
                );
            }
            // Kinds seen so far per name: a CNAME beside any other type is refused.
            let cname = r.kind == RecordType::Cname;
            let seen_kinds = kinds_at.entry(name.clone()).or_insert((false, false));
            let other_kind = if cname { seen_kinds.1 } else { seen_kinds.0 };
            if cname {
                seen_kinds.0 = true;
            } else {
                seen_kinds.1 = true;
            }
            if other_kind {
                self.err(
                    &rp.key("type"),
                    format!("{name} cannot have a CNAME and another record type at once"),
                    "keep either the CNAME or the alias records for this name",
                );
            }
            if !https_domains.is_empty()
                && !pinned
                && !https_domains.iter().any(|d| net::covers(d, &name))
            {
                self.err(
                    &rp.key("name"),
                    format!(
                        "no HTTPS listener's certificate covers \"{name}\" (certificates for: {})",
                        https_list
                    ),
                    "add the name (or a wildcard for its parent) to the certificate's `domain`",
                );
            }
            self.record_value(&rp, r);
            let alias = r.kind != RecordType::Cname && r.to.is_some();
            match (alias, r.ttl) {
                (false, None) if r.kind == RecordType::Cname => self.err(&rp, "a CNAME needs a `ttl`", "e.g. \"ttl\": 3600"),
                (false, None) => self.err(&rp, format!("an {} record with `values` needs a `ttl`", r.kind.as_str()), "e.g. \"ttl\": 3600"),
                (true, Some(_)) => self.err(&rp.key("ttl"), "an alias record has no TTL of its own", "remove `ttl`; `transition_ttl` still sets how low the old record's TTL goes before the switch"),
                (_, Some(ttl)) => self.range(&rp.key("ttl"), ttl, 0, 2_147_483_647, "TTL"),
                _ => {}
            }
            if let Some(t) = r.transition_ttl {
                self.range(&rp.key("transition_ttl"), t, 0, 2_147_483_647, "TTL");
                if let Some(ttl) = r.ttl.filter(|ttl| t > *ttl) {
                    self.err(&rp.key("transition_ttl"), format!("transition_ttl {t} is above ttl {ttl}"), "the transition TTL is the short one used while the value changes; make it at most `ttl`");
                }
            }
            if let Some(probe) = &r.probe {
                self.probe(&rp.key("probe"), r, probe);
            }
            if let Some(cutover) = &r.cutover {
                self.cutover(&rp.key("cutover"), r, cutover);
            }
        }
    }

    /// A probe asks the load balancer, so only a record that leads to it has one; its path
    /// is an absolute path, its statuses HTTP statuses.
    fn probe(
        &mut self,
        at: &Path,
        r: &crate::manifest::types::Record,
        probe: &crate::manifest::types::Probe,
    ) {
        if r.to.is_none() {
            self.err(at, "a probe asks the site through the load balancer before the record switches to it; this record has its own `values`", "remove `probe`, or point the record `to` the load balancer");
        }
        if self
            .m
            .load_balancer
            .as_ref()
            .is_none_or(|lb| lb.listeners.is_empty())
        {
            self.err(at, "a probe asks the site through the load balancer's listeners, and the manifest has none", "declare the listeners under load_balancer.listeners, or remove `probe`");
        }
        if let Some(path) = &probe.path {
            if !path.starts_with('/')
                || path
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || c == '#')
            {
                self.err(
                    &at.key("path"),
                    format!("\"{path}\" is not a path to request"),
                    "an absolute path such as \"/\" or \"/about/\" (no spaces, no fragment)",
                );
            }
        }
        if let Some(expect) = &probe.expect {
            if expect.is_empty() {
                self.err(
                    &at.key("expect"),
                    "no status would pass",
                    "list the statuses a working page answers, e.g. [200] or [200, 301, 302]",
                );
            }
            for (i, code) in expect.iter().enumerate() {
                self.range(&at.key("expect").index(i), *code, 100, 599, "HTTP status");
            }
        }
    }

    /// A cutover shifts a record to the load balancer: its steps rise to 100, its bake is
    /// a duration, its thresholds are shares and counts.
    fn cutover(
        &mut self,
        at: &Path,
        r: &crate::manifest::types::Record,
        c: &crate::manifest::types::Cutover,
    ) {
        if r.to.is_none() {
            self.err(at, "a cutover moves a record to the load balancer step by step; this record has its own `values`", "remove `cutover`, or point the record `to` the load balancer");
        }
        let steps = at.key("steps");
        if c.steps.is_empty() {
            self.err(
                &steps,
                "no step",
                "the shares of answers for the load balancer, rising to 100, e.g. [10, 50, 100]",
            );
        }
        let mut last = 0;
        for (i, step) in c.steps.iter().enumerate() {
            let here = steps.index(i);
            if !(1..=100).contains(step) {
                self.err(
                    &here,
                    format!("step {step} is not a percentage from 1 to 100"),
                    "e.g. [10, 50, 100]",
                );
            } else if *step <= last {
                self.err(
                    &here,
                    format!("step {step} does not rise above the one before it ({last})"),
                    "list the steps in rising order, e.g. [10, 50, 100]",
                );
            }
            last = last.max(*step);
        }
        if let Some(final_step) = c.steps.last().filter(|s| **s != 100) {
            self.err(
                &steps.index(c.steps.len() - 1),
                format!("the last step is {final_step}, so the switch would never finish"),
                "end the steps with 100",
            );
        }
        if let Some(bake) = &c.bake {
            match humantime::parse_duration(bake) {
                Ok(d) if d.as_secs() > CUTOVER_BAKE_MAX_SECS => self.err(
                    &at.key("bake"),
                    format!("a bake of {bake} is longer than a day"),
                    "bake each step for minutes, e.g. \"5m\"",
                ),
                Ok(_) => {}
                Err(e) => self.err(
                    &at.key("bake"),
                    format!("\"{bake}\" is not a duration ({e})"),
                    "e.g. \"5m\", \"90s\", \"1h\"",
                ),
            }
        }
        if let Some(p) = c.max_5xx_percent {
            if !(0.0..=100.0).contains(&p) {
                self.err(
                    &at.key("max_5xx_percent"),
                    format!("{p} is not a percentage"),
                    "a share from 0 to 100, e.g. 1",
                );
            }
        }
        if let Some(n) = c.max_unhealthy {
            self.range(
                &at.key("max_unhealthy"),
                n,
                0,
                1000,
                "unhealthy target count",
            );
        }
    }

    /// `adopt` names a resource of the right kind, in the manifest's region, and no
    /// resource is adopted twice (or adopted by one key and `existing` for another).
    fn adoptions(&mut self) {
        use net::ElbResource;
        let m = self.m;
        let mut named: Vec<(Path, &str, ElbResource)> = Vec::new();
        if let Some(arn) = m.load_balancer.as_ref().and_then(|lb| lb.adopt.as_deref()) {
            named.push((
                root().key("load_balancer").key("adopt"),
                arn,
                ElbResource::ApplicationLoadBalancer,
            ));
        }
        for (key, tg) in &m.target_groups {
            if let Some(arn) = tg.adopt.as_deref() {
                named.push((
                    root().key("target_groups").key(key).key("adopt"),
                    arn,
                    ElbResource::TargetGroup,
                ));
            }
        }
        let mut seen: BTreeMap<&str, Path> = BTreeMap::new();
        for (path, arn, kind) in named {
            let (what, example, listing) = match kind {
                ElbResource::ApplicationLoadBalancer => (
                    "an Application Load Balancer ARN",
                    "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/<name>/<id>",
                    "aws elbv2 describe-load-balancers",
                ),
                ElbResource::TargetGroup => (
                    "a target group ARN",
                    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/<name>/<id>",
                    "aws elbv2 describe-target-groups",
                ),
            };
            match net::elb_arn_region(arn, kind) {
                None => self.err(
                    &path,
                    format!("\"{arn}\" is not {what}"),
                    format!("`adopt` takes the ARN of the resource to take over, e.g. {example} (`{listing}` lists them)"),
                ),
                Some(region) => {
                    if let Some(want) = m.region.as_deref().filter(|r| *r != region) {
                        self.err(
                            &path,
                            format!("{arn} is in {region}, not in the manifest's region {want}"),
                            "a stack lives in one region: adopt a resource of its region, or correct `region`",
                        );
                    }
                }
            }
            if let Some(first) = seen.insert(arn, path.clone()) {
                self.err(
                    &path,
                    format!("{arn} is adopted twice (also at {first})"),
                    "a resource is taken over by one key only",
                );
            }
        }
        let mut groups: BTreeMap<&str, Path> = BTreeMap::new();
        for (key, sg) in &m.security_groups {
            let p = root().key("security_groups").key(key);
            for (field, id) in [("adopt", &sg.adopt), ("existing", &sg.existing)] {
                let Some(id) = id.as_deref() else { continue };
                if let Some(first) = groups.insert(id, p.key(field)) {
                    self.err(
                        &p.key(field),
                        format!("security group {id} is named twice (also at {first})"),
                        "declare each group under one key",
                    );
                }
            }
        }
    }
}
