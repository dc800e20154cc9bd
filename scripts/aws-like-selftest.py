#!/usr/bin/env python3
"""Self-test of the AWS-like layer (scripts/aws-like.py).

    .venv/bin/python scripts/aws-like-selftest.py [-k NAME]

Starts its own moto + layer with `scripts/emulator-start --aws-like` in a temporary
directory, demonstrates each behaviour with boto3 through the layer, prints one line per
check and stops everything at the end. Exit status 0 when every check passed.
"""

import concurrent.futures
import datetime
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# botocore counts "max_attempts" as retries after the first try; "total_max_attempts": 1 is one try.
NO_RETRY = Config(retries={"total_max_attempts": 1, "mode": "standard"}, max_pool_connections=40)


class Env:
    def __init__(self, state):
        self.state = state
        self.url = open(os.path.join(state, "aws-like.url")).read().strip()
        self.oracle = open(os.path.join(state, "aws-like.oracle")).read().strip()
        self.moto = open(os.path.join(state, "moto.url")).read().strip()

    def client(self, svc, url=None):
        return boto3.client(svc, endpoint_url=url or self.url, region_name="us-east-1",
                            aws_access_key_id="AKIDTEST", aws_secret_access_key="x", config=NO_RETRY)

    def admin(self, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + "/_aws_like/" + path, data=data,
                                     method="POST" if body is not None else "GET")
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())

    def reset(self, **config):
        self.admin("reset", {})
        base = {"seed": 1, "latency": [5, 60], "provisioning": 1.0, "health_scale": 0.1,
                "draining_scale": 0.005, "route53_pending": 0.8, "consistency": 0.0,
                "eni_linger": 1.0, "throttle": False, "rate_scale": 1.0, "check_url": None}
        base.update(config)
        self.admin("config", base)


def code_of(fn, *a, **kw):
    try:
        fn(*a, **kw)
        return None
    except ClientError as e:
        return e.response["Error"]["Code"]


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def vpc_and_subnets(ec2):
    vpc = [v for v in ec2.describe_vpcs()["Vpcs"] if v.get("IsDefault")][0]["VpcId"]
    subs = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]
    by_az = {}
    for s in subs:
        by_az.setdefault(s["AvailabilityZone"], s["SubnetId"])
    return vpc, list(by_az.values())[:2]


def make_lb(env, name, sgs=None):
    ec2, elb = env.client("ec2"), env.client("elbv2")
    vpc, subnets = vpc_and_subnets(ec2)
    if sgs is None:
        sgs = [ec2.create_security_group(GroupName=name + "-sg", Description="x", VpcId=vpc)["GroupId"]]
    lb = elb.create_load_balancer(Name=name, Subnets=subnets, SecurityGroups=sgs)["LoadBalancers"][0]
    return vpc, subnets, sgs, lb["LoadBalancerArn"]


# ------------------------------------------------------------------------------ checks
def t_provisioning(env):
    env.reset(provisioning=1.0)
    elb, oracle = env.client("elbv2"), env.client("elbv2", env.oracle)
    _, _, _, arn = make_lb(env, "prov")
    s1 = elb.describe_load_balancers(LoadBalancerArns=[arn])["LoadBalancers"][0]["State"]["Code"]
    s1o = oracle.describe_load_balancers(LoadBalancerArns=[arn])["LoadBalancers"][0]["State"]["Code"]
    expect(s1 == "provisioning" and s1o == "provisioning", "right after create: %s / oracle %s" % (s1, s1o))
    time.sleep(1.1)
    s2 = elb.describe_load_balancers(LoadBalancerArns=[arn])["LoadBalancers"][0]["State"]["Code"]
    expect(s2 == "active", "after provisioning time: %s" % s2)
    return "provisioning -> active after 1.0 s (main and oracle ports)"


def health(elb, tg, **kw):
    return [(d["Target"]["Id"], d["TargetHealth"]["State"], d["TargetHealth"].get("Reason"))
            for d in elb.describe_target_health(TargetGroupArn=tg, **kw)["TargetHealthDescriptions"]]


