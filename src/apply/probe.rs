//! The probe gate: the article's test before DNS moves ("with the site domain set in your
//! local /etc/hosts file to point at one of the load balancer's IP addresses, the site
//! should work"), automated. The site is asked by the record's name (SNI, `Host` and the
//! certificate check all use it) at the load balancer's addresses, or where a
//! `--resolve NAME:PORT:ADDRESS` override points it.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Where the probe of `NAME:PORT` connects instead of the load balancer's addresses (as
/// curl's `--resolve`); `ADDRESS` may carry its own port (`127.0.0.1:8443`), as curl's
/// `--connect-to` does, for a local server on an unprivileged port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolve {
    pub name: String,
    pub port: u16,
    pub addr: SocketAddr,
}

impl std::str::FromStr for Resolve {
    type Err = String;

    fn from_str(text: &str) -> Result<Resolve, String> {
        let bad = |why: &str| {
            format!("\"{text}\" is not NAME:PORT:ADDRESS ({why}): write e.g. www.example.com:443:127.0.0.1 or www.example.com:443:127.0.0.1:8443")
        };
        let (name, rest) = text.split_once(':').ok_or_else(|| bad("no port"))?;
        let (port, address) = rest.split_once(':').ok_or_else(|| bad("no address"))?;
        if name.is_empty() {
            return Err(bad("no name"));
        }
        let port: u16 = port.parse().map_err(|_| bad("the port is not a number"))?;
        let not_ip = || bad("the address is not an IP address");
        let addr = if let Some(inner) = address.strip_prefix('[') {
            // [v6] or [v6]:port
            let (ip, after) = inner.split_once(']').ok_or_else(not_ip)?;
            let ip: IpAddr = ip.parse().map_err(|_| not_ip())?;
            match after.strip_prefix(':') {
                None if after.is_empty() => SocketAddr::new(ip, port),
                Some(p) => SocketAddr::new(
                    ip,
                    p.parse()
                        .map_err(|_| bad("the address's port is not a number"))?,
                ),
                None => return Err(not_ip()),
            }
        } else if let Ok(ip) = address.parse::<IpAddr>() {
            SocketAddr::new(ip, port)
        } else {
            address.parse::<SocketAddr>().map_err(|_| not_ip())?
        };
        Ok(Resolve {
            name: crate::manifest::net::normalize_dns(name),
            port,
            addr,
        })
    }
}

/// What one request of the probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The answer was as expected.
    Passed,
    /// The site answered, wrongly: the switch is refused. The message names the status
    /// and the URL; the hint the usual causes.
    Wrong { message: String, hint: String },
    /// No answer (yet): a new load balancer's name takes a while to resolve everywhere,
    /// and its nodes a moment to accept connections. Tried again until the probe's time
    /// is up (a TLS handshake refused for a certificate that does not cover the name ends
    /// here too, and is named by the last error).
    Unreachable(String),
}

/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// One request: `scheme://name[:port]path`, connected to `at`, without following
/// redirects. `expect` are the statuses that pass; with `redirect_to`, a redirect (301,
/// 302, 307, 308) whose `Location` starts with it passes instead.
pub async fn ask(
    scheme: &str,
    name: &str,
    port: u16,
    path: &str,
    at: SocketAddr,
    expect: &[u16],
    redirect_to: Option<&str>,
) -> Answer {
    let default_port = if scheme == "https" { 443 } else { 80 };
    let url = if port == default_port {
        format!("{scheme}://{name}{path}")
    } else {
        format!("{scheme}://{name}:{port}{path}")
    };
    let client = match reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(REQUEST_TIMEOUT)
        // The URL names no port when it is the scheme's own: the address's port is used.
        .resolve(name, at)
        .user_agent(concat!("reconcile/", env!("CARGO_PKG_VERSION"), " (probe)"))
        .build()
    {
        Ok(c) => c,
        Err(e) => return Answer::Unreachable(format!("{url}: {e}")),
    };
    let response = match client.get(&url).send().await {
        Ok(r) => r,
        Err(e) => {
            let mut why = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                why = format!("{why}: {s}");
                source = s.source();
            }
            return Answer::Unreachable(format!("{url} (at {at}): {why}"));
        }
    };
    let status = response.status().as_u16();
    if let Some(target) = redirect_to {
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if matches!(status, 301 | 302 | 307 | 308) && location.starts_with(target) {
            return Answer::Passed;
        }
        return Answer::Wrong {
            message: if matches!(status, 301 | 302 | 307 | 308) {
                format!("{url} (at {at}) redirects to \"{location}\", not to {target}")
            } else {
                format!("{url} (at {at}) answered {status}, not a redirect to {target}")
            },
            hint: "the plain-HTTP port should send visitors to https: `\"redirect\": \"https\"` on the load balancer's port-80 listener, or the redirect server `reconcile backend --nginx` prints".into(),
        };
    }
    if expect.contains(&status) {
        return Answer::Passed;
    }
    let expected: Vec<String> = expect.iter().map(ToString::to_string).collect();
    Answer::Wrong {
        message: format!(
            "{url} (at {at}) answered {status}, not {}",
            expected.join(" or ")
        ),
        hint: hint_for(status, name),
    }
}

/// The usual causes of a wrong status when a site is first asked by its name through a
/// load balancer.
fn hint_for(status: u16, name: &str) -> String {
    match status {
        400 => format!("a 400 on every page is what Django answers when ALLOWED_HOSTS lacks {name} (the health check may skip it); fix the application, then apply again: DNS has not moved"),
        401 | 403 => "the page asks for credentials or refuses the load balancer: basic auth or an allow-list in front of the application; probe a public path, or open it".into(),
        301 | 302 | 307 | 308 => "the page redirects: if it loops to https, the application does not see X-Forwarded-Proto (Django's SECURE_PROXY_SSL_HEADER); else add the status to `expect`".into(),
        404 => "the path does not exist on the new path: check the probe's `path` and the virtual host nginx answers for the name".into(),
        500..=599 => "the application fails behind the load balancer: its logs say why (a missing setting, a database it cannot reach from there)".into(),
        _ => "add the status to the probe's `expect` if it is right".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_reads_curl_s_form_and_a_port_of_its_own() {
        let r: Resolve = "www.example.com:443:127.0.0.1".parse().unwrap();
        assert_eq!(r.name, "www.example.com");
        assert_eq!(r.port, 443);
        assert_eq!(r.addr, "127.0.0.1:443".parse().unwrap());
        let r: Resolve = "WWW.example.com.:443:127.0.0.1:8443".parse().unwrap();
        assert_eq!(r.name, "www.example.com");
        assert_eq!(r.addr, "127.0.0.1:8443".parse().unwrap());
        let r: Resolve = "www.example.com:80:[::1]".parse().unwrap();
        assert_eq!(r.addr, "[::1]:80".parse().unwrap());
        let r: Resolve = "www.example.com:80:[::1]:8080".parse().unwrap();
        assert_eq!(r.addr, "[::1]:8080".parse().unwrap());
        for bad in [
            "www.example.com",
            "www.example.com:443",
            ":443:127.0.0.1",
            "www.example.com:https:127.0.0.1",
            "www.example.com:443:nowhere",
        ] {
            let e = bad.parse::<Resolve>().unwrap_err();
            assert!(e.contains("NAME:PORT:ADDRESS"), "{e}");
        }
    }

    #[test]
    fn a_400_points_at_allowed_hosts() {
        assert!(hint_for(400, "www.example.com").contains("ALLOWED_HOSTS"));
        assert!(hint_for(401, "x").contains("basic auth"));
    }
}
