//! The Django output: settings that trust the load balancer's forwarded protocol, the
//! allowed host names, and a health view with its URL pattern.

use std::fmt::Write as _;

use super::{comment, Probe, Site};

pub(super) fn render(site: &Site) -> String {
    let mut o = String::new();
    comment(
        &mut o,
        "",
        &format!(
            "Django for stack {}: settings and a health view for the backends.\n{}",
            site.stack,
            site.generated()
        ),
    );
    let groups = if site.backend_groups.is_empty() {
        "the backend security group".to_owned()
    } else {
        format!("security group {}", site.backend_groups.join(", "))
    };
    let _ = writeln!(
        o,
        "#
# Deploy it before `reconcile apply`: the load balancer's health gate needs the view.

# --- settings.py (your production settings) ---
"
    );
    comment(
        &mut o,
        "",
        &format!(
            "TLS ends at the load balancer, which sets X-Forwarded-Proto to the protocol the client used (replacing any value a client sent), and nginx passes it on: with this, request.is_secure() is true for requests that came in over https. Safe only because the backends admit the load balancer alone ({groups})."
        ),
    );
    let _ = writeln!(
        o,
        "SECURE_PROXY_SSL_HEADER = (\"HTTP_X_FORWARDED_PROTO\", \"https\")\n"
    );
    match site.names.first() {
        None => {
            let _ = writeln!(
                o,
                "# The manifest names no host (no `dns.records`): list the site's names here. The
# health check's Host is the instance's address, so list the instances' private addresses
# too, or name the site in nginx's health location (`proxy_set_header Host ...`).
ALLOWED_HOSTS = []"
            );
        }
        Some(first) => {
            let hosts: Vec<String> = site.names.iter().map(|n| format!("\"{n}\"")).collect();
            comment(
                &mut o,
                "",
                &format!(
                    "The names clients use (from {}). The health check's own Host is the instance's address; nginx replaces it with {first}, so it need not be listed.",
                    site.names_from
                ),
            );
            let _ = writeln!(o, "ALLOWED_HOSTS = [{}]", hosts.join(", "));
        }
    }
    let _ = writeln!(
        o,
        "
# USE_X_FORWARDED_HOST stays off (the default): the load balancer and nginx pass the
# client's Host header through unchanged, so Django already sees the real name, while
# X-Forwarded-Host is a header any client can set."
    );
    let probes: Vec<Probe> = site.probes();
    let exempt: Vec<String> = probes
        .iter()
        .filter(|p| p.path != "/")
        .map(|p| {
            format!(
                "r\"^{}$\"",
                p.path.trim_start_matches('/').replace('.', "\\.")
            )
        })
        .collect();
    if !exempt.is_empty() {
        let _ = writeln!(
            o,
            "
# With SECURE_SSL_REDIRECT = True, the health check (plain HTTP, no X-Forwarded-Proto)
# would get a 301, which the load balancer counts as a failure: exempt its path.
SECURE_REDIRECT_EXEMPT = [{}]",
            exempt.join(", ")
        );
    }
    let statuses = probes.iter().any(|p| p.status != 200);
    let (signature, answer) = if statuses {
        (
            "health(request, status=200)",
            "HttpResponse(\"ok\" if status == 200 else \"\", status=status, content_type=\"text/plain\")",
        )
    } else {
        (
            "health(request)",
            "HttpResponse(\"ok\", content_type=\"text/plain\")",
        )
    };
    let _ = writeln!(
        o,
        "
# --- health.py (a new module next to urls.py) ---

from django.http import HttpResponse
from django.views.decorators.cache import never_cache

try:  # Django 5.1+: exempt from LoginRequiredMiddleware, if the site uses it
    from django.contrib.auth.decorators import login_not_required
except ImportError:  # older Django has no site-wide login to bypass

    def login_not_required(view):
        return view


@login_not_required
@never_cache
def {signature}:
    \"\"\"The load balancer's health check: no login, no redirect, no cache.

    Add what the site needs to work (a database query, say) once this answers; a failed
    check should answer 503.
    \"\"\"
    return {answer}
"
    );
    let _ = writeln!(
        o,
        "
# --- urls.py: before any catch-all pattern (adjust the import to where health.py is) ---

from django.urls import path

from .health import health

urlpatterns = ["
    );
    for p in &probes {
        let groups = super::groups_phrase(&p.groups);
        if p.path == "/" {
            comment(
                &mut o,
                "    ",
                &format!(
                    "The health check of {groups} probes \"/\", the home page, which must then answer {} without login or redirect. Better: set its `health_check.path` to \"/health/\" in the manifest and route this view there.",
                    p.status
                ),
            );
            continue;
        }
        let route = p.path.trim_start_matches('/');
        let extra = if statuses {
            format!(", {{\"status\": {}}}", p.status)
        } else {
            String::new()
        };
        let _ = writeln!(
            o,
            "    # The health check of {groups}.\n    path(\"{route}\", health{extra}),"
        );
    }
    let _ = writeln!(o, "    # ... your patterns\n]");
    o
}
