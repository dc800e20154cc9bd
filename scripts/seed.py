#!/usr/bin/env python3
"""Build the article's starting point ("where we started") in the local AWS emulator.

    .venv/bin/python scripts/seed.py --endpoint URL [--region R] [--out FILE]
                                     [--ids-out FILE] [--stopped]
                                     [--stacks N --stacks-dir DIR] [--handmade]

Creates, with no reconcile tags (so nothing here is owned by the tool):
  - a VPC 10.0.0.0/16 with subnets 10.0.1.0/24 and 10.0.2.0/24 in two zones;
  - security group `www-backend`: tcp 80 and 443 from anywhere, tcp 22 from
    198.51.100.0/24 ("office ssh");
  - two running t3.micro instances, one per subnet (zones a and b), in that group;
  - an elastic IP on the first instance;
  - hosted zone example.com with www.example.com A <elastic ip>, TTL 3600;
  - an ISSUED ACM certificate for www.example.com (imported, self-signed); with
    --iam-cert the same certificate uploaded to IAM instead (server certificate
    `www-example`, as the article does), and the manifest pins it by ARN.

Then prints the manifest <repo>/manifests/site.example.json with the real ids
substituted (to --out, default stdout; --ids-out gets every created id as JSON).

With --stacks N it also imports an ISSUED wildcard certificate for *.example.com, creates
a backend group `backend-site-<i>` (no rules) per stack in the VPC, and writes N more
manifests, DIR/site-1.json .. DIR/site-N.json, for many stacks in one account: stack
`site-<i>` (so its load balancer, groups and target groups are its own), its own backend
group (one group shared by all would soon pass AWS's 60 rules per group), record
site-<i>.example.com (a new name: no TTL wait), and the certificate asked for by that
name (the wildcard covers it). The instances are the seeded two, behind every stack.
With --handmade the site is then put behind a load balancer made by hand, as a team that
followed the article's checklist without reconcile would have it (nothing tagged):
group `handmade-lb` (80 and 443 from anywhere), load balancer `handmade` in both subnets,
target groups `handmade-web` (port 80) and `handmade-app` (port 8088, the article's
app port), both checking /health/ on 8088 with both instances registered, listeners 80
(HTTP, to handmade-web) and 443 (HTTPS with the certificate, to handmade-app), the
backends' group admitting handmade-lb on 80 and 8088 (its public rules still open: the
checklist's last step not done yet), and www.example.com a CNAME to the load balancer
with the same TTL. Its ids are under "handmade" in --ids-out.

Run it against a fresh emulator (scripts/emulator-reset): it refuses to seed twice
into the same state.
"""

import argparse
import datetime
import json
import os
import re
import sys
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENV = REPO / ".venv"
if Path(sys.prefix).resolve() != VENV.resolve():
    # Started with another python: re-run with the project venv's, which has the pinned moto stack.
    if not (VENV / "bin" / "python").exists():
        sys.exit("seed: no project venv; run scripts/emulator-install first")
    os.execv(VENV / "bin" / "python", [str(VENV / "bin" / "python"), __file__, *sys.argv[1:]])

# Third-party imports come after the venv check on purpose.
import boto3
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

TEMPLATE = REPO / "manifests" / "site.example.json"
ZONE = "example.com"
HOST = "www.example.com"
# One of the AMIs moto ships in every region. moto does not check ImageId unless
# MOTO_ENABLE_AMI_VALIDATION is set; listing its ~1300 images takes 0.6 s.
AMI = "ami-12c6146b"
SEED_TAG = {"Key": "Name", "Value": "www-seed"}


def log(msg):
    print(msg, file=sys.stderr)