def t_target_health(env):
    # interval 5 x threshold 2 x scale 0.1 = 1.0 s of `initial`
    env.reset(health_scale=0.1, draining_scale=0.005)
    elb = env.client("elbv2")
    vpc, _, _, lb = make_lb(env, "th")
    tgs = [elb.create_target_group(Name="th-%d" % i, Protocol="HTTP", Port=80, VpcId=vpc,
                                   HealthCheckIntervalSeconds=5, HealthyThresholdCount=2)
           ["TargetGroups"][0]["TargetGroupArn"] for i in (1, 2)]
    for tg in tgs:
        elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": "i-0123456789abcdef0"}])
    h = health(elb, tgs[0])
    expect(h == [("i-0123456789abcdef0", "unused", "Target.NotInUse")], "no listener: %s" % h)
    time.sleep(1.1)  # registration alone does not start the clock: still unused
    expect(health(elb, tgs[0])[0][1] == "unused", "still unused")
    listener = elb.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=80,
                                   DefaultActions=[{"Type": "forward", "TargetGroupArn": tgs[0]}])
    larn = listener["Listeners"][0]["ListenerArn"]
    h = health(elb, tgs[0])
    expect(h == [("i-0123456789abcdef0", "initial", "Elb.RegistrationInProgress")], "after listener: %s" % h)
    # a weight-0 forward counts as in use
    expect(health(elb, tgs[1])[0][1] == "unused", "second group unused")
    elb.create_rule(ListenerArn=larn, Priority=1, Conditions=[{"Field": "path-pattern", "Values": ["/x"]}],
                    Actions=[{"Type": "forward", "ForwardConfig": {"TargetGroups": [
                        {"TargetGroupArn": tgs[0], "Weight": 1}, {"TargetGroupArn": tgs[1], "Weight": 0}]}}])
    expect(health(elb, tgs[1])[0][1] == "initial", "weight-0 forward: %s" % health(elb, tgs[1]))
    time.sleep(1.1)
    h = health(elb, tgs[0])
    expect(h == [("i-0123456789abcdef0", "healthy", None)], "after interval x threshold: %s" % h)
    # draining: deregistration delay 300 s x 0.005 = 1.5 s
    elb.deregister_targets(TargetGroupArn=tgs[0], Targets=[{"Id": "i-0123456789abcdef0"}])
    h = health(elb, tgs[0])
    expect(h == [("i-0123456789abcdef0", "draining", "Target.DeregistrationInProgress")], "after deregister: %s" % h)
    time.sleep(1.6)
    h = health(elb, tgs[0])
    expect(h == [], "after the delay: %s" % h)
    return "unused -> (listener) initial -> healthy after 1.0 s; weight-0 forward in use; draining 1.5 s then gone"


def t_health_settings(env):
    # 30 s x 5 x scale 0.1 = 15 s of `initial`; 5 s x 2 = 1.0 s
    env.reset(health_scale=0.1)
    elb = env.client("elbv2")
    vpc, _, _, lb = make_lb(env, "hs")
    tg = elb.create_target_group(Name="hs-1", Protocol="HTTP", Port=80, VpcId=vpc,
                                 HealthCheckIntervalSeconds=30, HealthyThresholdCount=5,
                                 )["TargetGroups"][0]["TargetGroupArn"]
    elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": "i-0123456789abcdef0"}])
    elb.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=80,
                        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])
    expect(health(elb, tg)[0][1] == "initial", "on 30 s x 5: %s" % health(elb, tg))
    # faster checks: the target finishes on the new timing, not the old one's 15 s
    elb.modify_target_group(TargetGroupArn=tg, HealthCheckIntervalSeconds=5, HealthyThresholdCount=2)
    expect(health(elb, tg)[0][1] == "initial", "right after the change: %s" % health(elb, tg))
    time.sleep(1.2)
    h = health(elb, tg)
    expect(h == [("i-0123456789abcdef0", "healthy", None)], "on 5 s x 2 after 1.2 s: %s" % h)
    # back to the slow values: a healthy target stays healthy; a new one waits the slow window
    elb.modify_target_group(TargetGroupArn=tg, HealthCheckIntervalSeconds=30, HealthyThresholdCount=5)
    elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": "i-0fedcba9876543210"}])
    time.sleep(1.2)
    h = dict((i, s) for i, s, _ in health(elb, tg))
    expect(h.get("i-0123456789abcdef0") == "healthy", "kept healthy after slowing: %s" % h)
    expect(h.get("i-0fedcba9876543210") == "initial", "a new target on 30 s x 5: %s" % h)
    return "initial on 30 s x 5, healthy 1.2 s after a change to 5 s x 2; slowing keeps healthy ones healthy"


