//! The probe gate through the real binary: a real nginx stands in for the load balancer
//! (TLS with a certificate for the record's name on one port, the redirect to https on
//! another) in front of a stub application, and `--resolve` points the probe at it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::backend::{free_port, nginx, start_nginx, stub_app_answering, Running};
use crate::emulator::{command, Emulator};
use crate::proxy::Proxy;
use crate::support::{desired, edited, repo_file, text};

/// A CA and a certificate it signed for www.example.com, as PEM files in `dir`: the CA
/// (what the probe trusts, through SSL_CERT_FILE), the certificate and its key.
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let (ca, cert, key) = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    let code = format!(
        r#"
import datetime
from cryptography import x509
from cryptography.x509.oid import NameOID
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
now = datetime.datetime.now(datetime.timezone.utc)
def key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)
ca_key = key()
ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "reconcile test CA")])
ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
      .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
      .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=2))
      .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
      .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                   data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                   crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
      .sign(ca_key, hashes.SHA256()))
leaf_key = key()
leaf = (x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "www.example.com")]))
        .issuer_name(ca_name).public_key(leaf_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("www.example.com")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256()))
open(r"{ca}", "wb").write(ca.public_bytes(serialization.Encoding.PEM))
open(r"{cert}", "wb").write(leaf.public_bytes(serialization.Encoding.PEM))
open(r"{key}", "wb").write(leaf_key.private_bytes(serialization.Encoding.PEM,
    serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()))
"#,
        ca = ca.display(),
        cert = cert.display(),
        key = key.display()
    );
    let out = std::process::Command::new(repo_file(".venv/bin/python"))
        .arg("-c")
        .arg(code)
        .output()
        .expect("the venv's python runs");
    assert!(out.status.success(), "{}", text(&out));
    (ca, cert, key)
}

/// The record's A value and type as Route53 has it now.
fn record(emu: &Emulator) -> String {
    emu.boto_output(
        "z = r53.list_hosted_zones()['HostedZones'][0]['Id']\n\
         for r in r53.list_resource_record_sets(HostedZoneId=z)['ResourceRecordSets']:\n    \
             if r['Name'] == 'www.example.com.' and r['Type'] in ('A', 'CNAME'):\n        \
                 print(r['Type'], 'alias' if 'AliasTarget' in r else [v['Value'] for v in r['ResourceRecords']])",
    )
    .trim()
    .to_owned()
}

/// The article's test before the switch, automated: with the application answering 400 on
/// `/` (a Django whose ALLOWED_HOSTS lacks the name), apply builds everything, asks
/// `https://www.example.com/` through the stand-in load balancer, and stops before the
/// switch, exit 1, naming the status, the URL and the likely cause, the record untouched
/// and the site served after every call; with the application fixed, the same apply
/// switches (and `http://` is seen to redirect to https).
/// The stand-in load balancer: nginx with TLS for www.example.com (from a test CA) on one
/// port and the redirect to https on another, in front of a stub application whose answer
/// the test sets.
struct Site {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    http: u16,
    https: u16,
    seen: Arc<Mutex<Vec<String>>>,
    status: Arc<AtomicU16>,
    _running: Running,
}