def self_signed_cert(host):
    """A self-signed certificate for `host`, valid from now for a year, as PEM (cert, key)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def seed(session, endpoint, stopped, ttl=3600, stacks=0, iam_cert=False):
    ec2 = session.client("ec2", endpoint_url=endpoint)
    r53 = session.client("route53", endpoint_url=endpoint)
    acm = session.client("acm", endpoint_url=endpoint)

    # Refuse a second run: it would add a second VPC and a second example.com zone.
    seeded = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [SEED_TAG["Value"]]}])["Vpcs"]
    zones = r53.list_hosted_zones_by_name(DNSName=ZONE)["HostedZones"]
    if seeded or any(z["Name"] == ZONE + "." for z in zones):
        sys.exit("seed: this emulator is already seeded (a www-seed VPC or an example.com zone "
                 "exists); run scripts/emulator-reset first")

    # Network: a VPC with one subnet in each of two availability zones.
    vpc = ec2.create_vpc(
        CidrBlock="10.0.0.0/16",
        TagSpecifications=[{"ResourceType": "vpc", "Tags": [SEED_TAG]}],
    )["Vpc"]["VpcId"]
    azs = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]][:2]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=az)["Subnet"]["SubnetId"]
        for cidr, az in zip(["10.0.1.0/24", "10.0.2.0/24"], azs)
    ]

    # The backends' group, open to the world on 80 and 443 as in the article.
    sg = ec2.create_security_group(
        GroupName="www-backend", Description="www.example.com backends", VpcId=vpc
    )["GroupId"]
    world = [{"CidrIp": "0.0.0.0/0"}]
    ec2.authorize_security_group_ingress(
        GroupId=sg,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": world},
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": world},
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
             "IpRanges": [{"CidrIp": "198.51.100.0/24", "Description": "office ssh"}]},
        ],
    )

    # Two backends, one per subnet.
    instances = []
    for i, subnet in enumerate(subnets, start=1):
        inst = ec2.run_instances(
            ImageId=AMI, InstanceType="t3.micro", MinCount=1, MaxCount=1,
            SubnetId=subnet, SecurityGroupIds=[sg],
            TagSpecifications=[{"ResourceType": "instance",
                                "Tags": [{"Key": "Name", "Value": f"www-{i}"}]}],
        )["Instances"][0]
        instances.append(inst["InstanceId"])

    # The site's address: an elastic IP on the first backend.
    eip = ec2.allocate_address(Domain="vpc")
    ec2.associate_address(AllocationId=eip["AllocationId"], InstanceId=instances[0])

    # DNS: www is an A record to that address with a long TTL.
    zone_id = r53.create_hosted_zone(Name=ZONE, CallerReference=str(uuid.uuid4()))[
        "HostedZone"]["Id"].split("/")[-1]
    r53.change_resource_record_sets(
        HostedZoneId=zone_id,
        ChangeBatch={"Changes": [{"Action": "CREATE", "ResourceRecordSet": {
            "Name": HOST, "Type": "A", "TTL": ttl,
            "ResourceRecords": [{"Value": eip["PublicIp"]}],
        }}]},
    )

    # TLS: requested certificates stay PENDING_VALIDATION in moto; imported ones are ISSUED.
    cert_pem, key_pem = self_signed_cert(HOST)
    if iam_cert:
        iam = session.client("iam", endpoint_url=endpoint)
        cert_arn = iam.upload_server_certificate(
            ServerCertificateName="www-example",
            CertificateBody=cert_pem.decode(),
            PrivateKey=key_pem.decode(),
        )["ServerCertificateMetadata"]["Arn"]
    else:
        cert_arn = acm.import_certificate(Certificate=cert_pem, PrivateKey=key_pem)["CertificateArn"]

    if stopped:
        ec2.stop_instances(InstanceIds=instances)

    ids = {
        "region": session.region_name,
        "vpc": vpc,
        "subnets": subnets,
        "security_group": sg,
        "ami": AMI,
        "instances": instances,
        "eip": {"allocation_id": eip["AllocationId"], "public_ip": eip["PublicIp"]},
        "zone_id": zone_id,
        "certificate_arn": cert_arn,
    }
    if stacks:
        cert_pem, key_pem = self_signed_cert("*." + ZONE)
        ids["wildcard_certificate_arn"] = acm.import_certificate(
            Certificate=cert_pem, PrivateKey=key_pem)["CertificateArn"]
        ids["stack_backends"] = [
            ec2.create_security_group(
                GroupName=f"backend-site-{i}", Description=f"site-{i} backends", VpcId=vpc,
            )["GroupId"]
            for i in range(1, stacks + 1)
        ]
    return ids


def handmade(session, endpoint, ids, ttl):
    """Puts the seeded site behind a load balancer made by hand (see the module's doc)."""
    ec2 = session.client("ec2", endpoint_url=endpoint)
    elb = session.client("elbv2", endpoint_url=endpoint)
    r53 = session.client("route53", endpoint_url=endpoint)
    vpc, backend = ids["vpc"], ids["security_group"]
    lb_sg = ec2.create_security_group(
        GroupName="handmade-lb", Description="www.example.com entry, made by hand", VpcId=vpc
    )["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=lb_sg,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": p, "ToPort": p,
             "IpRanges": [{"CidrIp": "0.0.0.0/0"}], "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}
            for p in (80, 443)
        ],
    )
    ec2.authorize_security_group_ingress(
        GroupId=backend,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": p, "ToPort": p,
             "UserIdGroupPairs": [{"GroupId": lb_sg}]}
            for p in (80, 8088)
        ],
    )
    lb = elb.create_load_balancer(
        Name="handmade", Subnets=ids["subnets"], SecurityGroups=[lb_sg],
        Scheme="internet-facing", Type="application",
    )["LoadBalancers"][0]
    groups = {}
    for name, port in (("handmade-web", 80), ("handmade-app", 8088)):
        tg = elb.create_target_group(
            Name=name, Protocol="HTTP", Port=port, VpcId=vpc, TargetType="instance",
            HealthCheckProtocol="HTTP", HealthCheckPort="8088", HealthCheckPath="/health/",
            Matcher={"HttpCode": "200"}, HealthCheckIntervalSeconds=30,
            HealthCheckTimeoutSeconds=5, HealthyThresholdCount=2, UnhealthyThresholdCount=2,
        )["TargetGroups"][0]["TargetGroupArn"]
        elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": i} for i in ids["instances"]])
        groups[name] = tg
    elb.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": groups["handmade-web"]}],
    )
    elb.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTPS", Port=443,
        Certificates=[{"CertificateArn": ids["certificate_arn"]}],
        DefaultActions=[{"Type": "forward", "TargetGroupArn": groups["handmade-app"]}],
    )
    # A record gives way to a CNAME in one batch (they cannot share a name).
    r53.change_resource_record_sets(
        HostedZoneId=ids["zone_id"],
        ChangeBatch={"Changes": [
            {"Action": "DELETE", "ResourceRecordSet": {
                "Name": HOST, "Type": "A", "TTL": ttl,
                "ResourceRecords": [{"Value": ids["eip"]["public_ip"]}]}},
            {"Action": "CREATE", "ResourceRecordSet": {
                "Name": HOST, "Type": "CNAME", "TTL": ttl,
                "ResourceRecords": [{"Value": lb["DNSName"]}]}},
        ]},
    )
    ids["handmade"] = {
        "load_balancer": lb["LoadBalancerArn"],
        "dns_name": lb["DNSName"],
        "security_group": lb_sg,
        "target_groups": groups,
    }


