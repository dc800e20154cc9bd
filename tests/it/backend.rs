//! `reconcile backend`: golden outputs through the binary, the flags, and the generated
//! nginx configuration checked by a real nginx (`nginx -t`, then served and requested).

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reconcile::model::TargetHealth;
use reconcile::render::human;

use crate::support::{assert_no_panic, reconcile, repo_file, stderr, stdout};

/// Compares `text` with tests/output/backend-`name`.txt byte for byte.
fn golden(name: &str, text: &str) {
    let path = repo_file(&format!("tests/output/backend-{name}.txt"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, text).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        want == text,
        "{} differs from the output (UPDATE_GOLDEN=1 rewrites it):\n{text}",
        path.display()
    );
}

fn backend_ok(args: &[&str]) -> String {
    let out = reconcile(args);
    assert_no_panic(&out, "backend");
    assert_eq!(out.status.code(), Some(0), "{args:?}\n{}", stderr(&out));
    stdout(&out)
}

#[test]
fn backend_of_the_example_matches_its_golden_file() {
    golden(
        "example",
        &backend_ok(&["backend", "-f", "manifests/site.example.json"]),
    );
}

#[test]
fn backend_of_the_alias_variant_matches_its_golden_file() {
    golden(
        "alias",
        &backend_ok(&["backend", "-f", "manifests/site.alias.json"]),
    );
}

#[test]
fn backend_each_flag_prints_its_section_of_the_whole() {
    let all = backend_ok(&["backend", "-f", "manifests/site.example.json"]);
    for (flag, header) in [
        ("--nginx", "==> nginx"),
        ("--django", "==> django"),
        ("--firewall", "==> firewall"),
    ] {
        let one = backend_ok(&["backend", "-f", "manifests/site.example.json", flag]);
        assert!(
            one.starts_with("# "),
            "{flag}: starts with a comment\n{one}"
        );
        assert!(one.lines().next().unwrap().contains("stack www-example"));
        assert!(!one.contains("==> "), "{flag}: no header for one part");
        let start = all.find(header).unwrap();
        let section = &all[start..];
        let body = section.split_once("\n\n").unwrap().1;
        assert!(body.starts_with(&one), "{flag}: differs from its section");
    }
}

#[test]
fn backend_flags_exclude_each_other() {
    let out = reconcile(&[
        "backend",
        "-f",
        "manifests/site.example.json",
        "--nginx",
        "--django",
    ]);
    assert_no_panic(&out, "two flags");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("cannot be used with"),
        "{}",
        stderr(&out)
    );
    let out = reconcile(&["backend", "--nginx"]);
    assert!(!out.status.success(), "-f is required");
}

#[test]
fn backend_of_an_invalid_manifest_exits_1_with_its_problems() {
    let out = reconcile(&["backend", "-f", "tests/bad/bad-protocol.json", "--nginx"]);
    assert_no_panic(&out, "invalid manifest");
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).is_empty(), "nothing on stdout");
    let err = stderr(&out);
    assert!(err.contains("nothing was sent to AWS"), "{err}");
    assert!(err.contains("error: "), "{err}");

    let out = reconcile(&["backend", "-f", "no/such/manifest.json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("cannot read the file"));
}

#[test]
fn backend_refuses_a_health_path_it_cannot_write_safely() {
    let dir = tempfile::tempdir().unwrap();
    let file = edited_example(dir.path(), |v| {
        v["target_groups"]["app"]["health_check"]["path"] = "/health/;}".into();
    });
    let out = reconcile(&["backend", "-f", file.to_str().unwrap()]);
    assert_no_panic(&out, "unsafe path");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("target_groups.app.health_check.path"),
        "{}",
        stderr(&out)
    );
}

