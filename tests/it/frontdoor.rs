//! The modern front door through the real binary on the emulator: port 80 redirected to
//! https by the load balancer itself, with the availability invariant checked after every
//! mutating call (a listener that redirects to https counts as serving its port).

use std::path::Path;

use crate::emulator::Emulator;
use crate::lifecycle::apply_checked;
use crate::support::{edited, text};

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The example manifest's edit to the modern front door: port 80 redirected to https by
/// the load balancer itself, no port-80 target group, the backend admitting the load
/// balancer on the app's port only (as manifests/site.redirect.json).
pub fn redirect_at_the_load_balancer(v: &mut serde_json::Value) {
    v["load_balancer"]["listeners"][0] =
        serde_json::json!({ "port": 80, "protocol": "HTTP", "redirect": "https" });
    v["target_groups"].as_object_mut().unwrap().remove("http");
    v["security_groups"]["backend"]["ingress"][0]["ports"] = serde_json::json!([8088]);
}

/// Listener 80 of the stack's load balancer answers a 301 to https on 443, keeping host,
/// path and query, and no target group of the stack serves port 80.
fn assert_redirects(emu: &Emulator) {
    emu.boto(
        "lb = [l for l in elb.describe_load_balancers()['LoadBalancers'] if l['LoadBalancerName'] == 'www-example'][0]\n\
         ls = elb.describe_listeners(LoadBalancerArn=lb['LoadBalancerArn'])['Listeners']\n\
         l80 = [l for l in ls if l['Port'] == 80][0]\n\
         a = l80['DefaultActions']\n\
         assert len(a) == 1 and a[0]['Type'] == 'redirect', a\n\
         r = a[0]['RedirectConfig']\n\
         assert (r['Protocol'], r['Port'], r['StatusCode']) == ('HTTPS', '443', 'HTTP_301'), r\n\
         assert (r.get('Host', '#{host}'), r.get('Path', '/#{path}'), r.get('Query', '#{query}')) == ('#{host}', '/#{path}', '#{query}'), r\n\
         names = [t['TargetGroupName'] for t in elb.describe_target_groups()['TargetGroups']]\n\
         assert 'www-example-http' not in names and 'www-example-http-r' not in names, names",
    );
}

