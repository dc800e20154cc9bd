//! Drift made behind the tool's back on the emulator, one case after another on a converged
//! stack: `plan --detailed-exitcode` finds it (exit 2), `apply` repairs it through a proxy
//! that checks the availability invariant after every mutating call, and the next plan is
//! clean. A drift that leaves the site serving must be repaired without a moment where it
//! does not; one that already broke it must leave it serving once repaired. A resource
//! that lost the stack's tag is not the stack's any more: the plan is blocked and nothing
//! is changed. And changes of the manifest itself (CNAME to alias and back, tags, health
//! check, targets) are applied under the same checker.

use crate::emulator::Emulator;
use crate::proxy::Proxy;
use crate::support::{desired, edited, repo_file, text};

/// Names every case's script can use: the load balancer, its listeners by port, target
/// groups by name, the load balancer's group, and `tcp(port, cidr=, group=)` permissions.
fn prelude() -> String {
    let scripts = repo_file("scripts");
    format!(
        "import sys\nsys.path.insert(0, {:?})\n{PRELUDE}",
        scripts.display().to_string()
    )
}

const PRELUDE: &str = "\
acm = boto3.client('acm', **kw)
lb = elb.describe_load_balancers(Names=['www-example'])['LoadBalancers'][0]
lbarn = lb['LoadBalancerArn']
listeners = {l['Port']: l for l in elb.describe_listeners(LoadBalancerArn=lbarn)['Listeners']}
tgs = {t['TargetGroupName']: t['TargetGroupArn'] for t in elb.describe_target_groups()['TargetGroups']}
lbsg = ec2.describe_security_groups(Filters=[{'Name': 'group-name', 'Values': ['www-example-lb']}])['SecurityGroups'][0]['GroupId']
def tcp(port, cidr=None, group=None):
    p = {'IpProtocol': 'tcp', 'FromPort': port, 'ToPort': port}
    if cidr:
        p['IpRanges'] = [{'CidrIp': cidr}]
    if group:
        p['UserIdGroupPairs'] = [{'GroupId': group}]
    return [p]
";

/// Whether the drift already broke the site (so the invariant can only hold once the
/// repair is made), or left it serving (so it must hold after every call).
#[derive(Clone, Copy, PartialEq)]
enum Site {
    Serving,
    Broken,
}

struct Case {
    name: &'static str,
    site: Site,
    script: String,
    /// An operation the repair must include.
    repair: &'static str,
}