def t_route53(env):
    env.reset(route53_pending=0.8)
    r53 = env.client("route53")
    z = r53.create_hosted_zone(Name="example.com", CallerReference=str(time.time()))["HostedZone"]["Id"]
    ids = []
    for name in ("a.example.com", "b.example.com"):
        c = r53.change_resource_record_sets(HostedZoneId=z, ChangeBatch={"Changes": [{
            "Action": "UPSERT", "ResourceRecordSet": {"Name": name, "Type": "A", "TTL": 60,
                                                      "ResourceRecords": [{"Value": "10.0.0.1"}]}}]})
        expect(c["ChangeInfo"]["Status"] == "PENDING", "answer status %s" % c["ChangeInfo"]["Status"])
        ids.append(c["ChangeInfo"]["Id"])
    expect(len(set(ids)) == 2, "change ids not distinct: %s" % ids)
    names = [r["Name"] for r in r53.list_resource_record_sets(HostedZoneId=z)["ResourceRecordSets"]]
    expect("a.example.com." in names and "b.example.com." in names, "records not visible at once: %s" % names)
    st = r53.get_change(Id=ids[0])["ChangeInfo"]["Status"]
    expect(st == "PENDING", "GetChange right after: %s" % st)
    time.sleep(0.9)
    st = [r53.get_change(Id=i)["ChangeInfo"]["Status"] for i in ids]
    expect(st == ["INSYNC", "INSYNC"], "GetChange later: %s" % st)
    return "distinct ids %s; PENDING then INSYNC after 0.8 s; records visible at once" % ", ".join(ids)


def self_signed():
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "example.com")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("example.com")]), critical=False)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                              serialization.NoEncryption()))


def t_consistency(env):
    env.reset(consistency=1.0)
    ec2, elb, acm = env.client("ec2"), env.client("elbv2"), env.client("acm")
    vpc, subnets = vpc_and_subnets(ec2)
    sg = ec2.create_security_group(GroupName="cons", Description="x", VpcId=vpc)["GroupId"]
    c1 = code_of(ec2.describe_security_groups, GroupIds=[sg])
    c1b = code_of(ec2.authorize_security_group_ingress, GroupId=sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}])
    tg = elb.create_target_group(Name="cons", Protocol="HTTP", Port=80, VpcId=vpc)["TargetGroups"][0]["TargetGroupArn"]
    c2 = code_of(elb.describe_target_groups, TargetGroupArns=[tg])
    cert, key = self_signed()
    carn = acm.import_certificate(Certificate=cert, PrivateKey=key)["CertificateArn"]
    c3 = code_of(acm.describe_certificate, CertificateArn=carn)
    expect((c1, c1b, c2, c3) == ("InvalidGroup.NotFound", "InvalidGroup.NotFound", "TargetGroupNotFound",
                                 "ResourceNotFoundException"), "right after create: %s" % [c1, c1b, c2, c3])
    time.sleep(1.05)
    lb = elb.create_load_balancer(Name="cons", Subnets=subnets, SecurityGroups=[sg])["LoadBalancers"][0]["LoadBalancerArn"]
    c4 = code_of(elb.describe_load_balancers, LoadBalancerArns=[lb])
    c5 = code_of(elb.create_listener, LoadBalancerArn=lb, Protocol="HTTPS", Port=443, Certificates=[
        {"CertificateArn": carn}], DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])
    expect(c4 == "LoadBalancerNotFound", "describe new LB: %s" % c4)
    expect(c5 == "LoadBalancerNotFound", "listener on new LB: %s" % c5)
    # a listener naming a new certificate (LB and group old enough by now)
    time.sleep(1.05)
    cert2, key2 = self_signed()
    carn2 = acm.import_certificate(Certificate=cert2, PrivateKey=key2)["CertificateArn"]
    c6 = code_of(elb.create_listener, LoadBalancerArn=lb, Protocol="HTTPS", Port=443, Certificates=[
        {"CertificateArn": carn2}], DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])
    expect(c6 == "CertificateNotFound", "listener with new certificate: %s" % c6)
    time.sleep(1.05)
    expect(ec2.describe_security_groups(GroupIds=[sg])["SecurityGroups"][0]["GroupId"] == sg, "sg later")
    expect(elb.describe_target_groups(TargetGroupArns=[tg])["TargetGroups"], "tg later")
    expect(elb.describe_load_balancers(LoadBalancerArns=[lb])["LoadBalancers"], "lb later")
    expect(acm.describe_certificate(CertificateArn=carn)["Certificate"]["Status"] == "ISSUED", "cert later")
    elb.create_listener(LoadBalancerArn=lb, Protocol="HTTPS", Port=443, Certificates=[{"CertificateArn": carn2}],
                        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])
    refused = env.admin("stats")["refused"]
    return "NotFound right after create, OK after 1.0 s: %s" % json.dumps(refused, sort_keys=True)


