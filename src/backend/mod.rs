//! The backend half of the migration (`reconcile backend`): from a validated manifest, the
//! nginx servers, Django settings and host firewall lines the backends need behind the load
//! balancer. Pure: manifest in, text out; no AWS call, no clock.
//!
//! First the manifest is read into a [`Site`]: which backend ports the load balancer
//! reaches, what each is for (the application behind the HTTPS listener, the redirect behind
//! the HTTP listener, a port only health-checked) and which health paths are probed where.
//! Each output then renders from that one reading, so the three can never disagree on a
//! port or a path.

mod django;
mod firewall;
mod nginx;

use std::collections::{BTreeMap, BTreeSet};

use crate::manifest::{self, Manifest};
use crate::model::Desired;
use crate::model::Protocol;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A manifest the backend outputs cannot be written for, although it validates.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the manifest declares no load balancer: visitors reach the servers directly, so there is no load balancer for the servers to serve (`reconcile backend` prints the servers' half of a migration to a load balancer); keep the direct site's nginx as it is")]
    NoLoadBalancer,
    #[error("target_groups.{group}.health_check.path: \"{path}\" cannot be written safely into nginx and Django configuration; use letters, digits and / . _ ~ - (e.g. \"/health/\"), with an optional query of those and = & + %")]
    HealthPath { group: String, path: String },
    #[error("the load balancer speaks both HTTP and HTTPS to port {port} ({uses}); one nginx port cannot do both: give the HTTPS traffic its own port")]
    MixedProtocols { port: u16, uses: String },
    #[error("the health checks of {groups} probe {path} on port {port} with matchers that no single status code satisfies ({matchers})")]
    Matchers {
        port: u16,
        path: String,
        groups: String,
        matchers: String,
    },
}

/// One of the three outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Nginx,
    Django,
    Firewall,
}

impl Part {
    pub const ALL: [Part; 3] = [Part::Nginx, Part::Django, Part::Firewall];

    /// The header line that introduces this part when several are printed together.
    fn header(self, site: &Site) -> String {
        match self {
            Part::Nginx => format!("==> nginx: /etc/nginx/sites-available/{} <==", site.stack),
            Part::Django => "==> django: settings, health view, URL pattern <==".to_owned(),
            Part::Firewall => "==> firewall: ufw, as root on each backend <==".to_owned(),
        }
    }
}

/// What a backend port is for, seen from the load balancer's listeners.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Serves the site: an HTTPS listener forwards here (TLS already ended at the load
    /// balancer), or only HTTP listeners do and the manifest has no HTTPS listener at all.
    /// `redirect_plain`: an HTTP listener forwards here too, so requests that came in over
    /// plain HTTP (by `X-Forwarded-Proto`) are redirected.
    App { redirect_plain: bool },
    /// An HTTP listener forwards here while the site has an HTTPS listener: redirect to https
    /// (except the health paths probed here).
    Redirect,
    /// Only health checks reach this port.
    HealthOnly,
}

/// A health check probing a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// Path without the query: what nginx `location` and Django URL patterns match.
    pub path: String,
    /// The query the load balancer sends, if any (`?` excluded).
    pub query: Option<String>,
    /// The status the health view answers: 200 when every matcher on this path accepts it.
    pub status: u16,
    /// Target groups whose check this is.
    pub groups: Vec<String>,
}

/// One port on the backends that the load balancer sends traffic or health checks to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    pub port: u16,
    pub role: Role,
    /// The load balancer speaks HTTPS to this port (an HTTPS target group or health check).
    pub tls: bool,
    /// Target groups whose traffic port this is.
    pub groups: Vec<String>,
    /// Ports of the HTTPS listeners that forward here.
    pub https_listeners: BTreeSet<u16>,
    /// Ports of the HTTP listeners that forward here.
    pub http_listeners: BTreeSet<u16>,
    /// Health checks probing this port, by path.
    pub probes: Vec<Probe>,
}