/// The Django output is Python and the firewall output is shell, as written: parsed by
/// python3 and `bash -n` (both present wherever the emulator runs).
#[test]
fn backend_django_and_firewall_outputs_parse() {
    let dir = tempfile::tempdir().unwrap();
    let checks: [(&str, &str, &[&str]); 2] = [
        (
            "--django",
            "python3",
            &["-c", "import ast, sys; ast.parse(open(sys.argv[1]).read())"],
        ),
        // Regression: an apostrophe inside "${VPC_CIDR:?...}" broke the whole script.
        ("--firewall", "bash", &["-n"]),
    ];
    for (flag, tool, args) in checks {
        let file = dir.path().join(flag.trim_start_matches('-'));
        let text = backend_ok(&["backend", "-f", "manifests/site.example.json", flag]);
        std::fs::write(&file, text).unwrap();
        let out = Command::new(tool).args(args).arg(&file).output().unwrap();
        assert!(
            out.status.success(),
            "{tool} refuses the {flag} output:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Regression: the health gate's hint for a 401/301 names the command that fixes it.
#[test]
fn backend_is_named_by_the_hint_for_a_response_code_mismatch() {
    let t = TargetHealth {
        id: "i-0aaaaaaaaaaaaaaa1".to_owned(),
        state: reconcile::model::TargetState::Unhealthy,
        reason: Some(reconcile::model::TargetReason::ResponseCodeMismatch),
        description: Some("Health checks failed with these codes: [401]".to_owned()),
    };
    let text = human::unhealthy_target(&t);
    assert!(text.contains("`reconcile backend --nginx`"), "{text}");
}

// ---------------------------------------------------------------------------------------
// A real nginx

fn edited_example(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
    let text = std::fs::read_to_string(repo_file("manifests/site.example.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    edit(&mut v);
    let path = dir.join("site.json");
    std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    path
}

/// The nginx binary, from PATH or the sbin folders Debian puts it in. None when absent and
/// `RECONCILE_REQUIRE_NGINX` is not 1 (CI sets it, so there a missing nginx fails).
pub(crate) fn nginx() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join("nginx"))
        .find(|p| p.is_file());
    if found.is_none() {
        assert!(
            std::env::var("RECONCILE_REQUIRE_NGINX").as_deref() != Ok("1"),
            "RECONCILE_REQUIRE_NGINX=1 but there is no nginx on PATH or in /usr/sbin: install it (apt-get install nginx)"
        );
        eprintln!("notice: no nginx on PATH or in /usr/sbin: the nginx check is skipped (RECONCILE_REQUIRE_NGINX=1 makes this a failure)");
    }
    found
}

/// nginx running `site` (with [`full_conf`] around it) from `dir`, once it listens on
/// every one of `ports` on 127.0.0.1; stopped when dropped.
pub(crate) fn start_nginx(nginx: &Path, dir: &Path, site: &Path, ports: &[u16]) -> Running {
    let conf = full_conf(dir, site);
    let child = nginx_cmd(nginx, dir, &conf)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut running = Running(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    // nginx writes its pid file once it holds every listening socket: until then an answer
    // on a port may come from another test's server that took the port first (nginx then
    // retries the bind and exits).
    let pid_file = dir.join("nginx.pid");
    while !pid_file.exists()
        || ports
            .iter()
            .any(|p| TcpStream::connect(("127.0.0.1", *p)).is_err())
    {
        if let Ok(Some(status)) = running.0.try_wait() {
            panic!("nginx exited ({status}) before listening on {ports:?}");
        }
        assert!(Instant::now() < deadline, "nginx did not start listening");
        std::thread::sleep(Duration::from_millis(50));
    }
    running
}

/// A minimal complete nginx.conf around the generated file, with every path it writes
/// inside `dir`.
pub(crate) fn full_conf(dir: &Path, site_conf: &Path) -> PathBuf {
    let d = dir.display();
    let conf = format!(
        "pid {d}/nginx.pid;
error_log stderr;
daemon off;
master_process off;
events {{}}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    include {};
}}
",
        site_conf.display()
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    path
}

pub(crate) fn nginx_cmd(nginx: &Path, dir: &Path, conf: &Path) -> Command {
    let mut cmd = Command::new(nginx);
    cmd.arg("-p").arg(dir).arg("-c").arg(conf);
    cmd
}

/// The manifests whose nginx output is checked by nginx: three in manifests/ and
/// variants that take the generator's other branches.
fn nginx_cases(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut cases: Vec<(String, PathBuf)> =
        ["site.example.json", "site.alias.json", "site.modern.json"]
            .iter()
            .map(|m| (m.to_string(), repo_file(&format!("manifests/{m}"))))
            .collect();
    type Edit = fn(&mut serde_json::Value);
    let variants: [(&str, Edit); 3] = [
        ("health check on port 80", |v| {
            v["target_groups"]["http"]["health_check"]["port"] = 80.into();
            v["target_groups"]["http"]["health_check"]["path"] = "/ping".into();
        }),
        ("a port only health-checked", |v| {
            v["target_groups"]["app"]["health_check"]["port"] = 8089.into();
            // The load balancer must be let in on the health-check port too.
            if let Some(ports) =
                v["security_groups"]["backend"]["ingress"][0]["ports"].as_array_mut()
            {
                ports.push(8089.into());
            }
        }),
        ("both listeners to one port", |v| {
            v["load_balancer"]["listeners"][0]["forward"] = "app".into();
            if let Some(groups) = v["target_groups"].as_object_mut() {
                groups.remove("http");
            }
        }),
    ];
    for (i, (label, edit)) in variants.into_iter().enumerate() {
        let sub = dir.join(format!("variant{i}"));
        std::fs::create_dir(&sub).unwrap();
        cases.push((label.to_owned(), edited_example(&sub, edit)));
    }
    cases
}

#[test]
fn backend_nginx_output_passes_nginx_t() {
    let Some(nginx) = nginx() else { return };
    let manifests = tempfile::tempdir().unwrap();
    for (label, manifest) in nginx_cases(manifests.path()) {
        let dir = tempfile::tempdir().unwrap();
        let site = dir.path().join("site.conf");
        let text = backend_ok(&["backend", "-f", manifest.to_str().unwrap(), "--nginx"]);
        std::fs::write(&site, text).unwrap();
        let conf = full_conf(dir.path(), &site);
        let out = nginx_cmd(&nginx, dir.path(), &conf)
            .arg("-t")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "nginx -t failed on {label}:\n{err}");
        assert!(err.contains("test is successful"), "{label}: {err}");
        eprintln!("{label}:\n{err}");
    }
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Stands in for gunicorn: answers every request 200 "ok" and keeps each request's head.
fn stub_app() -> (u16, Arc<Mutex<Vec<String>>>) {
    let (port, seen, _) = stub_app_answering(200);
    (port, seen)
}

/// A stub application answering every request with the status the returned cell holds
/// (`200` "ok", anything else "no"), keeping each request's head.
pub(crate) fn stub_app_answering(
    status: u16,
) -> (
    u16,
    Arc<Mutex<Vec<String>>>,
    Arc<std::sync::atomic::AtomicU16>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let cell = Arc::new(std::sync::atomic::AtomicU16::new(status));
    let (keep, answer) = (seen.clone(), cell.clone());
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let head = read_head(&mut conn);
            keep.lock().unwrap().push(head);
            let status = answer.load(std::sync::atomic::Ordering::SeqCst);
            let body = if status == 200 { "ok" } else { "no" };
            let _ = conn.write_all(
                format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{body}"
                )
                .as_bytes(),
            );
        }
    });
    (port, seen, cell)
}