def t_dependency(env):
    env.reset(eni_linger=1.0)
    ec2, elb = env.client("ec2"), env.client("elbv2")
    vpc, subnets = vpc_and_subnets(ec2)
    mk = lambda n: ec2.create_security_group(GroupName=n, Description="x", VpcId=vpc)["GroupId"]
    # 1. another group's rule names it
    a, b = mk("dep-a"), mk("dep-b")
    perm = [{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "UserIdGroupPairs": [{"GroupId": a}]}]
    ec2.authorize_security_group_ingress(GroupId=b, IpPermissions=perm)
    expect(code_of(ec2.delete_security_group, GroupId=a) == "DependencyViolation", "rule reference")
    ec2.revoke_security_group_ingress(GroupId=b, IpPermissions=perm)
    ec2.delete_security_group(GroupId=a)
    # 1b. egress rule
    a = mk("dep-a2")
    ec2.authorize_security_group_egress(GroupId=b, IpPermissions=perm[:0] + [
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "UserIdGroupPairs": [{"GroupId": a}]}])
    expect(code_of(ec2.delete_security_group, GroupId=a) == "DependencyViolation", "egress rule reference")
    # 2. a load balancer uses it; 4. ENIs linger after the load balancer is deleted
    lbsg = mk("dep-lb")
    lb = elb.create_load_balancer(Name="dep", Subnets=subnets, SecurityGroups=[lbsg])["LoadBalancers"][0]["LoadBalancerArn"]
    expect(code_of(ec2.delete_security_group, GroupId=lbsg) == "DependencyViolation", "used by LB")
    elb.delete_load_balancer(LoadBalancerArn=lb)
    expect(code_of(ec2.delete_security_group, GroupId=lbsg) == "DependencyViolation", "ENI linger")
    time.sleep(1.1)
    ec2.delete_security_group(GroupId=lbsg)
    # 3. an instance has it
    isg = mk("dep-inst")
    ami = ec2.describe_images()["Images"][0]["ImageId"]
    inst = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, SecurityGroupIds=[isg],
                             SubnetId=subnets[0])["Instances"][0]["InstanceId"]
    expect(code_of(ec2.delete_security_group, GroupId=isg) == "DependencyViolation", "used by instance")
    ec2.terminate_instances(InstanceIds=[inst])
    ec2.delete_security_group(GroupId=isg)
    return "rule (ingress and egress), load balancer, instance, ENI linger 1.0 s each refused, then deleted"