/// The manifest as the backends see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    pub stack: String,
    /// The manifest file, as named on the command line.
    pub source: String,
    pub vpc: String,
    pub region: Option<String>,
    /// The backend security group(s) (`existing` ids, else created group names) that admit
    /// the load balancer: what really filters the traffic.
    pub backend_groups: Vec<String>,
    /// Host names clients use: the DNS records, else the certificates' names.
    pub names: Vec<String>,
    /// Where `names` came from, for the comments.
    pub names_from: &'static str,
    /// Port of the HTTPS listener that redirects send clients to (443 when present).
    pub https_port: Option<u16>,
    /// Ports whose listeners redirect to https at the load balancer: no server for them.
    pub redirected_at_lb: Vec<u16>,
    /// Response headers the HTTPS listeners set at the load balancer (`headers`): the
    /// servers need not add them.
    pub headers_at_lb: crate::model::Headers,
    /// Servers in the order they are written: the application first.
    pub ports: Vec<Port>,
}

impl Site {
    /// The health probes over every port, one per path (for Django, which does not see
    /// ports), with the groups of every port that probes it.
    pub fn probes(&self) -> Vec<Probe> {
        let mut by_path: Vec<Probe> = Vec::new();
        for probe in self.ports.iter().flat_map(|p| &p.probes) {
            match by_path.iter_mut().find(|p| p.path == probe.path) {
                Some(seen) => seen.groups.extend(
                    probe
                        .groups
                        .iter()
                        .filter(|g| !seen.groups.contains(g))
                        .cloned()
                        .collect::<Vec<_>>(),
                ),
                None => by_path.push(probe.clone()),
            }
        }
        by_path
    }

    /// Name of the nginx upstream for the application (per stack, so that two sites'
    /// files can be included side by side).
    pub fn upstream(&self) -> String {
        format!("{}-app", self.stack)
    }

    /// Where a redirect sends a plain-HTTP request.
    pub fn https_url(&self) -> String {
        match self.https_port {
            Some(443) | None => "https://$host$request_uri".to_owned(),
            Some(p) => format!("https://$host:{p}$request_uri"),
        }
    }

    /// The second line of every output.
    fn generated(&self) -> String {
        format!(
            "Generated by `reconcile backend` from {}; regenerate it when the manifest changes.",
            self.source
        )
    }
}

