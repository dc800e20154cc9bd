//! The nginx output: one server per backend port the load balancer reaches, and the
//! placeholder upstream for the application.

use std::fmt::Write as _;

use super::{comment, groups_phrase, Port, Probe, Role, Site};
use crate::model::ResponseHeader;

pub(super) fn render(site: &Site) -> String {
    let mut o = String::new();
    comment(
        &mut o,
        "",
        &format!(
            "nginx for stack {}: the backend half of the migration to the load balancer.\n{}",
            site.stack,
            site.generated()
        ),
    );
    let _ = writeln!(
        o,
        "#
# Install on every backend instance as /etc/nginx/sites-available/{stack}, linked from
# sites-enabled, then `nginx -t && systemctl reload nginx`. Do it before `reconcile apply`:
# the load balancer's health gate waits for these servers to answer. Keep your existing
# port-443 server until apply has finished (DNS switched, old answers expired); then
# remove it.

# The application (gunicorn). A PLACEHOLDER: adapt it to where your app listens (as in
# your current port-443 server), e.g. `server unix:/run/gunicorn.sock;`.
upstream {upstream} {{
    server 127.0.0.1:8000;
}}",
        stack = site.stack,
        upstream = site.upstream()
    );
    for p in &site.redirected_at_lb {
        o.push('\n');
        comment(
            &mut o,
            "",
            &format!("Port {p}: the load balancer answers every request on it with a 301 to https itself (its listener {p} redirects), so no server here takes port {p}, and the backends need not admit the load balancer on it. Keep your existing port-{p} server only until apply has finished."),
        );
    }
    for port in &site.ports {
        o.push('\n');
        server(&mut o, site, port);
    }
    o
}

/// "the HTTPS listener (443)", "the HTTP listeners (80, 8080)", joined by "and".
fn listeners(port: &Port) -> String {
    let one = |kind: &str, ports: &std::collections::BTreeSet<u16>| {
        let list: Vec<String> = ports.iter().map(u16::to_string).collect();
        match list.len() {
            0 => None,
            1 => Some(format!("the {kind} listener ({})", list.join(", "))),
            _ => Some(format!("the {kind} listeners ({})", list.join(", "))),
        }
    };
    [
        one("HTTPS", &port.https_listeners),
        one("HTTP", &port.http_listeners),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" and ")
}

fn server(o: &mut String, site: &Site, port: &Port) {
    let p = port.port;
    let groups = groups_phrase(&port.groups);
    let intro = match port.role {
        Role::App { .. } if site.https_port.is_some() => format!(
            "Port {p} ({groups}): the site, forwarded by {}. TLS ends at the load balancer, so there are no ssl directives here.",
            listeners(port)
        ),
        Role::App { .. } => format!(
            "Port {p} ({groups}): the site, forwarded by {}. The manifest has no HTTPS listener: the site is served over plain HTTP, so there is no Strict-Transport-Security header.",
            listeners(port)
        ),
        Role::Redirect => {
            let elsewhere = if port.probes.is_empty() {
                " Its health check probes another port (above), so everything here is redirected."
            } else {
                ""
            };
            format!(
                "Port {p} ({groups}): forwarded by {}, and redirected to https, as your existing port-{p} server does; this one replaces it for these names.{elsewhere}",
                listeners(port)
            )
        }
        Role::HealthOnly => {
            format!("Port {p}: only health checks come here; everything else is refused.")
        }
    };
    comment(o, "", &intro);
    let _ = writeln!(o, "server {{");
    listen(o, site, port);
    server_name(o, site);
    if let Role::App { redirect_plain } = port.role {
        let at_lb = &site.headers_at_lb;
        match at_lb.get(&ResponseHeader::Hsts) {
            Some(value) => {
                o.push('\n');
                comment(
                    o,
                    "    ",
                    &format!("Strict-Transport-Security ({value}) is set by the load balancer on every answer of its HTTPS listener (the manifest's `headers.hsts`): no add_header for it here."),
                );
            }
            None if site.https_port.is_some() => {
                let _ = writeln!(
                    o,
                    "
    # Kept from the port-443 server, so browsers keep using https. (A location with its
    # own add_header loses this one: repeat it there.) Or let the load balancer set it:
    # `headers.hsts` on the HTTPS listener in the manifest.
    add_header Strict-Transport-Security \"max-age=31536000\" always;"
                );
            }
            None => {}
        }
        let others: Vec<String> = at_lb
            .iter()
            .filter(|(h, _)| !matches!(h, ResponseHeader::Hsts | ResponseHeader::Server))
            .map(|(h, v)| format!("{}: {v}", h.http_name()))
            .collect();
        if !others.is_empty() {
            o.push('\n');
            comment(
                o,
                "    ",
                &format!(
                    "The load balancer also sets {} (the manifest's `headers`): adding them here too is not needed.",
                    others.join(", ")
                ),
            );
        }
        if at_lb.contains_key(&ResponseHeader::Server) {
            o.push('\n');
            comment(
                o,
                "    ",
                "The load balancer leaves its own Server header out (`headers.server: false`); this hides nginx's version in what passes through.",
            );
            let _ = writeln!(o, "    server_tokens off;");
        }
        if redirect_plain {
            o.push('\n');
            comment(
                o,
                "    ",
                &format!(
                    "{} forwards here too: requests that reached the load balancer over plain HTTP go to https. (Health checks carry no X-Forwarded-Proto, so they are not redirected.)",
                    capitalized(&listeners(&Port {
                        https_listeners: Default::default(),
                        ..port.clone()
                    }))
                ),
            );
            let _ = writeln!(
                o,
                "    if ($http_x_forwarded_proto = \"http\") {{
        return 301 {};
    }}",
                site.https_url()
            );
        }
        let _ = writeln!(
            o,
            "
    # Copy here what your port-443 server does itself (static files, `auth_basic` for a
    # private site), without its ssl_* lines.

    location / {{
        proxy_pass http://{};
        proxy_set_header Host $host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        # The protocol the client used: the load balancer sets this header (replacing any
        # value a client sent), and Django trusts it through SECURE_PROXY_SSL_HEADER.
        proxy_set_header X-Forwarded-Proto $http_x_forwarded_proto;
    }}",
            site.upstream()
        );
    }
    for probe in &port.probes {
        health(o, site, probe);
    }
    match port.role {
        Role::Redirect => {
            let _ = writeln!(
                o,
                "
    location / {{
        return 301 {};
    }}",
                site.https_url()
            );
        }
        Role::HealthOnly => {
            let _ = writeln!(
                o,
                "
    location / {{
        return 404;
    }}"
            );
        }
        Role::App { .. } => {}
    }
    let _ = writeln!(o, "}}");
}