fn read_head(conn: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") && conn.read(&mut byte).is_ok_and(|n| n == 1) {
        buf.push(byte[0]);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// One HTTP/1.0 request; the whole response as text.
fn get(port: u16, path: &str, headers: &[&str]) -> String {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut req = format!("GET {path} HTTP/1.0\r\n");
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    conn.write_all(req.as_bytes()).unwrap();
    let mut resp = String::new();
    let _ = conn.read_to_string(&mut resp);
    resp
}

/// Kills the nginx this test started when the test ends, pass or fail.
pub(crate) struct Running(pub(crate) Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The generated servers behave as the migration needs: the application port proxies with
/// the forwarded protocol and HSTS, the health path answers 200 for a check whose Host is
/// an address (and reaches Django with the site's name), port 80 redirects to https.
#[test]
fn backend_nginx_output_serves_the_migration_for_real() {
    let Some(nginx) = nginx() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (web, app) = (free_port(), free_port());
    let manifest = edited_example(dir.path(), |v| {
        v["target_groups"]["http"]["port"] = web.into();
        v["target_groups"]["http"]["health_check"]["port"] = app.into();
        v["target_groups"]["app"]["port"] = app.into();
        v["security_groups"]["backend"]["ingress"][0]["ports"] = serde_json::json!([web, app]);
    });
    let (upstream, seen) = stub_app();
    let text = backend_ok(&["backend", "-f", manifest.to_str().unwrap(), "--nginx"]);
    assert!(text.contains("server 127.0.0.1:8000;"), "the placeholder");
    let text = text.replace(
        "server 127.0.0.1:8000;",
        &format!("server 127.0.0.1:{upstream};"),
    );
    let site = dir.path().join("site.conf");
    std::fs::write(&site, text).unwrap();
    let _running = start_nginx(&nginx, dir.path(), &site, &[app, web]);

    // The load balancer's health check: Host is the instance's address, no forwarded headers.
    let health = get(app, "/health/", &[&format!("Host: 10.0.1.23:{app}")]);
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let head = seen.lock().unwrap().last().cloned().unwrap_or_default();
    assert!(head.starts_with("GET /health/ "), "{head}");
    assert!(head.contains("Host: www.example.com\r\n"), "{head}");

    // A client's request through the HTTPS listener.
    let page = get(
        app,
        "/some/page",
        &[
            "Host: www.example.com",
            "X-Forwarded-Proto: https",
            "X-Forwarded-For: 203.0.113.9",
        ],
    );
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(
        page.contains("Strict-Transport-Security: max-age=31536000"),
        "{page}"
    );
    let head = seen.lock().unwrap().last().cloned().unwrap_or_default();
    assert!(head.contains("X-Forwarded-Proto: https\r\n"), "{head}");
    assert!(head.contains("Host: www.example.com\r\n"), "{head}");
    assert!(
        head.contains("X-Forwarded-For: 203.0.113.9, 127.0.0.1"),
        "{head}"
    );

    // A client's request through the HTTP listener: redirected, the health path too (its
    // check is on the application port).
    for path in ["/some/page?x=1", "/health/"] {
        let redirect = get(web, path, &["Host: www.example.com"]);
        assert!(redirect.starts_with("HTTP/1.1 301"), "{redirect}");
        assert!(
            redirect.contains(&format!("Location: https://www.example.com{path}\r\n")),
            "{redirect}"
        );
    }
}