/// Reads a validated manifest as the backends see it. `source` names the manifest file in
/// the outputs' first comment.
pub fn site(m: &Manifest, source: &str) -> Result<Site> {
    let d = Desired::from_manifest(m);
    let Some(lb) = &d.load_balancer else {
        return Err(Error::NoLoadBalancer);
    };
    let https_ports: BTreeSet<u16> = lb
        .listeners
        .values()
        .filter(|l| l.protocol == Protocol::Https)
        .map(|l| l.port)
        .collect();
    let https_port = if https_ports.contains(&443) {
        Some(443)
    } else {
        https_ports.first().copied()
    };

    #[derive(Default)]
    struct Uses {
        https: BTreeSet<u16>,
        http: BTreeSet<u16>,
        tls: BTreeSet<bool>,
        what: Vec<String>,
        groups: Vec<String>,
        probes: BTreeMap<String, Checks>,
    }
    /// The health checks probing one path on one port.
    #[derive(Default)]
    struct Checks {
        query: Option<String>,
        groups: Vec<String>,
        matchers: Vec<String>,
    }
    let mut ports: BTreeMap<u16, Uses> = BTreeMap::new();
    for tg in d.target_groups.values() {
        let listeners: Vec<&crate::model::DesiredListener> = lb
            .listeners
            .values()
            .filter(|l| l.to.forward() == Some(tg.key.as_str()))
            .collect();
        if listeners.is_empty() {
            // Validation refuses such a group; nothing reaches it in any case.
            continue;
        }
        let traffic = ports.entry(tg.port).or_default();
        for l in &listeners {
            if l.protocol == Protocol::Https {
                traffic.https.insert(l.port);
            } else {
                traffic.http.insert(l.port);
            }
        }
        let tls = tg.protocol == Protocol::Https;
        traffic.tls.insert(tls);
        traffic
            .what
            .push(format!("target group \"{}\" ({})", tg.key, tg.protocol));
        traffic.groups.push(tg.key.clone());

        let hc = &tg.health;
        let (path, query) = split_path(&tg.key, &hc.path)?;
        let health = ports.entry(hc.probed_port(tg.port)).or_default();
        health.tls.insert(hc.protocol == Protocol::Https);
        health.what.push(format!(
            "the health check of \"{}\" ({})",
            tg.key, hc.protocol
        ));
        let checks = health.probes.entry(path).or_default();
        checks.query = checks.query.take().or(query);
        checks.groups.push(tg.key.clone());
        checks.matchers.push(hc.matcher.clone());
    }

    let mut out = Vec::new();
    for (port, uses) in ports {
        if uses.tls.len() > 1 {
            return Err(Error::MixedProtocols {
                port,
                uses: uses.what.join(", "),
            });
        }
        let (by_https, by_http) = (!uses.https.is_empty(), !uses.http.is_empty());
        let role = if by_https || (by_http && https_port.is_none()) {
            Role::App {
                redirect_plain: by_https && by_http,
            }
        } else if by_http {
            Role::Redirect
        } else {
            Role::HealthOnly
        };
        let mut probes = Vec::new();
        for (path, c) in uses.probes {
            let status = status_for(&c.matchers).ok_or_else(|| Error::Matchers {
                port,
                path: path.clone(),
                groups: quoted(&c.groups),
                matchers: c.matchers.join("; "),
            })?;
            probes.push(Probe {
                path,
                query: c.query,
                status,
                groups: c.groups,
            });
        }
        out.push(Port {
            port,
            role,
            tls: uses.tls.contains(&true),
            groups: uses.groups,
            https_listeners: uses.https,
            http_listeners: uses.http,
            probes,
        });
    }
    out.sort_by_key(|p| (p.role == Role::Redirect, p.role == Role::HealthOnly, p.port));

    let (names, names_from) = host_names(m);
    Ok(Site {
        stack: m.stack.clone(),
        source: source.to_owned(),
        vpc: m.vpc.clone(),
        region: m.region.clone(),
        backend_groups: backend_groups(&d),
        names,
        names_from,
        https_port,
        redirected_at_lb: lb
            .listeners
            .values()
            .filter(|l| l.to.forward().is_none())
            .map(|l| l.port)
            .collect(),
        headers_at_lb: lb
            .listeners
            .values()
            .filter(|l| l.protocol == Protocol::Https)
            .flat_map(|l| l.headers.iter().flatten())
            .map(|(h, v)| (*h, v.clone()))
            .collect(),
        ports: out,
    })
}

/// Renders the parts asked for; with more than one, each under a header line.
pub fn render(m: &Manifest, source: &str, parts: &[Part]) -> Result<String> {
    let site = site(m, source)?;
    let mut out = String::new();
    for (i, part) in parts.iter().enumerate() {
        if parts.len() > 1 {
            if i > 0 {
                out.push('\n');
            }
            out.push_str(&part.header(&site));
            out.push_str("\n\n");
        }
        out.push_str(&match part {
            Part::Nginx => nginx::render(&site),
            Part::Django => django::render(&site),
            Part::Firewall => firewall::render(&site),
        });
    }
    Ok(out)
}

/// The host names the site answers to: the managed DNS records, else the names of the
/// certificates (wildcards left out), else none.
fn host_names(m: &Manifest) -> (Vec<String>, &'static str) {
    let mut seen = BTreeSet::new();
    let from_records: Vec<String> = m
        .dns
        .iter()
        .flat_map(|d| &d.records)
        .map(|r| manifest::net::normalize_dns(&r.name))
        .filter(|n| seen.insert(n.clone()))
        .collect();
    if !from_records.is_empty() {
        return (from_records, "the manifest's `dns.records`");
    }
    let from_certs: Vec<String> = m
        .certificates
        .values()
        .filter_map(|c| c.domain.as_deref())
        .map(manifest::net::normalize_dns)
        .filter(|n| !n.starts_with("*.") && seen.insert(n.clone()))
        .collect();
    if !from_certs.is_empty() {
        return (from_certs, "the manifest's certificate domains");
    }
    (Vec::new(), "nowhere: the manifest names no host")
}