fn listen(o: &mut String, site: &Site, port: &Port) {
    let p = port.port;
    let default = if port.probes.is_empty() {
        ""
    } else {
        let _ = writeln!(
            o,
            "    # default_server: the load balancer's health check sends the instance's address as
    # Host, which matches no server_name."
        );
        if port.role == Role::Redirect {
            let _ = writeln!(
                o,
                "    # Remove default_server from any other port-{p} server (Debian's
    # sites-enabled/default has one), or nginx refuses the configuration."
            );
        }
        " default_server"
    };
    if port.tls {
        let _ = writeln!(
            o,
            "    # The load balancer speaks HTTPS to this port. It does not verify the certificate,
    # so a self-signed one will do:
    #   openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN={stack}-backend \\
    #     -keyout /etc/nginx/{stack}-backend.key -out /etc/nginx/{stack}-backend.crt
    listen {p} ssl{default};
    ssl_certificate /etc/nginx/{stack}-backend.crt;
    ssl_certificate_key /etc/nginx/{stack}-backend.key;",
            stack = site.stack
        );
    } else {
        let _ = writeln!(o, "    listen {p}{default};");
    }
}

fn server_name(o: &mut String, site: &Site) {
    if site.names.is_empty() {
        let _ = writeln!(
            o,
            "    # The manifest names no host (no `dns.records`): put the site's names here.
    server_name _;"
        );
    } else {
        let _ = writeln!(o, "    server_name {};", site.names.join(" "));
    }
}

fn health(o: &mut String, site: &Site, probe: &Probe) {
    let asked = match &probe.query {
        Some(q) => format!(" (the load balancer asks for {}?{q})", probe.path),
        None => String::new(),
    };
    let home = if probe.path == "/" {
        " This is the home page: better give the check its own path (\"/health/\") in the manifest, with the Django health view there."
    } else {
        ""
    };
    let host = match site.names.first() {
        Some(name) => format!(
            "        # The check's Host is the instance's address, which Django's ALLOWED_HOSTS
        # refuses: name the site instead.
        proxy_set_header Host {name};"
        ),
        None => "        proxy_set_header Host $host;".to_owned(),
    };
    o.push('\n');
    comment(
        o,
        "    ",
        &format!(
            "The health check of {groups}{asked}: must answer {status} without basic auth or a redirect.{home} Proxied to the Django health view (the article's choice) rather than `return {status};`, so that the check fails when the application is down and the load balancer stops sending it traffic.",
            groups = groups_phrase(&probe.groups),
            status = probe.status,
        ),
    );
    let _ = writeln!(
        o,
        "    location = {path} {{
        auth_basic off;
        proxy_pass http://{upstream};
{host}
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $http_x_forwarded_proto;
    }}",
        path = probe.path,
        upstream = site.upstream()
    );
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}