fn cases(ids: &serde_json::Value) -> Vec<Case> {
    let backend = ids["security_group"].as_str().unwrap();
    let instance = ids["instances"][1].as_str().unwrap();
    let subnet = ids["subnets"][0].as_str().unwrap();
    let ami = ids["ami"].as_str().unwrap();
    let zone = ids["zone_id"].as_str().unwrap();
    let ip = ids["eip"]["public_ip"].as_str().unwrap();
    let vpc = ids["vpc"].as_str().unwrap();
    let case = |name, site, script: String, repair| Case {
        name,
        site,
        script,
        repair,
    };
    vec![
        case(
            "backend reopened to the world on 443",
            Site::Serving,
            format!("ec2.authorize_security_group_ingress(GroupId='{backend}', IpPermissions=tcp(443, cidr='0.0.0.0/0'))"),
            "RevokeSecurityGroupIngress",
        ),
        case(
            "an extra rule on the load balancer's group",
            Site::Serving,
            "ec2.authorize_security_group_ingress(GroupId=lbsg, IpPermissions=tcp(8080, cidr='0.0.0.0/0'))".into(),
            "RevokeSecurityGroupIngress",
        ),
        case(
            "443 closed on the load balancer's group",
            Site::Broken,
            "ec2.revoke_security_group_ingress(GroupId=lbsg, IpPermissions=tcp(443, cidr='0.0.0.0/0'))".into(),
            "AuthorizeSecurityGroupIngress",
        ),
        case(
            "the backend no longer lets the load balancer in on 8088",
            Site::Broken,
            format!("ec2.revoke_security_group_ingress(GroupId='{backend}', IpPermissions=tcp(8088, group=lbsg))"),
            "AuthorizeSecurityGroupIngress",
        ),
        case(
            "listener 80 deleted",
            Site::Broken,
            "elb.delete_listener(ListenerArn=listeners[80]['ListenerArn'])".into(),
            "CreateListener",
        ),
        case(
            "listener 443 forwards to the wrong group",
            Site::Serving,
            "elb.modify_listener(ListenerArn=listeners[443]['ListenerArn'], DefaultActions=[{'Type': 'forward', 'TargetGroupArn': tgs['www-example-http']}])".into(),
            "ModifyListener",
        ),
        case(
            "listener 443 serves another certificate",
            Site::Serving,
            "from seed import self_signed_cert\n\
             cert, key = self_signed_cert('other.example.org')\n\
             arn = acm.import_certificate(Certificate=cert, PrivateKey=key)['CertificateArn']\n\
             elb.modify_listener(ListenerArn=listeners[443]['ListenerArn'], Certificates=[{'CertificateArn': arn}])".into(),
            "ModifyListener",
        ),
        case(
            "a target deregistered",
            Site::Serving,
            format!("elb.deregister_targets(TargetGroupArn=tgs['www-example-app'], Targets=[{{'Id': '{instance}'}}])"),
            "RegisterTargets",
        ),
        case(
            "a stranger registered as a target",
            Site::Serving,
            format!("i = ec2.run_instances(ImageId='{ami}', MinCount=1, MaxCount=1, SubnetId='{subnet}')['Instances'][0]['InstanceId']\n\
                     elb.register_targets(TargetGroupArn=tgs['www-example-http'], Targets=[{{'Id': i}}])"),
            "DeregisterTargets",
        ),
        case(
            "the health check changed",
            Site::Serving,
            "elb.modify_target_group(TargetGroupArn=tgs['www-example-app'], HealthCheckPath='/', Matcher={'HttpCode': '200-399'}, HealthCheckIntervalSeconds=10, HealthyThresholdCount=5)".into(),
            "ModifyTargetGroup",
        ),
        case(
            "a tag changed on a target group",
            Site::Serving,
            "elb.add_tags(ResourceArns=[tgs['www-example-http']], Tags=[{'Key': 'owner', 'Value': 'someone-else'}])".into(),
            "AddTags",
        ),
        case(
            "the record's TTL raised",
            Site::Serving,
            format!("r53.change_resource_record_sets(HostedZoneId='{zone}', ChangeBatch={{'Changes': [{{'Action': 'UPSERT', 'ResourceRecordSet': {{'Name': 'www.example.com', 'Type': 'CNAME', 'TTL': 60, 'ResourceRecords': [{{'Value': lb['DNSName']}}]}}}}]}})"),
            "ChangeResourceRecordSets",
        ),
        case(
            "the record pointed back at the old address",
            Site::Broken,
            format!("r53.change_resource_record_sets(HostedZoneId='{zone}', ChangeBatch={{'Changes': [\n\
                     {{'Action': 'DELETE', 'ResourceRecordSet': {{'Name': 'www.example.com', 'Type': 'CNAME', 'TTL': 3, 'ResourceRecords': [{{'Value': lb['DNSName']}}]}}}},\n\
                     {{'Action': 'CREATE', 'ResourceRecordSet': {{'Name': 'www.example.com', 'Type': 'A', 'TTL': 1, 'ResourceRecords': [{{'Value': '{ip}'}}]}}}}]}})"),
            "ChangeResourceRecordSets",
        ),
        case(
            "the load balancer put in another group",
            Site::Broken,
            format!("default = ec2.describe_security_groups(Filters=[{{'Name': 'vpc-id', 'Values': ['{vpc}']}}, {{'Name': 'group-name', 'Values': ['default']}}])['SecurityGroups'][0]['GroupId']\n\
                     elb.set_security_groups(LoadBalancerArn=lbarn, SecurityGroups=[default])"),
            "SetSecurityGroups",
        ),
        case(
            "a target group deleted with its listener",
            Site::Broken,
            "elb.delete_listener(ListenerArn=listeners[80]['ListenerArn'])\n\
             elb.delete_target_group(TargetGroupArn=tgs['www-example-http'])".into(),
            "CreateTargetGroup",
        ),
        case(
            "the load balancer deleted",
            Site::Broken,
            "elb.delete_load_balancer(LoadBalancerArn=lbarn)".into(),
            "CreateLoadBalancer",
        ),
    ]
}