def t_refusals(env):
    env.reset()
    ec2, elb, r53 = env.client("ec2"), env.client("elbv2"), env.client("route53")
    vpc, subnets = vpc_and_subnets(ec2)
    z = r53.create_hosted_zone(Name="apex.example", CallerReference=str(time.time()))["HostedZone"]["Id"]
    cname = lambda n: {"Changes": [{"Action": "UPSERT", "ResourceRecordSet": {
        "Name": n, "Type": "CNAME", "TTL": 60, "ResourceRecords": [{"Value": "x.example.org"}]}}]}
    c1 = code_of(r53.change_resource_record_sets, HostedZoneId=z, ChangeBatch=cname("apex.example."))
    expect(c1 == "InvalidChangeBatch", "apex CNAME: %s" % c1)
    r53.change_resource_record_sets(HostedZoneId=z, ChangeBatch=cname("www.apex.example"))
    long = "x" * 33
    sg = ec2.create_security_group(GroupName="ref", Description="x", VpcId=vpc)["GroupId"]
    c2 = code_of(elb.create_load_balancer, Name=long, Subnets=subnets, SecurityGroups=[sg])
    c3 = code_of(elb.create_target_group, Name=long, Protocol="HTTP", Port=80, VpcId=vpc)
    expect((c2, c3) == ("ValidationError", "ValidationError"), "33-char names: %s %s" % (c2, c3))
    elb.create_target_group(Name="y" * 32, Protocol="HTTP", Port=80, VpcId=vpc)
    az = ec2.describe_subnets(SubnetIds=[subnets[0]])["Subnets"][0]["AvailabilityZone"]
    same = ec2.create_subnet(VpcId=vpc, CidrBlock="172.31.200.0/24", AvailabilityZone=az)["Subnet"]["SubnetId"]
    c4 = code_of(elb.create_load_balancer, Name="oneaz", Subnets=[subnets[0], same], SecurityGroups=[sg])
    c5 = code_of(elb.create_load_balancer, Name="oneaz", Subnets=[subnets[0]], SecurityGroups=[sg])
    expect((c4, c5) == ("ValidationError", "ValidationError"), "one-AZ subnets: %s %s" % (c4, c5))
    lb = elb.create_load_balancer(Name="twoaz", Subnets=subnets, SecurityGroups=[sg])["LoadBalancers"][0]["LoadBalancerArn"]
    c6 = code_of(elb.set_subnets, LoadBalancerArn=lb, Subnets=[same])
    expect(c6 == "ValidationError", "SetSubnets one AZ: %s" % c6)
    rng = lambda lo, hi: [{"CidrIp": "10.%d.0.0/16" % i} for i in range(lo, hi)]
    ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": rng(0, 59)}])
    ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": rng(0, 1)}])   # 60th
    c7 = code_of(ec2.authorize_security_group_ingress, GroupId=sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": rng(1, 2)}])   # 61st
    expect(c7 == "RulesPerSecurityGroupLimitExceeded", "61st rule: %s" % c7)
    elb.modify_load_balancer_attributes(LoadBalancerArn=lb, Attributes=[
        {"Key": "deletion_protection.enabled", "Value": "true"}])
    c8 = code_of(elb.delete_load_balancer, LoadBalancerArn=lb)
    expect(c8 == "OperationNotPermitted", "protected LB deleted: %s" % c8)
    elb.modify_load_balancer_attributes(LoadBalancerArn=lb, Attributes=[
        {"Key": "deletion_protection.enabled", "Value": "false"}])
    elb.delete_load_balancer(LoadBalancerArn=lb)
    return ("apex CNAME, 33-char LB/TG names, one-AZ subnets (create and SetSubnets), 61st rule, "
            "a protected load balancer's delete refused")


def t_throttle(env):
    env.reset(throttle=True, latency=[5, 60])
    r53 = env.client("route53")

    def one(_):
        return code_of(r53.list_hosted_zones)
    with concurrent.futures.ThreadPoolExecutor(30) as ex:
        burst = list(ex.map(one, range(30)))
    n = sum(1 for c in burst if c == "Throttling")
    expect(n >= 15 and all(c in (None, "Throttling") for c in burst), "burst of 30: %d throttled %s" % (n, burst))
    time.sleep(1.2)
    spaced = []
    for i in range(12):
        t = time.time()
        spaced.append(code_of(r53.list_hosted_zones))
        time.sleep(max(0, 0.25 - (time.time() - t)))
    expect(all(c is None for c in spaced), "spaced at 4/s: %s" % spaced)
    stats = env.admin("stats")
    expect(stats["by_service"]["route53"]["throttled"] == n, "stats count throttled: %s vs %d" % (stats["by_service"], n))
    # EC2 (unfiltered DescribeSecurityGroups, 50 tokens, 10/s) answers 503 RequestLimitExceeded; ELB
    # (Describe*, 40 tokens, 10/s) answers Throttling. moto serves ~15 of these a second here, so the
    # buckets are scaled down (rate_scale 0.2) to empty them with a short burst.
    env.admin("config", {"rate_scale": 0.2})
    ec2, elb = env.client("ec2"), env.client("elbv2")

    def ec2_one(_):
        try:
            ec2.describe_security_groups()
            return None
        except ClientError as e:
            return (e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"])

    def elb_one(_):
        return code_of(elb.describe_load_balancers)
    with concurrent.futures.ThreadPoolExecutor(30) as ex:
        e = list(ex.map(ec2_one, range(40)))
        l = list(ex.map(elb_one, range(30)))
    ne = sum(1 for c in e if c == ("RequestLimitExceeded", 503))
    nl = sum(1 for c in l if c == "Throttling")
    expect(ne >= 5 and all(c in (None, ("RequestLimitExceeded", 503)) for c in e), "EC2 burst: %s" % e)
    expect(nl >= 5 and all(c in (None, "Throttling") for c in l), "ELB burst: %s" % l)
    return ("burst of 30 ListHostedZones: %d throttled; 12 at 4/s: none; 40 unfiltered DescribeSecurityGroups: "
            "%d got 503 RequestLimitExceeded; 30 DescribeLoadBalancers: %d Throttling (rate_scale 0.2)" % (n, ne, nl))


def t_latency(env):
    ec2 = env.client("ec2")
    orders_done, orders_effect = set(), set()
    for seed in range(1, 9):
        env.reset(seed=seed, latency=[5, 120])
        vpc = vpc_and_subnets(ec2)[0]
        base = len(env.admin("stats")["calls"])

        def tag(v):
            ec2.create_tags(Resources=[vpc], Tags=[{"Key": "k", "Value": v}])
        with concurrent.futures.ThreadPoolExecutor(2) as ex:
            fa = ex.submit(tag, "a")
            fb = ex.submit(tag, "b")
            fa.result(), fb.result()
        calls = [c for c in env.admin("stats")["calls"][base:] if c["operation"] == "CreateTags"]
        expect(len(calls) == 2, "two CreateTags calls")
        first_done = min(calls, key=lambda c: c["end"])
        orders_done.add(first_done["seq"] == min(c["seq"] for c in calls))
        v = [t["Value"] for t in ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"][0]["Tags"] if t["Key"] == "k"][0]
        orders_effect.add(v)
    expect(orders_done == {True, False}, "answers in both orders over 8 seeds: %s" % orders_done)
    expect(orders_effect == {"a", "b"}, "effects in both orders over 8 seeds: %s" % orders_effect)
    return "two CreateTags sent together: answers and effects in both orders over 8 seeds"


def t_oracle(env):
    env.reset(throttle=True, latency=[200, 300], provisioning=5.0)
    r53o = env.client("route53", env.oracle)
    r53 = env.client("route53")
    t = time.time()
    codes = [code_of(r53o.list_hosted_zones) for _ in range(30)]
    dt = (time.time() - t) / 30
    expect(all(c is None for c in codes), "oracle throttled: %s" % codes)
    expect(dt < 0.15, "oracle slow: %.3f s per call" % dt)
    t = time.time()
    r53.list_hosted_zones()
    dm = time.time() - t
    expect(dm >= 0.2, "main port not delayed: %.3f" % dm)
    env.admin("config", {"latency": [5, 60]})
    _, _, _, arn = make_lb(env, "orc")
    s = env.client("elbv2", env.oracle).describe_load_balancers(LoadBalancerArns=[arn])["LoadBalancers"][0]["State"]["Code"]
    expect(s == "provisioning", "oracle shows %s" % s)
    calls = env.admin("stats")["requests"]
    expect(calls == 1 + 4, "oracle calls counted in stats: %d" % calls)  # 1 ListHostedZones + make_lb's 4
    return "30 oracle calls unthrottled, %.1f ms each vs %.0f ms on the main port; shows provisioning; not counted" % (dt * 1000, dm * 1000)


class Hook(http.server.BaseHTTPRequestHandler):
    seen = []
    env = None
    group = None

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        ec2o = Hook.env.client("ec2", Hook.env.oracle)
        rules = None
        if Hook.group:
            g = ec2o.describe_security_groups(Filters=[{"Name": "group-name", "Values": [Hook.group]}])["SecurityGroups"]
            rules = len(g[0]["IpPermissions"]) if g else None
        Hook.seen.append((body, rules))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


def t_check_hook(env):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        Hook.env, Hook.seen, Hook.group = env, [], "hook"
        env.reset(check_url="http://127.0.0.1:%d/check" % srv.server_address[1])
        ec2 = env.client("ec2")
        vpc = vpc_and_subnets(ec2)[0]
        sg = ec2.create_security_group(GroupName="hook", Description="x", VpcId=vpc)["GroupId"]
        ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}])
        code_of(ec2.delete_security_group, GroupId="sg-doesnotexist0")  # fails: no check
        ec2.create_tags(Resources=[sg], Tags=[{"Key": "a", "Value": "b"}])
        stats = env.admin("stats")
        ok_mut = [c for c in stats["calls"] if c["mutating"] and c["status"] < 300]
        ops = [b["operation"] for b, _ in Hook.seen]
        expect(ops == ["CreateSecurityGroup", "AuthorizeSecurityGroupIngress", "CreateTags"], "hook ops %s" % ops)
        expect([b["seq"] for b, _ in Hook.seen] == [c["seq"] for c in ok_mut], "seqs %s vs %s" % (
            [b["seq"] for b, _ in Hook.seen], [c["seq"] for c in ok_mut]))
        expect(all(b["service"] == "ec2" for b, _ in Hook.seen), "service")
        rules = [r for _, r in Hook.seen]
        expect(rules == [0, 1, 1], "moto state seen by the hook: %s" % rules)
        expect(stats["checks"] == 3 and stats["check_errors"] == 0, "checks %s errors %s" % (stats["checks"], stats["check_errors"]))
        return "3 successful mutating calls -> 3 checks in order, with the change visible; failed call -> none"
    finally:
        srv.shutdown()