def stack_manifest(site, i, backend):
    """Stack number `i` derived from the seeded manifest `site` (a dict): its own names,
    its own record and its own backend group."""
    m = json.loads(json.dumps(site))
    host = f"site-{i}.{ZONE}"
    m["stack"] = f"site-{i}"
    m["certificates"] = {"site": {"domain": host}}
    m["security_groups"]["lb"]["description"] = f"Public entry for {host}"
    m["security_groups"]["backend"]["existing"] = backend
    for r in m["dns"]["records"]:
        r["name"] = host
    return dumps(m)


def manifest(ids, ttl=None, transition_ttl=None, iam_cert=False):
    """The example manifest with the seeded ids in place of the placeholders (and, when
    given, the record's TTLs: short ones make the demo's and tests' waits short)."""
    with open(TEMPLATE) as f:
        m = json.load(f)  # dicts keep the file's key order
    m["region"] = ids["region"]
    m["vpc"] = ids["vpc"]
    m["security_groups"]["backend"]["existing"] = ids["security_group"]
    m["load_balancer"]["subnets"] = ids["subnets"]
    if iam_cert:
        # Only ACM's certificates are found by name: IAM's is pinned.
        m["certificates"]["site"] = {"arn": ids["certificate_arn"]}
    for tg in m["target_groups"].values():
        tg["targets"] = ids["instances"]
    for r in m["dns"]["records"]:
        if ttl is not None:
            r["ttl"] = ttl
        if transition_ttl is not None:
            r["transition_ttl"] = transition_ttl
    return dumps(m)


