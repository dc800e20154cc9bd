use serde_json::{json, Value};

use super::*;

const EXAMPLE: &str = include_str!("../../manifests/site.example.json");

/// The example manifest with `edit` applied, validated.
fn example(edit: impl FnOnce(&mut Value)) -> Result<Manifest, String> {
    let mut v: Value = serde_json::from_str(EXAMPLE).map_err(|e| e.to_string())?;
    edit(&mut v);
    manifest::from_str("test.json", &v.to_string()).map_err(|d| d.to_string())
}

fn site_of(edit: impl FnOnce(&mut Value)) -> Result<Site, String> {
    site(&example(edit)?, "test.json").map_err(|e| e.to_string())
}

fn port(site: &Site, p: u16) -> Result<&Port, String> {
    site.ports
        .iter()
        .find(|x| x.port == p)
        .ok_or_else(|| format!("no port {p} in {:?}", site.ports))
}

#[test]
fn example_has_the_app_on_8088_and_a_redirect_on_80() -> Result<(), String> {
    let s = site_of(|_| {})?;
    let order: Vec<u16> = s.ports.iter().map(|p| p.port).collect();
    assert_eq!(order, [8088, 80]);
    let app = port(&s, 8088)?;
    assert_eq!(
        app.role,
        Role::App {
            redirect_plain: false
        }
    );
    assert_eq!(app.probes.len(), 1);
    assert_eq!(app.probes[0].path, "/health/");
    assert_eq!(app.probes[0].groups, ["app", "http"]);
    assert_eq!(app.probes[0].status, 200);
    let web = port(&s, 80)?;
    assert_eq!(web.role, Role::Redirect);
    assert!(web.probes.is_empty(), "the http group checks 8088");
    assert_eq!(s.names, ["www.example.com"]);
    assert_eq!(s.https_port, Some(443));
    assert_eq!(s.backend_groups, ["sg-0123456789abcdef0"]);
    Ok(())
}

#[test]
fn a_health_check_on_port_80_is_answered_there_and_nginx_makes_it_default() -> Result<(), String> {
    let s = site_of(|v| {
        v["target_groups"]["http"]["health_check"]["port"] = json!(80);
        v["target_groups"]["http"]["health_check"]["path"] = json!("/ping");
    })?;
    let web = port(&s, 80)?;
    assert_eq!(web.role, Role::Redirect);
    assert_eq!(web.probes.len(), 1);
    assert_eq!(web.probes[0].path, "/ping");
    let text = nginx::render(&s);
    assert!(text.contains("listen 80 default_server;"), "{text}");
    assert!(text.contains("location = /ping {"), "{text}");
    let django = django::render(&s);
    assert!(django.contains("path(\"ping\", health)"), "{django}");
    assert!(django.contains("path(\"health/\", health)"), "{django}");
    Ok(())
}

#[test]
fn a_port_only_health_checked_gets_a_server_of_its_own() -> Result<(), String> {
    let s = site_of(|v| {
        v["target_groups"]["app"]["health_check"]["port"] = json!(8089);
        v["security_groups"]["backend"]["ingress"][0]["ports"] = json!([80, 8088, 8089]);
    })?;
    let only = port(&s, 8089)?;
    assert_eq!(only.role, Role::HealthOnly);
    assert!(nginx::render(&s).contains("listen 8089 default_server;"));
    assert!(firewall::render(&s).contains("to any port 8089"));
    Ok(())
}

#[test]
fn one_port_behind_both_listeners_redirects_plain_http_by_header() -> Result<(), String> {
    let s = site_of(|v| {
        v["load_balancer"]["listeners"][0]["forward"] = json!("app");
        v["target_groups"].as_object_mut().map(|m| m.remove("http"));
    })?;
    assert_eq!(s.ports.len(), 1);
    assert_eq!(
        port(&s, 8088)?.role,
        Role::App {
            redirect_plain: true
        }
    );
    let text = nginx::render(&s);
    assert!(
        text.contains("if ($http_x_forwarded_proto = \"http\") {"),
        "{text}"
    );
    Ok(())
}

#[test]
fn without_an_https_listener_the_site_is_served_plain_and_without_hsts() -> Result<(), String> {
    let s = site_of(|v| {
        v["load_balancer"]["listeners"] =
            json!([{ "port": 80, "protocol": "HTTP", "forward": "app" }]);
        v["target_groups"].as_object_mut().map(|m| m.remove("http"));
        // A public record needs HTTPS on 443: a plain site is one without a managed record.
        v.as_object_mut().map(|m| m.remove("dns"));
    })?;
    assert_eq!(s.https_port, None);
    assert_eq!(
        port(&s, 8088)?.role,
        Role::App {
            redirect_plain: false
        }
    );
    assert!(!nginx::render(&s).contains("add_header Strict-Transport-Security"));
    Ok(())
}