/// The article's migration written by `init --redirect-at-lb`: one apply from the starting
/// point, the site served after every call, a clean plan, port 80 redirected at the load
/// balancer and the backends admitting it on the app's port only.
#[test]
fn the_migration_with_the_redirect_at_the_load_balancer() {
    let emu = Emulator::start();
    let s = emu.seed(&["--ttl", "3", "--transition-ttl", "1"]);
    let out_file = s.manifest.with_file_name("modern.json");
    let out = emu.reconcile(&[
        "init",
        "--name",
        "www.example.com",
        "--redirect-at-lb",
        "-o",
        path(&out_file),
    ]);
    assert_eq!(out.status.code(), Some(0), "init: {}", text(&out));
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out_file).unwrap()).unwrap();
    assert_eq!(
        m["load_balancer"]["listeners"][0]["redirect"], "https",
        "{m}"
    );
    assert!(m["target_groups"].get("http").is_none(), "{m}");
    // The backend half says the load balancer redirects: no port-80 server.
    let out = emu.reconcile(&["backend", "-f", path(&out_file), "--nginx"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let nginx = String::from_utf8_lossy(&out.stdout);
    assert!(
        nginx.contains("answers every request on it with a 301"),
        "{nginx}"
    );
    assert!(
        !nginx.contains("listen 80;") && !nginx.contains("listen 80 "),
        "{nginx}"
    );

    apply_checked(
        &emu,
        &out_file,
        "the migration with the redirect at the load balancer",
    );
    assert_redirects(&emu);
    let backend = s.ids["security_group"].as_str().unwrap();
    emu.boto(&format!(
        "g = ec2.describe_security_groups(GroupIds=['{backend}'])['SecurityGroups'][0]\n\
         from_groups = sorted(p['FromPort'] for p in g['IpPermissions'] if p.get('UserIdGroupPairs'))\n\
         assert from_groups == [8088], from_groups"
    ));
}

/// A converged stack moves port 80 from forwarding to redirecting, then back, each one
/// apply under the invariant and clean after.
#[test]
fn port_80_moves_to_a_redirect_and_back_keeping_the_site_served() {
    let emu = Emulator::start();
    let s = emu.seed(&["--ttl", "3", "--transition-ttl", "1"]);
    let out = emu.reconcile(&["apply", "-f", path(&s.manifest), "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let redirect = edited(&s.manifest, "redirect.json", redirect_at_the_load_balancer);
    let ops = apply_checked(&emu, &redirect, "forward to redirect");
    let at = |op: &str| ops.iter().position(|o| o == op).unwrap_or(usize::MAX);
    assert!(at("ModifyListener") < at("DeleteTargetGroup"), "{ops:?}");
    assert_redirects(&emu);
    let ops = apply_checked(&emu, &s.manifest, "redirect back to forward");
    let at = |op: &str| ops.iter().position(|o| o == op).unwrap_or(usize::MAX);
    assert!(at("CreateTargetGroup") < at("ModifyListener"), "{ops:?}");
}

/// The example's modern headers on the HTTPS listener (443 is `listeners[1]`).
pub fn hsts_and_friends(v: &mut serde_json::Value) {
    v["load_balancer"]["listeners"][1]["headers"] = serde_json::json!({
        "hsts": "max-age=31536000; includeSubDomains",
        "x_content_type_options": "nosniff",
        "server": false,
    });
}

/// Listener 443's TLS policy and response-header attributes as AWS describes them.
fn tls_and_headers(emu: &Emulator) -> serde_json::Value {
    let out = emu.boto_output(
        "import json\n\
         lb = [l for l in elb.describe_load_balancers()['LoadBalancers'] if l['LoadBalancerName'] == 'www-example'][0]\n\
         l = [l for l in elb.describe_listeners(LoadBalancerArn=lb['LoadBalancerArn'])['Listeners'] if l['Port'] == 443][0]\n\
         attrs = elb.describe_listener_attributes(ListenerArn=l['ListenerArn'])['Attributes']\n\
         print(json.dumps({'policy': l['SslPolicy'], 'arn': l['ListenerArn'], 'attrs': {a['Key']: a['Value'] for a in attrs if a['Key'].startswith('routing.http.response.')}}))",
    );
    serde_json::from_str(out.trim()).unwrap()
}

/// Listener 443 as [`hsts_and_friends`] leaves it: the TLS 1.3 policy and HSTS; returns
/// what AWS describes.
fn modern_443(emu: &Emulator) -> serde_json::Value {
    let live = tls_and_headers(emu);
    assert_eq!(
        live["policy"], "ELBSecurityPolicy-TLS13-1-2-2021-06",
        "{live}"
    );
    assert_eq!(
        live["attrs"][HSTS], "max-age=31536000; includeSubDomains",
        "{live}"
    );
    live
}

const HSTS: &str = "routing.http.response.strict_transport_security.header_value";
const XFO: &str = "routing.http.response.x_frame_options.header_value";
const SERVER: &str = "routing.http.response.server.enabled";

/// The modern front door from the starting point in one apply (the site served after every
/// call): the TLS 1.3 policy and the headers on 443; then drift on the policy and the
/// headers (HSTS dropped, X-Frame-Options added by hand) found by `plan
/// --detailed-exitcode` and repaired; then HSTS left out of the manifest is removed.
#[test]
fn headers_and_the_tls_policy_are_set_drift_is_repaired_and_a_header_removed() {
    let emu = Emulator::start();
    let s = emu.seed(&["--ttl", "3", "--transition-ttl", "1"]);
    let modern = edited(&s.manifest, "modern.json", |v| {
        redirect_at_the_load_balancer(v);
        hsts_and_friends(v);
    });
    apply_checked(&emu, &modern, "the migration to the modern front door");
    assert_redirects(&emu);
    let live = modern_443(&emu);
    assert_eq!(live["attrs"][SERVER], "false", "{live}");

    // Drift by hand: the API's old policy, HSTS gone, a header the manifest does not set.
    let arn = live["arn"].as_str().unwrap();
    emu.boto(&format!(
        "elb.modify_listener(ListenerArn='{arn}', SslPolicy='ELBSecurityPolicy-2016-08')\n\
         elb.modify_listener_attributes(ListenerArn='{arn}', Attributes=[{{'Key': '{HSTS}', 'Value': ''}}, {{'Key': '{XFO}', 'Value': 'SAMEORIGIN'}}])"
    ));
    let out = emu.reconcile(&["plan", "-f", path(&modern), "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(2), "drift: {}", text(&out));
    let shown = text(&out);
    for said in [
        "ssl_policy: ELBSecurityPolicy-2016-08 → ELBSecurityPolicy-TLS13-1-2-2021-06",
        "headers.hsts",
        "headers.x_frame_options",
    ] {
        assert!(shown.contains(said), "{said} not in:\n{shown}");
    }
    let ops = apply_checked(&emu, &modern, "the drift repaired");
    assert_eq!(
        ops,
        vec!["ModifyListener", "ModifyListenerAttributes"],
        "{ops:?}"
    );
    let live = modern_443(&emu);
    assert_eq!(live["attrs"][XFO], "", "{live}");

    // HSTS left out of the manifest: removed from the listener, the others kept.
    let without = edited(&modern, "without-hsts.json", |v| {
        v["load_balancer"]["listeners"][1]["headers"]
            .as_object_mut()
            .unwrap()
            .remove("hsts");
    });
    let ops = apply_checked(&emu, &without, "HSTS removed");
    assert_eq!(ops, vec!["ModifyListenerAttributes"], "{ops:?}");
    let live = tls_and_headers(&emu);
    assert_eq!(live["attrs"][HSTS], "", "{live}");
    assert_eq!(live["attrs"][SERVER], "false", "{live}");
}

/// The hardened load balancer: deletion protection, a longer idle timeout.
pub fn hardened(v: &mut serde_json::Value) {
    v["load_balancer"]["attributes"] =
        serde_json::json!({ "deletion_protection": true, "idle_timeout": 120 });
}

/// The stack's load balancer's attributes as AWS describes them.
fn lb_attributes(emu: &Emulator) -> serde_json::Value {
    let out = emu.boto_output(
        "import json\n\
         lb = [l for l in elb.describe_load_balancers()['LoadBalancers'] if l['LoadBalancerName'] == 'www-example'][0]\n\
         attrs = elb.describe_load_balancer_attributes(LoadBalancerArn=lb['LoadBalancerArn'])['Attributes']\n\
         print(json.dumps({'arn': lb['LoadBalancerArn'], 'attrs': {a['Key']: a['Value'] for a in attrs}}))",
    );
    serde_json::from_str(out.trim()).unwrap()
}

const DROP: &str = "routing.http.drop_invalid_header_fields.enabled";

/// Load-balancer attributes from the starting point in one apply (invalid header fields
/// dropped by default, deletion protection and the idle timeout as declared); drift on
/// two of them found and repaired; then the way back deletes the protected load balancer
/// after turning its protection off, a step of its own.
#[test]
fn load_balancer_attributes_are_set_drift_repaired_and_protection_lifted_before_a_delete() {
    let emu = Emulator::start();
    let s = emu.seed(&["--ttl", "3", "--transition-ttl", "1"]);
    let manifest = edited(&s.manifest, "hardened.json", hardened);
    apply_checked(&emu, &manifest, "the migration, hardened");
    let live = lb_attributes(&emu);
    assert_eq!(live["attrs"][DROP], "true", "{live}");
    assert_eq!(
        live["attrs"]["deletion_protection.enabled"], "true",
        "{live}"
    );
    assert_eq!(
        live["attrs"]["idle_timeout.timeout_seconds"], "120",
        "{live}"
    );

    let arn = live["arn"].as_str().unwrap();
    emu.boto(&format!(
        "elb.modify_load_balancer_attributes(LoadBalancerArn='{arn}', Attributes=[{{'Key': '{DROP}', 'Value': 'false'}}, {{'Key': 'idle_timeout.timeout_seconds', 'Value': '30'}}])"
    ));
    let out = emu.reconcile(&["plan", "-f", path(&manifest), "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(2), "drift: {}", text(&out));
    let shown = text(&out);
    for said in [
        "attributes.drop_invalid_header_fields: false → true",
        "attributes.idle_timeout: 30 → 120",
    ] {
        assert!(shown.contains(said), "{said} not in:\n{shown}");
    }
    let ops = apply_checked(&emu, &manifest, "attribute drift repaired");
    assert_eq!(ops, vec!["ModifyLoadBalancerAttributes"], "{ops:?}");

    // The way back: the plan shows the protection lifted, and lifts it right before the
    // delete.
    let direct = crate::lifecycle::init_direct(&emu, &s);
    let out = emu.reconcile(&["plan", "-f", path(&direct)]);
    let shown = text(&out);
    assert!(
        shown.contains("attributes.deletion_protection: true → false"),
        "{shown}"
    );
    let ops = apply_checked(&emu, &direct, "the way back from a protected load balancer");
    let at = |op: &str| ops.iter().rposition(|o| o == op).unwrap_or(usize::MAX);
    assert!(
        at("ModifyLoadBalancerAttributes") < at("DeleteLoadBalancer"),
        "{ops:?}"
    );
}

/// The example's certificate requested by the stack instead of found.
pub fn requested_certificate(v: &mut serde_json::Value) {
    v["certificates"]["site"] = serde_json::json!({ "domain": "www.example.com", "request": true });
}

/// The seeded account without its issued certificate: a requested one is the only way.
pub fn without_issued_certificates(emu: &Emulator) {
    emu.boto_output(
        "acm = boto3.client('acm', **kw)\n\
         for c in acm.list_certificates()['CertificateSummaryList']:\n    acm.delete_certificate(CertificateArn=c['CertificateArn'])",
    );
}

/// The article's migration to the modern front door (redirect at the load balancer,
/// headers, a requested certificate) from the starting point with no certificate in ACM:
/// one apply requests it, writes its validation record into the zone, waits until ACM has
/// issued it, and only then gives it to the HTTPS listener; the site served after every
/// call, the plan clean after.
#[test]
fn the_modern_front_door_with_a_requested_certificate_converges_in_one_apply() {
    let emu = Emulator::start();
    let s = emu.seed(&["--ttl", "3", "--transition-ttl", "1"]);
    without_issued_certificates(&emu);
    let modern = edited(&s.manifest, "modern.json", |v| {
        redirect_at_the_load_balancer(v);
        hsts_and_friends(v);
        requested_certificate(v);
    });
    let out = emu.reconcile(&["plan", "-f", path(&modern)]);
    let shown = text(&out);
    for said in [
        "+ certificate site",
        "wait until ACM has issued certificate \"site\"",
    ] {
        assert!(shown.contains(said), "{said} not in:\n{shown}");
    }
    let ops = apply_checked(
        &emu,
        &modern,
        "the modern front door, certificate requested",
    );
    let at = |op: &str| ops.iter().position(|o| o == op).unwrap_or(usize::MAX);
    assert!(at("RequestCertificate") < at("CreateListener"), "{ops:?}");
    assert_redirects(&emu);
    modern_443(&emu);
    emu.boto(
        "acm = boto3.client('acm', **kw)\n\
         lb = [l for l in elb.describe_load_balancers()['LoadBalancers'] if l['LoadBalancerName'] == 'www-example'][0]\n\
         l = [l for l in elb.describe_listeners(LoadBalancerArn=lb['LoadBalancerArn'])['Listeners'] if l['Port'] == 443][0]\n\
         c = acm.describe_certificate(CertificateArn=l['Certificates'][0]['CertificateArn'])['Certificate']\n\
         assert c['Type'] == 'AMAZON_ISSUED' and c['Status'] == 'ISSUED', c\n\
         rr = c['DomainValidationOptions'][0]['ResourceRecord']\n\
         z = r53.list_hosted_zones()['HostedZones'][0]['Id']\n\
         got = r53.list_resource_record_sets(HostedZoneId=z, StartRecordName=rr['Name'], StartRecordType='CNAME', MaxItems='1')['ResourceRecordSets'][0]\n\
         assert got['Name'] == rr['Name'] and got['ResourceRecords'][0]['Value'].rstrip('.') == rr['Value'].rstrip('.'), (got, rr)",
    );
}

/// The certificate of listener 443 of the stack's load balancer.
fn listener_443_certificate(emu: &Emulator) -> String {
    emu.boto_output(
        "lb = [l for l in elb.describe_load_balancers()['LoadBalancers'] if l['LoadBalancerName'] == 'www-example'][0]\n\
         l = [l for l in elb.describe_listeners(LoadBalancerArn=lb['LoadBalancerArn'])['Listeners'] if l['Port'] == 443][0]\n\
         print(l['Certificates'][0]['CertificateArn'])",
    )
    .trim()
    .to_owned()
}

/// The article's migration with its certificate uploaded to IAM, not ACM: `init` finds it
/// and pins it by ARN, one apply converges with the site served after every call; then a
/// move to a certificate the stack requests from ACM swaps the listener's certificate in
/// place (no listener is deleted, so 443 never stops answering) and leaves the IAM one,
/// which the stack does not own, where it is.
#[test]
fn the_article_s_iam_certificate_serves_and_later_gives_way_to_a_requested_one() {
    let emu = Emulator::start();
    let s = emu.seed(&["--ttl", "3", "--transition-ttl", "1", "--iam-cert"]);
    let iam_arn = s.ids["certificate_arn"].as_str().unwrap().to_owned();
    assert!(iam_arn.starts_with("arn:aws:iam::"), "{iam_arn}");
    let out_file = s.manifest.with_file_name("init.json");
    let out = emu.reconcile(&["init", "--name", "www.example.com", "-o", path(&out_file)]);
    assert_eq!(out.status.code(), Some(0), "init: {}", text(&out));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains(&format!("certificate: {iam_arn} (IAM server certificate")),
        "{said}"
    );
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out_file).unwrap()).unwrap();
    assert_eq!(m["certificates"]["site"]["arn"], iam_arn.as_str(), "{m}");

    apply_checked(&emu, &out_file, "the migration on the IAM certificate");
    assert_eq!(listener_443_certificate(&emu), iam_arn);

    let acm = edited(&out_file, "acm.json", requested_certificate);
    let ops = apply_checked(&emu, &acm, "from the IAM certificate to a requested one");
    let at = |op: &str| ops.iter().position(|o| o == op).unwrap_or(usize::MAX);
    assert!(at("RequestCertificate") < at("ModifyListener"), "{ops:?}");
    assert!(
        !ops.iter()
            .any(|o| o == "DeleteListener" || o == "DeleteServerCertificate"),
        "{ops:?}"
    );
    let now = listener_443_certificate(&emu);
    assert!(now.starts_with("arn:aws:acm:"), "{now}");
    emu.boto(
        "iam = boto3.client('iam', **kw)\n\
         names = [c['ServerCertificateName'] for c in iam.list_server_certificates()['ServerCertificateMetadataList']]\n\
         assert names == ['www-example'], names",
    );
}

/// A certificate the stack requested gives way when the manifest asks for other names:
/// through the real binary, the new one is requested (tagged as the stack's), the listener
/// moves to it in place once ACM has issued it, and only then is the old one deleted; the
/// site served after every call, the plan clean after.
#[test]
fn a_certificate_the_stack_requested_is_deleted_once_its_successor_serves() {
    let emu = Emulator::start();
    let s = emu.seed(&["--ttl", "3", "--transition-ttl", "1"]);
    without_issued_certificates(&emu);
    let first = edited(&s.manifest, "requested.json", requested_certificate);
    apply_checked(&emu, &first, "the migration on a requested certificate");
    let old = listener_443_certificate(&emu);
    let more = edited(&first, "more-names.json", |v| {
        v["certificates"]["site"]["alternative_names"] = serde_json::json!(["static.example.com"]);
    });
    let ops = apply_checked(&emu, &more, "to a certificate for one name more");
    let at = |op: &str| ops.iter().position(|o| o == op).unwrap_or(usize::MAX);
    assert!(at("RequestCertificate") < at("ModifyListener"), "{ops:?}");
    assert!(at("ModifyListener") < at("DeleteCertificate"), "{ops:?}");
    assert!(!ops.iter().any(|o| o == "DeleteListener"), "{ops:?}");
    let now = listener_443_certificate(&emu);
    assert_ne!(now, old);
    emu.boto(&format!(
        "acm = boto3.client('acm', **kw)\n\
         arns = [c['CertificateArn'] for c in acm.list_certificates()['CertificateSummaryList']]\n\
         assert '{old}' not in arns and '{now}' in arns, arns\n\
         tags = {{t['Key']: t.get('Value') for t in acm.list_tags_for_certificate(CertificateArn='{now}')['Tags']}}\n\
         assert tags.get('reconcile:stack') == 'www-example' and tags.get('reconcile:certificate') == 'site', tags"
    ));
    let out = emu.reconcile(&["plan", "-f", path(&more), "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

/// A certificate about to expire is drift though no change repairs it: `plan
/// --detailed-exitcode` exits 2 and says when it expires; the same plan with a certificate
/// valid for a year exits 0.
#[test]
fn an_expiring_certificate_makes_drift_detection_exit_2() {
    let emu = Emulator::start();
    let s = emu.seed(&["--ttl", "3", "--transition-ttl", "1"]);
    apply_checked(&emu, &s.manifest, "the migration");
    let plan = || emu.reconcile(&["plan", "-f", path(&s.manifest), "--detailed-exitcode"]);
    let out = plan();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let arn = listener_443_certificate(&emu);
    // Imported again into the same ARN, valid for ten more days.
    emu.boto(&format!(
        "import datetime\n\
         from cryptography import x509\n\
         from cryptography.x509.oid import NameOID\n\
         from cryptography.hazmat.primitives import hashes, serialization\n\
         from cryptography.hazmat.primitives.asymmetric import rsa\n\
         key = rsa.generate_private_key(public_exponent=65537, key_size=2048)\n\
         name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'www.example.com')])\n\
         now = datetime.datetime.now(datetime.timezone.utc)\n\
         cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())\n\
             .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=355))\n\
             .not_valid_after(now + datetime.timedelta(days=10))\n\
             .add_extension(x509.SubjectAlternativeName([x509.DNSName('www.example.com')]), critical=False)\n\
             .sign(key, hashes.SHA256()))\n\
         acm = boto3.client('acm', **kw)\n\
         acm.import_certificate(CertificateArn='{arn}', Certificate=cert.public_bytes(serialization.Encoding.PEM),\n\
             PrivateKey=key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()))"
    ));
    let out = plan();
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(2), "{shown}");
    assert!(shown.contains("within 30 days"), "{shown}");
    assert!(shown.contains(&arn), "{shown}");
    let out = emu.reconcile(&["plan", "-f", path(&s.manifest), "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["stacks"][0]["warnings"][0]["drift"], true, "{doc}");
}