def dumps(value):
    """JSON with indent 2, but lists of plain values on one line, as in the example manifest."""
    text = json.dumps(value, indent=2)
    # A newline never occurs inside a JSON string, so this only touches layout.
    return re.sub(r"\[\n\s*([^\[\]{}]*?)\n\s*\]",
                  lambda mt: "[" + re.sub(r",\n\s*", ", ", mt.group(1)) + "]", text) + "\n"


def write(path, text):
    if path in (None, "-"):
        sys.stdout.write(text)
    else:
        Path(path).write_text(text)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--endpoint", default=os.environ.get("AWS_ENDPOINT_URL"),
                   help="emulator URL (default: $AWS_ENDPOINT_URL)")
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--out", help="manifest output file (default: stdout)")
    p.add_argument("--ids-out", help="write every created id as JSON to this file")
    p.add_argument("--stopped", action="store_true",
                   help="stop both instances after creating them. Note: RegisterTargets then fails "
                        "InvalidTarget (as on AWS); targets registered while running and stopped "
                        "later report unused / Target.InvalidState")
    p.add_argument("--ttl", type=int, default=3600,
                   help="TTL of the starting A record, and the manifest's ttl (default 3600)")
    p.add_argument("--transition-ttl", type=int,
                   help="the manifest's transition_ttl (default: the example's 300)")
    p.add_argument("--stacks", type=int, default=0,
                   help="also write this many stack manifests site-1..site-N to --stacks-dir, "
                        "and import a wildcard certificate they use")
    p.add_argument("--stacks-dir", help="folder for the --stacks manifests (created)")
    p.add_argument("--iam-cert", action="store_true",
                   help="upload the certificate to IAM (server certificate www-example) instead "
                        "of importing it into ACM, as the article does")
    p.add_argument("--handmade", action="store_true",
                   help="then put the site behind a load balancer made by hand (untagged), "
                        "its record a CNAME to it")
    args = p.parse_args()
    if not args.endpoint:
        p.error("--endpoint or AWS_ENDPOINT_URL is required (this script only seeds an emulator)")
    if args.stacks and not args.stacks_dir:
        p.error("--stacks needs --stacks-dir")

    # Dummy credentials: moto needs signed requests but does not check the signature.
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    session = boto3.Session(region_name=args.region)

    ids = seed(session, args.endpoint, args.stopped, args.ttl, args.stacks, args.iam_cert)
    if args.handmade:
        handmade(session, args.endpoint, ids, args.ttl)
    site = manifest(ids, args.ttl if args.ttl != 3600 else None, args.transition_ttl,
                    args.iam_cert)
    write(args.out, site)
    if args.ids_out:
        write(args.ids_out, dumps(ids))
    if args.stacks:
        folder = Path(args.stacks_dir)
        folder.mkdir(parents=True, exist_ok=True)
        for i, backend in enumerate(ids["stack_backends"], start=1):
            write(folder / f"site-{i}.json", stack_manifest(json.loads(site), i, backend))

    state = "stopped" if args.stopped else "running"
    log(f"seeded {args.endpoint} ({ids['region']}):\n"
        f"  vpc {ids['vpc']}  subnets {' '.join(ids['subnets'])}\n"
        f"  security group www-backend {ids['security_group']}\n"
        f"  instances ({state}) {' '.join(ids['instances'])}\n"
        f"  elastic ip {ids['eip']['public_ip']} on {ids['instances'][0]}\n"
        f"  zone {ZONE} {ids['zone_id']}: {HOST} A {ids['eip']['public_ip']} ttl {args.ttl}\n"
        f"  certificate {ids['certificate_arn']}")
    if args.handmade:
        log(f"  behind load balancer handmade (made by hand): {HOST} CNAME {ids['handmade']['dns_name']}")
    if args.stacks:
        log(f"  wildcard certificate {ids['wildcard_certificate_arn']}\n"
            f"  {args.stacks} stack manifests site-1..site-{args.stacks} in {args.stacks_dir}")


if __name__ == "__main__":
    main()