/// The security groups that admit the load balancer's group: the backends' groups.
fn backend_groups(d: &Desired) -> Vec<String> {
    use crate::model::{GroupRef, Source};
    let lb_groups: BTreeSet<String> = d
        .load_balancer
        .iter()
        .flat_map(|lb| &lb.security_groups)
        .map(|g| match g {
            GroupRef::Key(k) | GroupRef::Id(k) => k.clone(),
        })
        .collect();
    d.security_groups
        .values()
        .filter(|sg| {
            sg.rules.keys().any(|r| match &r.source {
                Source::Key(k) | Source::Group(k) => lb_groups.contains(k),
                Source::Cidr(_) => false,
            })
        })
        .map(|sg| sg.existing.clone().unwrap_or_else(|| sg.name.clone()))
        .collect()
}

/// Splits a health path into the part nginx and Django match and the query, refusing
/// characters that would need quoting in either (the path goes into both verbatim).
fn split_path(group: &str, path: &str) -> Result<(String, Option<String>)> {
    let plain = |s: &str, extra: &str| {
        s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._~-".contains(c) || extra.contains(c))
    };
    let (p, q) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path, None),
    };
    let ok = p.starts_with('/')
        && plain(p, "")
        && !p.contains("//")
        && !p.split('/').any(|s| s == "." || s == "..")
        && q.is_none_or(|q| plain(q, "=&+%"));
    if !ok {
        return Err(Error::HealthPath {
            group: group.to_owned(),
            path: path.to_owned(),
        });
    }
    Ok((p.to_owned(), q.filter(|q| !q.is_empty()).map(str::to_owned)))
}

/// The status a health view answers so that every matcher accepts it: 200 when they all
/// do, else the lowest code they all accept.
fn status_for(matchers: &[String]) -> Option<u16> {
    let accepts = |m: &str, code: u16| {
        m.split(',').any(|part| {
            let part = part.trim();
            match part.split_once('-') {
                Some((lo, hi)) => match (lo.trim().parse::<u16>(), hi.trim().parse::<u16>()) {
                    (Ok(lo), Ok(hi)) => lo <= code && code <= hi,
                    _ => false,
                },
                None => part.parse::<u16>() == Ok(code),
            }
        })
    };
    let all = |code: u16| matchers.iter().all(|m| accepts(m, code));
    if all(200) {
        return Some(200);
    }
    (200..=499).find(|c| all(*c))
}

/// Writes `text` as `#` comment lines of at most [`WIDTH`] columns, each starting with
/// `indent`; a newline in `text` starts a new line.
fn comment(out: &mut String, indent: &str, text: &str) {
    for paragraph in text.split('\n') {
        let mut line = format!("{indent}#");
        let bare = line.len();
        for word in paragraph.split_whitespace() {
            if line.len() > bare && line.len() + 1 + word.len() > WIDTH {
                out.push_str(&line);
                out.push('\n');
                line = format!("{indent}#");
            }
            line.push(' ');
            line.push_str(word);
        }
        out.push_str(&line);
        out.push('\n');
    }
}

/// Longest comment line the outputs write (a longer word stands alone on its line).
const WIDTH: usize = 90;

/// `target group "a"`, `target groups "a" and "b"`.
fn groups_phrase(groups: &[String]) -> String {
    match groups.len() {
        1 => format!("target group {}", quoted(groups)),
        _ => format!("target groups {}", quoted(groups)),
    }
}

/// `"a"`, `"a" and "b"`, `"a", "b" and "c"`.
fn quoted(items: &[String]) -> String {
    let q: Vec<String> = items.iter().map(|i| format!("\"{i}\"")).collect();
    match q.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests;