#[test]
fn drift_is_found_and_repaired_keeping_the_site_up() {
    let emu = Emulator::start();
    let s = emu.seed(&["--ttl", "3", "--transition-ttl", "1"]);
    let manifest = s.manifest.to_str().unwrap();
    let out = emu.reconcile(&["apply", "-f", manifest, "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    for case in cases(&s.ids) {
        let name = case.name;
        let out = emu.reconcile(&["plan", "-f", manifest, "--detailed-exitcode"]);
        assert_eq!(out.status.code(), Some(0), "before {name}:\n{}", text(&out));

        emu.boto(&format!("{}{}", prelude(), case.script));
        let out = emu.reconcile(&["plan", "-f", manifest, "--detailed-exitcode"]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{name} not found:\n{}",
            text(&out)
        );

        let (proxy, inv) = Proxy::checked(&emu.url, desired(&s.manifest));
        let out = emu.reconcile_at(&proxy.url, &["apply", "-f", manifest, "--yes"]);
        assert_eq!(out.status.code(), Some(0), "{name}: {}", text(&out));

        let ops: Vec<String> = proxy
            .mutating_calls()
            .into_iter()
            .map(|c| c.operation)
            .collect();
        assert!(
            ops.iter().any(|o| o == case.repair),
            "{name}: no {} in {ops:?}",
            case.repair
        );
        let failed = proxy.failed_mutations();
        assert!(failed.is_empty(), "{name}: failed calls: {failed:?}");
        let log = proxy.log.lock().unwrap();
        match case.site {
            Site::Serving => assert!(
                log.violations.is_empty(),
                "{name}: the site stopped serving during the repair: {:#?}\n{ops:?}",
                log.violations
            ),
            Site::Broken => assert_eq!(
                inv.lock().unwrap().check(),
                None,
                "{name}: still not serving after the repair ({ops:?})"
            ),
        }
        drop(log);
        let out = emu.reconcile(&["plan", "-f", manifest, "--detailed-exitcode"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{name}: not converged after one apply:\n{}",
            text(&out)
        );
    }
}

#[test]
fn a_resource_that_lost_the_stacks_tag_is_left_alone() {
    let emu = Emulator::start();
    let s = emu.seed(&["--ttl", "3", "--transition-ttl", "1"]);
    let manifest = s.manifest.to_str().unwrap();
    let out = emu.reconcile(&["apply", "-f", manifest, "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // Someone takes the target group over, and points its health check elsewhere.
    emu.boto(&format!(
        "{}elb.remove_tags(ResourceArns=[tgs['www-example-app']], TagKeys=['reconcile:stack'])\n\
         elb.modify_target_group(TargetGroupArn=tgs['www-example-app'], HealthCheckPath='/other/')",
        prelude()
    ));
    let out = emu.reconcile(&["plan", "-f", manifest, "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(1), "blocked:\n{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("www-example-app"),
        "names the resource:\n{said}"
    );

    let proxy = Proxy::start(&emu.url, Box::new(|_| None));
    let out = emu.reconcile_at(&proxy.url, &["apply", "-f", manifest, "--yes"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let touched: Vec<String> = proxy
        .mutating_calls()
        .into_iter()
        .map(|c| c.operation)
        .collect();
    assert!(touched.is_empty(), "changed: {touched:?}");
    emu.boto(&format!(
        "{}g = elb.describe_target_groups(TargetGroupArns=[tgs['www-example-app']])['TargetGroups'][0]\n\
         assert g['HealthCheckPath'] == '/other/', g['HealthCheckPath']",
        prelude()
    ));
}

#[test]
fn manifest_changes_are_applied_keeping_the_site_up() {
    let emu = Emulator::start();
    let s = emu.seed(&["--ttl", "3", "--transition-ttl", "1"]);
    let out = emu.reconcile(&["apply", "-f", s.manifest.to_str().unwrap(), "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    type Edit = Box<dyn FnOnce(&mut serde_json::Value)>;
    let steps: Vec<(&str, Edit)> = vec![
        (
            "the record becomes an alias A record",
            Box::new(|m| {
                m["dns"]["records"][0] = serde_json::json!({
                    "name": "www.example.com", "type": "A", "to": "load_balancer",
                    "transition_ttl": 1
                });
            }),
        ),
        (
            "a new tag and another health check",
            Box::new(|m| {
                m["tags"]["cost-center"] = "42".into();
                m["target_groups"]["app"]["health_check"]["path"] = "/ready/".into();
                m["target_groups"]["app"]["health_check"]["interval_seconds"] = 10.into();
            }),
        ),
        (
            "one target fewer",
            Box::new(|m| {
                let t = m["target_groups"]["http"]["targets"]
                    .as_array_mut()
                    .unwrap();
                t.pop();
            }),
        ),
        (
            "back to a CNAME with a longer TTL at rest",
            Box::new(|m| {
                m["dns"]["records"][0] = serde_json::json!({
                    "name": "www.example.com", "type": "CNAME", "to": "load_balancer",
                    "ttl": 5, "transition_ttl": 1
                });
            }),
        ),
    ];
    let mut current = s.manifest.clone();
    for (i, (what, edit)) in steps.into_iter().enumerate() {
        let next = edited(&current, &format!("step-{i}.json"), edit);
        let manifest = next.to_str().unwrap();
        let out = emu.reconcile(&["plan", "-f", manifest, "--detailed-exitcode"]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{what}: no change:\n{}",
            text(&out)
        );

        let (proxy, _) = Proxy::checked(&emu.url, desired(&next));
        let out = emu.reconcile_at(&proxy.url, &["apply", "-f", manifest, "--yes"]);
        assert_eq!(out.status.code(), Some(0), "{what}: {}", text(&out));
        proxy.assert_clean(what);
        let out = emu.reconcile(&["plan", "-f", manifest, "--detailed-exitcode"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{what}: not converged:\n{}",
            text(&out)
        );
        current = next;
    }
}