#[test]
fn an_https_target_group_gets_an_ssl_listen_line() -> Result<(), String> {
    let s = site_of(|v| {
        v["target_groups"]["app"]["port"] = json!(8443);
        v["target_groups"]["app"]["protocol"] = json!("HTTPS");
        v["security_groups"]["backend"]["ingress"][0]["ports"] = json!([80, 8088, 8443]);
    })?;
    assert!(port(&s, 8443)?.tls);
    assert!(nginx::render(&s).contains("listen 8443 ssl default_server;"));
    Ok(())
}

#[test]
fn http_and_https_to_one_port_is_refused() -> Result<(), String> {
    let m = example(|v| {
        v["target_groups"]["app"]["health_check"]["protocol"] = json!("HTTPS");
    })?;
    assert!(matches!(
        site(&m, "x"),
        Err(Error::MixedProtocols { port: 8088, .. })
    ));
    Ok(())
}

#[test]
fn health_paths_that_would_need_quoting_are_refused() -> Result<(), String> {
    for bad in ["/a b", "/x;}", "/h\"", "/a/../b", "/q?x=<1>", "/x\n"] {
        let m = example(|v| v["target_groups"]["app"]["health_check"]["path"] = json!(bad))?;
        assert!(
            matches!(site(&m, "x"), Err(Error::HealthPath { ref group, .. }) if group == "app"),
            "{bad:?} was accepted"
        );
    }
    let s = site_of(|v| {
        v["target_groups"]["app"]["health_check"]["path"] = json!("/health/?full=1");
    })?;
    let probe = &port(&s, 8088)?.probes;
    assert!(probe
        .iter()
        .any(|p| p.path == "/health/" && p.query.as_deref() == Some("full=1")));
    Ok(())
}

#[test]
fn the_view_answers_a_status_every_matcher_accepts() {
    let m = |list: &[&str]| status_for(&list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
    assert_eq!(m(&["200"]), Some(200));
    assert_eq!(m(&["200-299", "200,204"]), Some(200));
    assert_eq!(m(&["204"]), Some(204));
    assert_eq!(m(&["201-299", "204"]), Some(204));
    assert_eq!(m(&["301", "302"]), None);
}

#[test]
fn names_fall_back_to_the_certificate_domain() -> Result<(), String> {
    let s = site_of(|v| {
        v.as_object_mut().map(|m| m.remove("dns"));
    })?;
    assert_eq!(s.names, ["www.example.com"]);
    assert_eq!(s.names_from, "the manifest's certificate domains");
    Ok(())
}

#[test]
fn outputs_start_by_naming_the_stack_and_the_manifest() -> Result<(), String> {
    let m = example(|_| {})?;
    for part in Part::ALL {
        let text = render(&m, "site.json", &[part]).map_err(|e| e.to_string())?;
        let head: Vec<&str> = text.lines().take_while(|l| *l != "#").collect();
        assert!(
            head[0].starts_with("# ") && head[0].contains("stack www-example"),
            "{head:?}"
        );
        assert!(
            head.join(" ")
                .contains("Generated by `reconcile backend` from site.json"),
            "{head:?}"
        );
    }
    let all = render(&m, "site.json", &Part::ALL).map_err(|e| e.to_string())?;
    assert_eq!(all.matches("\n==> ").count() + 1, 3, "{all}");
    Ok(())
}

#[test]
fn one_path_probed_on_two_ports_is_one_django_route_for_both_groups() -> Result<(), String> {
    let s = site_of(|v| {
        v["target_groups"]["http"]["health_check"]["port"] = json!(80);
    })?;
    assert_eq!(port(&s, 80)?.probes.len(), 1);
    assert_eq!(port(&s, 8088)?.probes.len(), 1);
    let probes = s.probes();
    assert_eq!(probes.len(), 1);
    assert_eq!(probes[0].groups, ["app", "http"]);
    let text = django::render(&s);
    assert_eq!(
        text.matches("path(\"health/\", health)").count(),
        1,
        "{text}"
    );
    Ok(())
}

#[test]
fn headers_set_at_the_load_balancer_are_not_added_by_nginx() -> Result<(), String> {
    let s = site_of(|v| {
        v["load_balancer"]["listeners"][1]["headers"] = json!({
            "hsts": "max-age=63072000; includeSubDomains",
            "x_content_type_options": "nosniff",
            "server": false,
        });
    })?;
    let text = nginx::render(&s);
    assert!(
        !text.contains("add_header Strict-Transport-Security"),
        "{text}"
    );
    assert!(
        text.contains(
            "# Strict-Transport-Security (max-age=63072000; includeSubDomains) is set by the load"
        ),
        "{text}"
    );
    assert!(text.contains("X-Content-Type-Options: nosniff"), "{text}");
    assert!(text.contains("server_tokens off;"), "{text}");
    // Without them, nginx keeps adding HSTS as the article's server did.
    let plain = nginx::render(&site_of(|_| {})?);
    assert!(
        plain.contains("add_header Strict-Transport-Security"),
        "{plain}"
    );
    Ok(())
}