impl Site {
    /// Starts it, the application answering `status`; `None` without nginx on this machine.
    fn start(status: u16) -> Option<Site> {
        let nginx = nginx()?;
        let dir = tempfile::tempdir().unwrap();
        let (ca, cert, key) = certificates(dir.path());
        let (app, seen, status) = stub_app_answering(status);
        let (http, https) = (free_port(), free_port());
        let site = dir.path().join("lb.conf");
        std::fs::write(
            &site,
            format!(
                "server {{ listen 127.0.0.1:{http}; return 301 https://$host$request_uri; }}
server {{
    listen 127.0.0.1:{https} ssl;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    location / {{ proxy_pass http://127.0.0.1:{app}; proxy_set_header Host $host; }}
}}
",
                cert = cert.display(),
                key = key.display()
            ),
        )
        .unwrap();
        let running = start_nginx(&nginx, dir.path(), &site, &[https, http]);
        Some(Site {
            _dir: dir,
            ca,
            http,
            https,
            seen,
            status,
            _running: running,
        })
    }

    /// `reconcile apply` of `manifest` through `proxy`, the probe pointed at the site.
    fn apply(&self, proxy: &str, manifest: &Path) -> std::process::Output {
        command(
            proxy,
            &[
                "apply",
                "-f",
                manifest.to_str().unwrap(),
                "--yes",
                "--resolve",
                &format!("www.example.com:443:127.0.0.1:{}", self.https),
                "--resolve",
                &format!("www.example.com:80:127.0.0.1:{}", self.http),
            ],
        )
        .env("SSL_CERT_FILE", &self.ca)
        .output()
        .expect("the reconcile binary runs")
    }
}

#[test]
fn the_probe_refuses_the_switch_on_a_400_and_lets_it_through_once_the_page_works() {
    let Some(site) = Site::start(400) else { return };

    let emu = Emulator::start();
    let s = emu.seed(&["--ttl", "3", "--transition-ttl", "1"]);
    let manifest = edited(&s.manifest, "probed.json", |v| {
        v["dns"]["records"][0]["probe"] = serde_json::json!({"path": "/", "expect": [200]});
    });
    let before = record(&emu);
    assert!(before.starts_with("A ['"), "{before}");
    let plan = emu.reconcile(&["plan", "-f", manifest.to_str().unwrap()]);
    assert!(
        text(&plan).contains(
            "ask https://www.example.com/ through the load balancer: expect 200, and http://www.example.com/ to redirect to https"
        ),
        "{}",
        text(&plan)
    );
    let apply = |what: &str| {
        let (proxy, _) = Proxy::checked(&emu.url, desired(&manifest));
        let out = site.apply(&proxy.url, &manifest);
        proxy.assert_clean(what);
        out
    };

    let out = apply("the probe answered 400");
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    for part in [
        "https://www.example.com/ (at 127.0.0.1:",
        "answered 400, not 200",
        "ALLOWED_HOSTS",
        "www.example.com was not switched",
    ] {
        assert!(said.contains(part), "{part} not in:\n{said}");
    }
    assert_eq!(record(&emu), before, "the old path is intact");
    let asked = site.seen.lock().unwrap().clone();
    assert!(
        asked
            .iter()
            .any(|h| h.starts_with("GET / ") && h.contains("Host: www.example.com\r\n")),
        "{asked:?}"
    );

    site.status.store(200, Ordering::SeqCst);
    let out = apply("the probe answered 200");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let after = record(&emu);
    assert!(
        after.starts_with("CNAME ['") && after.contains(".elb.amazonaws.com"),
        "switched to the load balancer: {after}"
    );
    let out = emu.reconcile(&[
        "plan",
        "-f",
        manifest.to_str().unwrap(),
        "--detailed-exitcode",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

/// A page that breaks mid-cutover: the probe passes before the first step, the test turns
/// the application to 500 once the load balancer holds half the answers (CloudWatch quiet:
/// no metric data is put), and the probe asked again at the end of that bake sees it: the
/// record goes back to its old value in one change, the run exits 1 naming the URL and the
/// status, and the site is served after every call.
#[test]
fn a_page_that_breaks_mid_cutover_is_caught_by_the_probe_before_the_next_step() {
    let Some(site) = Site::start(200) else { return };
    let emu = Emulator::start();
    let s = emu.seed(&["--ttl", "3", "--transition-ttl", "1"]);
    let staged = crate::cutover::staged_in(&s.manifest, "4s", &[50, 100]);
    let manifest = edited(&staged, "probed.json", |v| {
        v["dns"]["records"][0]["probe"] = serde_json::json!({"path": "/", "expect": [200]});
    });
    let before = record(&emu);
    let plan = emu.reconcile(&["plan", "-f", manifest.to_str().unwrap()]);
    let shown = text(&plan);
    assert!(
        shown.contains(
            "unhealthy targets (at most 0), then ask https://www.example.com/ through the load balancer: expect 200"
        ),
        "{shown}"
    );
    let (proxy, shares) = crate::cutover::watched(&emu, desired(&manifest));
    let flip = {
        let (shares, status) = (Arc::clone(&shares), Arc::clone(&site.status));
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(300);
            while Instant::now() < deadline {
                if shares.lock().unwrap().contains(&50) {
                    status.store(500, Ordering::SeqCst);
                    return true;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            false
        })
    };
    let out = site.apply(&proxy.url, &manifest);
    let said = text(&out);
    assert!(
        flip.join().unwrap(),
        "the cutover never reached 50 %:\n{said}"
    );
    assert_eq!(out.status.code(), Some(1), "{said}");
    for part in [
        "https://www.example.com/ (at 127.0.0.1:",
        "answered 500, not 200",
        "www.example.com is back on its old value",
    ] {
        assert!(said.contains(part), "{part} not in:\n{said}");
    }
    proxy.assert_clean("the page broken at 50 %");
    assert_eq!(*shares.lock().unwrap(), vec![0, 50, 0]);
    assert_eq!(record(&emu), before, "the record is its old value again");
}