CHECKS = [
    ("provisioning", t_provisioning),
    ("target-health", t_target_health),
    ("health-settings", t_health_settings),
    ("route53-change", t_route53),
    ("consistency", t_consistency),
    ("dependency-violation", t_dependency),
    ("refusals", t_refusals),
    ("throttling", t_throttle),
    ("latency-order", t_latency),
    ("oracle", t_oracle),
    ("check-hook", t_check_hook),
]


def main():
    only = sys.argv[sys.argv.index("-k") + 1] if "-k" in sys.argv else None
    state = tempfile.mkdtemp(prefix="aws-like-selftest.")
    t0 = time.time()
    failed = 0
    try:
        subprocess.run([os.path.join(REPO, "scripts/emulator-start"), "--aws-like", state],
                       check=True, stdout=subprocess.DEVNULL)
        env = Env(state)
        print("started moto %s and layer %s (oracle %s) in %.1f s" % (env.moto, env.url, env.oracle, time.time() - t0))
        for name, fn in CHECKS:
            if only and only not in name:
                continue
            t = time.time()
            try:
                what = fn(env)
                print("PASS %-22s %5.1f s  %s" % (name, time.time() - t, what), flush=True)
            except Exception as e:
                failed += 1
                print("FAIL %-22s %5.1f s  %s" % (name, time.time() - t, e), flush=True)
                traceback.print_exc()
    finally:
        subprocess.run([os.path.join(REPO, "scripts/emulator-stop"), state], check=False)
        if failed:
            print("layer log: %s/aws-like.log" % state)
        else:
            shutil.rmtree(state, ignore_errors=True)
    print("%s: %d failed, %.1f s in all" % ("FAILED" if failed else "OK", failed, time.time() - t0))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
