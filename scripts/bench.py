#!/usr/bin/env python3
"""The benchmark's driver (run it through scripts/bench, which builds the binary first).

    .venv/bin/python scripts/bench.py --bin PATH [--delay 40ms] [--repeat 3]
                                      [--stacks 1,10,50] [--out FILE]
    .venv/bin/python scripts/bench.py --bin PATH --aws-like [--repeat 3] [--stacks 50]
                                      [--ttl 10] [--transition-ttl 3] [--latency 5,60]
                                      [--out FILE]

Against a private emulator behind a proxy that holds every request for a fixed delay
(a stand-in for a real network's round trip), it measures:

  plan-example    a no-op plan of the example stack, converged
  apply-empty     a full apply from an empty account (the seeded network, backend group
                  without rules, no DNS record: so no TTL wait, and every gate is
                  satisfied at its first look)
  plan-N          a no-op plan of N converged stacks in one run (seed.py --stacks)

Figures per scenario: requests (counted by the proxy), rounds (the binary's own count of
the longest chain of requests that each needed the previous one's answer), chain (the
proxy's view: the longest chain of requests each started after the previous one ended,
an upper bound on rounds), wall time (median of --repeat runs, process start to exit),
floor (the same run with no delay), the CPU time of the binary and of the emulator
(moto handles requests under one Python lock, so its CPU time is spent one request at
a time), and
the binary's peak memory (the kernel's maximum resident set, with, in brackets, the
sampled peak of its anonymous part: heap and stacks, without the binary's mapped code).
Prints a table and writes the figures as JSON.

With --aws-like it measures instead, through the real binary against moto behind the
AWS-like layer (scripts/aws-like.py: a random latency per call, load balancers
provisioning, targets initial, Route53 changes PENDING, eventual consistency and AWS's
documented token buckets; every timing passed to it explicitly, see LAYER_TIMINGS), the
account always seeded through the layer's oracle URL (no latency, no throttling):

  migration-aws-like   the article's migration (seed.py --ttl T --transition-ttl t) in one
                       `apply --yes --json`, the layer and moto reset and reseeded before
                       each run (each run with its own latency seed)
  plan-N-aws-like      a no-op plan of N converged stacks (seed.py --stacks N), for N in
                       --stacks (default 20,50): converged directly on moto (without the
                       layer's waits and buckets, and with --api-rate 0: a setup, not a
                       measurement), then planned through the layer with the binary's
                       defaults, the buckets full before each run (the driver waits for
                       the previous run's tokens to refill)

Figures: wall time (median of --repeat runs), requests and throttled requests (the layer's
count: every attempt, including those answered "not found" while a new resource settles),
rounds (the binary's own: for apply the `ran` event's `rounds_without_gates` and `rounds`,
for plan `stats.rounds`), and the wall time's floor, derived in code from the layer's
configuration (read back from it), the manifest and the seed's TTLs:

  migration floor = max(P + T, max(V, C + W)) + P + t + 6 x Lmin
    P     Route53 PENDING time of a change (route53_pending): the TTL waits start when the
          change is in sync, not when it is sent;
    T, t  the old TTL and the transition TTL (--ttl, --transition-ttl);
    V     load balancer provisioning time (provisioning);
    C     eventual-consistency window (consistency): a listener can name the new load
          balancer and target groups only C after they are created;
    W     the health window: targets stay `initial` for interval x healthy threshold x
          health_scale (the largest over the manifest's target groups) after the listener
          starts using their group;
    Lmin  the layer's smallest latency per call, for the requests that must follow each
          other on the DNS chain: one round of reads (the plan), the lowering, the GetChange
          that sees it in sync, the switch, its GetChange, and closing the backend's public
          rules after the transition wait.
  That is: the DNS chain (lower the TTL -> PENDING -> the old TTL) and the load-balancer
  chain (provisioning, and in parallel the listener after the consistency window, then the
  health window) both end before the switch, which is followed by PENDING again, the
  transition TTL and the last change. Target: wall <= 1.2 x floor.

  plan-N floor = max over buckets b of max(0, n_b - size_b) / refill_b
    n_b   the plan's requests that take a token from AWS bucket b (RATE_LIMITS in
          scripts/aws-like.py, scaled by the layer's rate_scale); a request takes a token
          from each of its buckets (ELB: the account's and its category's). They are counted
          by the layer in a reference run of the same plan with throttling off and the
          binary's limiter off (--api-rate 0), so the floor is known even when the measured
          runs fail; that run's wall time is reported too ("without rate limits"). The
          layer's stats carry no parameters, so EC2's "unfiltered" Describe calls are
          counted in that smaller bucket (one request: no effect). Each measured run starts
          with full buckets. Target: wall <= 1.3 x floor (when the floor is under half a
          second everything fits in the buckets: no ratio target, the absolute figures are
          reported).
  Every scenario also has the targets "every run succeeds" and "nothing throttled"; a
  failed run is reported with the binary's error (its wall time is then the time to the
  failure), not dropped.
  Also reported, the issue's simpler figure: requests per service / that service's rate
  (the account bucket's refill for ELB and Route53; per API for EC2 and ACM, which have no
  account bucket), which ignores the buckets' initial burst.
"""

import datetime
import argparse
import asyncio
import importlib.util
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = REPO / "scripts"


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def parse_delay(text):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s)?", text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"not a delay: {text!r} (e.g. 40ms, 0.04s)")
    value = float(m.group(1))
    return value / 1000 if m.group(2) in (None, "ms") else value


# ---------------------------------------------------------------------------------------
# The delaying proxy


def operation(head, body):
    """The AWS operation of a request: the query protocol's Action, the JSON protocol's
    X-Amz-Target, or Route53's REST method and path (named for the operations reconcile
    sends)."""
    m = re.search(rb"(?:^|&)Action=([A-Za-z0-9]+)", body)
    if m:
        return m.group(1).decode()
    m = re.search(rb"(?im)^x-amz-target:\s*[\w.]+\.(\w+)\s*$", head)
    if m:
        return m.group(1).decode()
    method, path = (head.split(b"\r\n", 1)[0].decode(errors="replace").split(" ") + ["", ""])[:2]
    path = path.split("?", 1)[0]
    for pattern, name in ROUTE53:
        if method == pattern[0] and re.fullmatch(pattern[1], path):
            return name
    return f"{method} {path}"


# Route53 is a REST API: its operations by method and path.
ROUTE53 = [
    (("GET", r"/2013-04-01/hostedzonesbyname"), "ListHostedZonesByName"),
    (("GET", r"/2013-04-01/hostedzone/[^/]+/rrset"), "ListResourceRecordSets"),
    (("POST", r"/2013-04-01/hostedzone/[^/]+/rrset/?"), "ChangeResourceRecordSets"),
    (("GET", r"/2013-04-01/change/[^/]+"), "GetChange"),
]


class DelayProxy:
    """An HTTP proxy to `upstream` that holds each request `delay` seconds before
    forwarding it, closes every connection after one answer (as moto does), and records
    (operation, start, end) for every request.

    It runs on one asyncio event loop in a thread of its own: a request costs it a few
    tens of microseconds of CPU, and the requests in flight do not compete for the
    interpreter's lock the way one thread per connection would, so the proxy adds the
    delay and little else to what it measures."""

    def __init__(self, upstream, delay):
        self.upstream = upstream
        self.delay = delay
        self.calls = []
        self.lock = threading.Lock()
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self.thread.start()
        ready.wait()
        self.url = "http://127.0.0.1:%d" % self.port

    def _run(self, ready):
        asyncio.set_event_loop(self.loop)
        # moto serves one request at a time: queue here rather than in its listen backlog.
        self.slots = asyncio.Semaphore(32)
        self.server = self.loop.run_until_complete(
            asyncio.start_server(self.serve, "127.0.0.1", 0, backlog=1024))
        self.port = self.server.sockets[0].getsockname()[1]
        ready.set()
        self.loop.run_forever()

    def reset(self):
        with self.lock:
            self.calls = []

    def close(self):
        async def stop():
            self.server.close()
            await self.server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)

    async def serve(self, reader, writer):
        try:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                return
            start = time.monotonic()
            m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
            body = await reader.readexactly(int(m.group(1))) if m else b""
            head = head[:-4]
            lines = [l for l in head.split(b"\r\n") if not l.lower().startswith(b"connection:")]
            request = b"\r\n".join(lines) + b"\r\nConnection: close\r\n\r\n" + body
            await asyncio.sleep(self.delay)
            async with self.slots:
                up_reader, up_writer = await asyncio.open_connection(*self.upstream)
                try:
                    up_writer.write(request)
                    await up_writer.drain()
                    response = await up_reader.read()
                finally:
                    up_writer.close()
            writer.write(response)
            await writer.drain()
            end = time.monotonic()
            with self.lock:
                self.calls.append((operation(head, body), start, end))
        finally:
            writer.close()

    def figures(self):
        """Requests, by operation, and the longest chain of requests each started after
        the one before had ended."""
        with self.lock:
            calls = sorted(self.calls, key=lambda c: c[1])
        depth = []
        for i, (_, start, _) in enumerate(calls):
            before = [depth[j] for j in range(i) if calls[j][2] <= start]
            depth.append(1 + max(before, default=0))
        ops = {}
        for op, _, _ in calls:
            ops[op] = ops.get(op, 0) + 1
        return len(calls), max(depth, default=0), dict(sorted(ops.items()))


# ---------------------------------------------------------------------------------------
# The emulator and the binary


class Emulator:
    def __init__(self):
        self.state = tempfile.mkdtemp(prefix="reconcile-bench-")
        out = subprocess.run([SCRIPTS / "emulator-start", self.state], check=True,
                             capture_output=True, text=True)
        self.url = out.stdout.strip()
        host, port = self.url.removeprefix("http://").split(":")
        self.address = (host, int(port))
        self.pid = int((Path(self.state) / "pid").read_text())

    def reset(self):
        subprocess.run([SCRIPTS / "emulator-reset", self.state], check=True)

    def seed(self, *extra):
        manifest = Path(self.state) / "site.json"
        ids = Path(self.state) / "ids.json"
        subprocess.run([sys.executable, SCRIPTS / "seed.py", "--endpoint", self.url,
                        "--out", manifest, "--ids-out", ids, *extra],
                       check=True, capture_output=True)
        return manifest, json.loads(ids.read_text())

    def stop(self):
        subprocess.run([SCRIPTS / "emulator-stop", self.state], check=False)
        shutil.rmtree(self.state, ignore_errors=True)


def environment(endpoint):
    env = dict(os.environ)
    env.update(AWS_ENDPOINT_URL=endpoint, AWS_REGION="us-east-1",
               AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", NO_COLOR="1")
    env.pop("AWS_PROFILE", None)
    # The emulator under many stacks (and the AWS-like layer) answers far slower than AWS.
    env.setdefault("RECONCILE_CALL_TIMEOUT", "120s")
    return env


def rss_anon_kib(pid):
    """The process's anonymous resident memory (heap, stacks) now, in KiB; 0 if gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid):
    """User and system CPU time a process has used so far (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


class Ran:
    """One run of the binary: its output and what it cost."""

    def __init__(self, stdout, wall, peak_kib, anon_kib, cpu, stderr="", code=0):
        self.stdout = stdout
        self.stderr = stderr
        self.code = code
        self.wall = wall
        self.peak_mib = peak_kib / 1024
        self.anon_mib = anon_kib / 1024
        self.cpu = cpu


# Every build of the binary a bench run used (inode, size, mtime): a build that replaced
# the file mid-run mixes two binaries' figures, which the report then says.
BUILDS = set()


def start_binary(binary, args, endpoint, out, err):
    """Starts the binary, waiting for it while it is missing: a build elsewhere may replace
    the file at any moment (cargo removes and relinks it), and a run started in that
    window would fail for nothing. Returns the process and its start time."""
    deadline = time.monotonic() + 900
    while True:
        try:
            st = os.stat(binary)
            BUILDS.add((st.st_ino, st.st_size, st.st_mtime_ns))
            t0 = time.monotonic()
            return subprocess.Popen([str(binary), *args], env=environment(endpoint),
                                    stdout=out, stderr=err), t0
        except OSError as e:  # missing (ENOENT) or being written (ETXTBSY)
            if time.monotonic() > deadline:
                sys.exit(f"bench: {binary} did not come back in 15 minutes: {e}")
            log(f"bench: {binary} is not there ({e.strerror}); a rebuild? waiting")
            time.sleep(2)


def run(binary, endpoint, args, ok=(0,)):
    """Runs the binary. Peak memory and CPU time are the kernel's own figures for the
    process (wait4's rusage: maximum resident set, user + system time); the anonymous
    part of the resident set (heap and stacks, without the binary's mapped code) is
    sampled every 2 ms while it runs."""
    args = [str(a) for a in args]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        p, t0 = start_binary(binary, args, endpoint, out, err)
        anon = 0
        while True:
            pid, status, usage = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            anon = max(anon, rss_anon_kib(p.pid))
            time.sleep(0.002)
        wall = time.monotonic() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if p.returncode not in ok:
        sys.exit(f"bench: {' '.join(args)} exited {p.returncode}, expected "
                 f"{' or '.join(map(str, ok))}:\n{stdout[-2000:]}\n{stderr[-2000:]}")
    return Ran(stdout, wall, usage.ru_maxrss, anon, usage.ru_utime + usage.ru_stime, stderr,
               p.returncode)


# ---------------------------------------------------------------------------------------
# Scenarios


def measure(name, binary, proxy, emu, args, repeat, prepare=None, rounds_of=None):
    """Runs the binary with `args` (a list, or a function of what `prepare()` returned)
    through the proxy `repeat` times at the configured delay, after `prepare()` each time
    if given, and once more without delay."""
    runs, emulator_cpu = [], []
    figures = None

    def arguments():
        prepared = prepare() if prepare else None
        return args(prepared) if callable(args) else args

    for _ in range(repeat):
        call = arguments()
        proxy.reset()
        before = cpu_seconds(emu.pid)
        ran = run(binary, proxy.url, call)
        emulator_cpu.append(cpu_seconds(emu.pid) - before)
        runs.append(ran)
        if figures is None:
            requests, chain, ops = proxy.figures()
            figures = dict(requests=requests, chain=chain, by_operation=ops,
                           **(rounds_of(ran.stdout) if rounds_of else {}))
    delay, proxy.delay = proxy.delay, 0
    floor = run(binary, proxy.url, arguments())
    proxy.delay = delay

    def ms(seconds):
        return round(seconds * 1000, 1)

    result = dict(
        name=name, **figures,
        wall_ms=ms(statistics.median(r.wall for r in runs)),
        walls_ms=[ms(r.wall) for r in runs],
        floor_ms=ms(floor.wall),
        binary_cpu_ms=ms(statistics.median(r.cpu for r in runs)),
        emulator_cpu_ms=ms(statistics.median(emulator_cpu)),
        peak_mib=round(max(r.peak_mib for r in runs), 1),
        peak_anon_mib=round(max(r.anon_mib for r in runs), 1),
    )
    log(f"  {name}: {result['requests']} requests, wall {result['wall_ms']} ms")
    return result


def plan_rounds(stdout):
    doc = json.loads(stdout)
    return dict(rounds=doc["stats"]["rounds"], stacks=doc["stats"]["stacks"],
                binary_requests=doc["stats"]["requests"])


def apply_rounds(stdout):
    events = [json.loads(l) for l in stdout.splitlines() if l.startswith("{")]
    ran = [e for e in events if e.get("event") == "ran"]
    if len(ran) != 1 or ran[0]["finished"] != "done":
        sys.exit(f"bench: the apply did not finish: {ran}")
    gates = [e for e in events if e.get("event") == "finished" and e["node"].startswith("gate.")]
    return dict(rounds=ran[0]["rounds_without_gates"], rounds_with_gates=ran[0]["rounds"],
                executor_requests=ran[0]["requests"],
                gate_seconds=round(sum(e["seconds"] for e in gates), 3))


def empty_account(emu):
    """The seeded account without the DNS record and with the backend group's rules
    removed: what the example's golden 'empty account' plan starts from."""
    manifest, ids = emu.seed("--ttl", "1", "--transition-ttl", "1")
    code = f"""
import boto3
kw = dict(endpoint_url={emu.url!r}, region_name='us-east-1',
          aws_access_key_id='testing', aws_secret_access_key='testing')
r53, ec2 = boto3.client('route53', **kw), boto3.client('ec2', **kw)
r53.change_resource_record_sets(HostedZoneId={ids['zone_id']!r}, ChangeBatch={{'Changes': [
    {{'Action': 'DELETE', 'ResourceRecordSet': {{'Name': 'www.example.com', 'Type': 'A',
      'TTL': 1, 'ResourceRecords': [{{'Value': {ids['eip']['public_ip']!r}}}]}}}}]}})
g = ec2.describe_security_groups(GroupIds=[{ids['security_group']!r}])['SecurityGroups'][0]
ec2.revoke_security_group_ingress(GroupId=g['GroupId'], IpPermissions=g['IpPermissions'])
"""
    subprocess.run([sys.executable, "-c", code], check=True)
    return manifest


def scenarios(binary, emu, proxy, repeat, stack_counts):
    results = []

    # The setups' applies run with --api-rate 0: they are not measured, and the client-side
    # limiter (AWS's rates, against an emulator that does not throttle) would make
    # converging 50 stacks take minutes (CreateLoadBalancer: 10, then one per 5 s).
    log("plan-example: seeding the starting point and applying it (no delay)")
    emu.reset()
    manifest, _ = emu.seed("--ttl", "1", "--transition-ttl", "1")
    run(binary, emu.url, ["apply", "-f", manifest, "--yes", "--api-rate", "0"])
    results.append(measure("plan-example", binary, proxy, emu,
                           ["plan", "-f", manifest, "--json", "--detailed-exitcode"],
                           repeat, rounds_of=plan_rounds))

    log("apply-empty: from an empty account, freshly seeded before each run")

    def fresh():
        emu.reset()
        return empty_account(emu)

    results.append(measure("apply-empty", binary, proxy, emu,
                           lambda manifest: ["apply", "-f", manifest, "--yes", "--json"],
                           repeat, prepare=fresh, rounds_of=apply_rounds))

    most = max(stack_counts)
    log(f"plan-N: seeding {most} stacks and applying them (no delay)")
    emu.reset()
    folder = Path(emu.state) / "stacks"
    emu.seed("--stacks", str(most), "--stacks-dir", folder)
    run(binary, emu.url, ["apply", "-f", folder, "--yes", "--api-rate", "0"])
    for n in stack_counts:
        subset = Path(emu.state) / f"stacks-{n}"
        subset.mkdir(exist_ok=True)
        for i in range(1, n + 1):
            shutil.copy(folder / f"site-{i}.json", subset / f"site-{i}.json")
        results.append(measure(f"plan-{n}", binary, proxy, emu,
                               ["plan", "-f", subset, "--json", "--detailed-exitcode"],
                               repeat, rounds_of=plan_rounds))
    return results


# ---------------------------------------------------------------------------------------
# Under the AWS-like layer (--aws-like)

# Every timing of the layer, passed to it explicitly (not its defaults), in seconds: how
# long a new load balancer stays `provisioning`, the factor on a target group's interval
# x healthy threshold for targets to stay `initial`, how long a Route53 change stays
# PENDING, how long a new resource is "not found", the factor on the deregistration
# delay, how long a deleted load balancer's interfaces keep its groups in use.
LAYER_TIMINGS = {
    "provisioning": 3.0,
    "health-scale": 0.05,
    "route53-pending": 2.0,
    "consistency": 1.0,
    "draining-scale": 0.01,
    "eni-linger": 3.0,
}
MIGRATION_TARGET = 1.2   # wall <= 1.2 x floor
PLAN_TARGET = 1.3        # wall <= 1.3 x floor
NEGLIGIBLE_FLOOR = 0.5   # s: below it everything fits in the buckets; no ratio target
# The no-op plans measured by default: 50 stacks (the issue's), and 20, where the client's
# limiter holds no request back for long (see docs/performance.md).
AWS_LIKE_STACKS = [20, 50]


def layer_module():
    """scripts/aws-like.py as a module: its RATE_LIMITS and bucket_keys are the floor's."""
    spec = importlib.util.spec_from_file_location("aws_like", SCRIPTS / "aws-like.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class AwsLikeEmulator:
    """moto behind the AWS-like layer (scripts/emulator-start --aws-like), in a private
    state directory: the layer's URL (what the binary talks to), the oracle's (the same
    state without latency, throttling or consistency noise: for seeding and checks), and
    moto's own (for setups that should not pay the layer's waits)."""

    def __init__(self, latency, seed=1):
        self.state = tempfile.mkdtemp(prefix="reconcile-bench-aws-like-")
        layer_args = ["--seed", str(seed), "--latency", latency]
        for key, value in LAYER_TIMINGS.items():
            layer_args += [f"--{key}", str(value)]
        out = subprocess.run([SCRIPTS / "emulator-start", "--aws-like", self.state, "--",
                              *layer_args], capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"bench: the AWS-like emulator did not start:\n{out.stderr}")
        state = Path(self.state)
        self.url = out.stdout.strip()
        self.oracle = (state / "aws-like.oracle").read_text().strip()
        self.moto = (state / "moto.url").read_text().strip()
        self.pids = [int((state / "pid").read_text()), int((state / "aws-like.pid").read_text())]

    def admin(self, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.url}/_aws_like/{path}", data=data,
                                     method="GET" if data is None else "POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=120) as answer:
            return json.loads(answer.read())

    def config(self):
        return self.admin("config")

    def stats(self):
        return self.admin("stats")

    def reset(self, seed):
        """Empties moto and the layer (its buckets full again, its counts at zero), and
        gives the layer's latencies a new seed."""
        self.admin("config", {"seed": seed})
        self.admin("reset", {})

    def seed(self, *extra):
        """Seeds the account through the oracle (no latency, nothing throttled)."""
        manifest = Path(self.state) / "site.json"
        ids = Path(self.state) / "ids.json"
        out = subprocess.run([sys.executable, SCRIPTS / "seed.py", "--endpoint", self.oracle,
                              "--out", manifest, "--ids-out", ids, *map(str, extra)],
                             capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"bench: seeding failed:\n{out.stderr}")
        return manifest

    def cpu(self):
        """CPU seconds moto and the layer have used so far."""
        return sum(cpu_seconds(pid) for pid in self.pids)

    def stop(self):
        subprocess.run([SCRIPTS / "emulator-stop", self.state], check=False)
        shutil.rmtree(self.state, ignore_errors=True)


def health_window(manifest, health_scale):
    """How long the layer keeps a target `initial` once its group is in use: the largest
    interval x healthy threshold of the manifest's target groups (AWS's defaults, 30 s and
    5, where it names none), times the layer's health_scale."""
    doc = json.loads(Path(manifest).read_text())
    longest = max((tg.get("health_check", {}).get("interval_seconds", 30)
                   * tg.get("health_check", {}).get("healthy_threshold", 5)
                   for tg in doc.get("target_groups", {}).values()), default=0)
    return longest * health_scale


# The requests that must follow one another on the migration's critical path, each paying
# at least the layer's smallest latency: a round of reads (the plan), the lowering, the
# GetChange that sees it in sync, the switch, its GetChange, closing the backend's rules.
CHAIN_REQUESTS = 6


def migration_floor(config, manifest, ttl, transition_ttl):
    """The longest chain of waits the layer (and DNS) impose on the migration; see the
    module's docstring for the formula."""
    pending = float(config["route53_pending"])
    window = health_window(manifest, float(config["health_scale"]))
    dns = pending + ttl
    lb = max(float(config["provisioning"]), float(config["consistency"]) + window)
    requests = CHAIN_REQUESTS * float(config["latency"][0]) / 1000
    floor = max(dns, lb) + pending + transition_ttl + requests
    return dict(
        floor_s=round(floor, 3), dns_chain_to_switch_s=dns, lb_chain_to_switch_s=lb,
        route53_pending_s=pending, ttl_s=ttl, transition_ttl_s=transition_ttl,
        provisioning_s=float(config["provisioning"]), consistency_s=float(config["consistency"]),
        health_window_s=round(window, 3), chain_requests=CHAIN_REQUESTS,
        chain_requests_s=round(requests, 3),
        formula=(f"max(P + T, max(V, C + W)) + P + t + {CHAIN_REQUESTS} x Lmin = "
                 f"max({pending:g} + {ttl:g}, max({float(config['provisioning']):g}, "
                 f"{float(config['consistency']):g} + {window:g})) + {pending:g} + "
                 f"{transition_ttl:g} + {requests:g} = {floor:.3f} s"),
    )


def bucket_use(calls, layer, scale):
    """Requests per AWS bucket (RATE_LIMITS) among `calls` that the layer let through (a
    throttled call takes no token): {key: (requests, size, refill)}, at the layer's
    rate_scale."""
    used = {}
    for c in calls:
        if c["throttled"]:
            continue
        for key, (size, refill) in layer.bucket_keys(c["service"], c["operation"], {}):
            name = "/".join(key)
            n, _, _ = used.get(name, (0, 0, 0))
            used[name] = (n + 1, size * scale, refill * scale)
    return used


def rate_floor(calls, layer, scale):
    """The wall-time floor AWS's buckets put under a run's requests (see the docstring),
    each bucket's share of it, and the issue's simpler requests / rate per service."""
    used = bucket_use(calls, layer, scale)
    buckets = {name: dict(requests=n, size=size, refill=refill,
                          floor_s=round(max(0.0, n - size) / refill, 3))
               for name, (n, size, refill) in sorted(used.items())}
    floor = max((b["floor_s"] for b in buckets.values()), default=0.0)
    dominant = (max(buckets, key=lambda k: buckets[k]["floor_s"]) if floor > 0
                else "none: every bucket holds its requests")
    simple = {}
    for c in calls:
        spec = layer.RATE_LIMITS.get(c["service"])
        if not spec or c["throttled"]:
            continue
        if spec.get("account"):
            name, rate = c["service"], spec["account"][1] * scale
        else:  # EC2 and ACM: no account bucket, one per API
            keys = layer.bucket_keys(c["service"], c["operation"], {})
            name, rate = "/".join(keys[-1][0]), keys[-1][1][1] * scale
        n, _ = simple.get(name, (0, rate))
        simple[name] = (n + 1, rate)
    simple = {name: dict(requests=n, rate=rate, seconds=round(n / rate, 3))
              for name, (n, rate) in sorted(simple.items())}
    return dict(floor_s=round(floor, 3), dominant_bucket=dominant, buckets=buckets,
                simple_s=round(max((v["seconds"] for v in simple.values()), default=0.0), 3),
                simple=simple)


def refill_pause(calls, layer, scale):
    """How long the buckets the calls drew from need to be full again (at most each
    bucket's size over its refill rate), so that the next run starts as the first did."""
    used = bucket_use(calls, layer, scale)
    return max((min(n, size) / refill for n, size, refill in used.values()), default=0.0)


def json_events(stdout):
    return [json.loads(l) for l in stdout.splitlines() if l.startswith("{")]


def migration_segments(events, floor):
    """The DNS chain as the run went: each of its waits, measured (the gate's own
    `seconds`) against what the layer and the TTLs impose."""
    seconds = {e["node"]: e["seconds"] for e in events if e.get("event") == "finished"}
    imposed = [("lowered", "lowered TTL in sync (Route53 PENDING)", floor["route53_pending_s"]),
               ("old-ttl", "old TTL waited out", floor["ttl_s"]),
               ("switched", "switch in sync (Route53 PENDING)", floor["route53_pending_s"]),
               ("old-answers", "transition TTL waited out", floor["transition_ttl_s"])]
    out = []
    for suffix, what, wait in imposed:
        got = [v for k, v in seconds.items() if k.startswith("gate.dns.") and k.endswith("." + suffix)]
        out.append(dict(what=what, node_suffix=suffix, imposed_s=wait,
                        measured_s=round(max(got), 3) if got else None))
    # When the load balancer's gates ended, against the old TTL wait (the events carry whole
    # seconds only): the load-balancer chain is hidden if it ended first.
    def epoch(e):
        # RFC 3339, UTC, whole seconds.
        return datetime.datetime.fromisoformat(e["time"].replace("Z", "+00:00")).timestamp()
    times = [epoch(e) for e in events if "time" in e]
    t0 = min(times, default=0)
    ends = {e["node"]: epoch(e) - t0 for e in events
            if e.get("event") == "finished" and "time" in e}
    lb = [v for k, v in ends.items() if k.startswith(("gate.lb.", "gate.tg."))]
    old = [v for k, v in ends.items() if k.startswith("gate.dns.") and k.endswith(".old-ttl")]
    return out, dict(lb_gates_done_at_s=max(lb, default=None),
                     old_ttl_done_at_s=max(old, default=None))


def first_error(ran):
    """The binary's error, shortened for the report: its last `error:` line, without the
    list of stacks it names."""
    lines = [l for l in ran.stderr.splitlines() if l.strip()]
    errors = [l for l in lines if l.startswith("error")] or lines[-1:]
    text = errors[-1] if errors else f"exit {ran.code}"
    text = re.sub(r"^error: stacks [\w\-, ]+: ", "error: every stack: ", text)
    return text[:400]


def measure_migration(binary, emu, layer, repeat, ttl, transition_ttl):
    log(f"migration-aws-like: the article's migration (TTL {ttl} s, transition {transition_ttl} s) "
        f"in one apply, {repeat} runs, the account reset and reseeded before each")
    runs = []
    floor = None
    for i in range(repeat):
        emu.reset(seed=i + 1)
        manifest = emu.seed("--ttl", ttl, "--transition-ttl", transition_ttl)
        if floor is None:
            floor = migration_floor(emu.config(), manifest, ttl, transition_ttl)
        cpu = emu.cpu()
        ran = run(binary, emu.url, ["apply", "-f", manifest, "--yes", "--json"], ok=(0, 1))
        emulator_cpu = emu.cpu() - cpu
        stats = emu.stats()
        events = json_events(ran.stdout)
        done = [e for e in events if e.get("event") == "ran"]
        failed = [e for e in events if e.get("event") == "failed"]
        record = dict(latency_seed=i + 1, ok=False, exit=ran.code, wall_s=round(ran.wall, 3),
                      requests=stats["requests"], throttled=stats["throttled"],
                      refused=stats["refused"], by_service=stats["by_service"],
                      binary_cpu_s=round(ran.cpu, 3), emulator_cpu_s=round(emulator_cpu, 3),
                      peak_mib=round(ran.peak_mib, 1), rounds=None)
        if ran.code != 0 or len(done) != 1 or done[0]["finished"] != "done" or failed:
            record["error"] = "; ".join(e.get("error", "") for e in failed) or first_error(ran)
            log(f"  run {i + 1}: FAILED after {ran.wall:.2f} s: {record['error']}")
            runs.append(record)
            continue
        # Converged: a plan right after, through the oracle, has nothing to do.
        check = run(binary, emu.oracle, ["plan", "-f", manifest, "--detailed-exitcode",
                                         "--api-rate", "0"], ok=(0, 1, 2))
        segments, lb = migration_segments(events, floor)
        record.update(ok=check.code == 0, converged=check.code == 0,
                      executor_requests=done[0]["requests"],
                      rounds=done[0]["rounds_without_gates"], rounds_with_gates=done[0]["rounds"],
                      segments=segments, **lb)
        if check.code != 0:
            record["error"] = f"not converged: plan afterwards exited {check.code}"
        runs.append(record)
        log(f"  run {i + 1}: wall {ran.wall:.2f} s, {stats['requests']} requests, "
            f"{stats['throttled']} throttled; DNS chain "
            + ", ".join(f"{s['node_suffix']} {s['measured_s']} s" for s in segments))
    result = summarise("migration-aws-like", runs, floor["floor_s"], MIGRATION_TARGET)
    result["floor"] = floor
    good = [r for r in runs if r["ok"]]
    if good:
        result["segments_median"] = [
            dict(what=s["what"], imposed_s=s["imposed_s"],
                 measured_s=statistics.median(r["segments"][j]["measured_s"] or 0 for r in good))
            for j, s in enumerate(good[0]["segments"])]
        chain = sum(s["measured_s"] for s in result["segments_median"])
        result["rest_s"] = round(result["wall_s"] - chain, 3)
    return result


def plan_run(binary, emu, folder, args):
    """One plan through the layer: the binary's figures and the layer's for its calls."""
    before = emu.stats()["requests"]
    cpu = emu.cpu()
    ran = run(binary, emu.url, ["plan", "-f", folder, "--json", "--detailed-exitcode", *args],
              ok=(0, 1, 2))
    emulator_cpu = emu.cpu() - cpu
    calls = [c for c in emu.stats()["calls"] if c["seq"] > before]
    by_service = {}
    for c in calls:
        s = by_service.setdefault(c["service"], dict(requests=0, throttled=0))
        s["requests"] += 1
        s["throttled"] += int(c["throttled"])
    record = dict(ok=ran.code == 0, exit=ran.code, wall_s=round(ran.wall, 3),
                  requests=len(calls), throttled=sum(1 for c in calls if c["throttled"]),
                  by_service=by_service, rounds=None, binary_cpu_s=round(ran.cpu, 3),
                  emulator_cpu_s=round(emulator_cpu, 3), peak_mib=round(ran.peak_mib, 1))
    if ran.code == 0:
        stats = json.loads(ran.stdout)["stats"]
        record.update(binary_requests=stats["requests"], rounds=stats["rounds"],
                      stacks=stats["stacks"])
    else:
        record["error"] = first_error(ran)
    return record, calls


def measure_plans(binary, emu, layer, repeat, counts):
    most = max(counts)
    log(f"plan-N-aws-like: seeding {most} stacks through the oracle and converging them "
        "directly on moto")
    emu.reset(seed=1)
    folder = Path(emu.state) / "stacks"
    emu.seed("--stacks", most, "--stacks-dir", folder)
    t = time.monotonic()
    run(binary, emu.moto, ["apply", "-f", folder, "--yes", "--api-rate", "0",
                           "--parallel-stacks", "8"])
    log(f"  converged on moto in {time.monotonic() - t:.1f} s; checking through the oracle")
    # Converged as the layer shows it (this also has the layer learn which target groups
    # are in use, once, before the measured runs).
    run(binary, emu.oracle, ["plan", "-f", folder, "--detailed-exitcode", "--api-rate", "0"])
    scale = float(emu.config()["rate_scale"])
    results = []
    for n in counts:
        name = f"plan-{n}-aws-like"
        subset = Path(emu.state) / f"stacks-{n}"
        subset.mkdir(exist_ok=True)
        for i in range(1, n + 1):
            shutil.copy(folder / f"site-{i}.json", subset / f"site-{i}.json")
        # The plan's requests, with the layer's latency but no throttling and the binary's
        # limiter off: what the floor is computed from, whether or not the runs succeed.
        emu.admin("config", {"throttle": False})
        reference, calls = plan_run(binary, emu, subset, ["--api-rate", "0"])
        emu.admin("config", {"throttle": True})   # and every bucket full again
        if not reference["ok"]:
            sys.exit(f"bench: {name}: the reference plan failed: {reference['error']}")
        floor = rate_floor(calls, layer, scale)
        log(f"  {name}: {len(calls)} requests, floor {floor['floor_s']} s "
            f"({floor['dominant_bucket']}); without rate limits {reference['wall_s']:.2f} s")
        runs = []
        pause = 0.0
        for i in range(repeat):
            if pause:
                time.sleep(pause + 0.25)
            record, calls = plan_run(binary, emu, subset, [])
            pause = refill_pause(calls, layer, scale)
            runs.append(record)
            log(f"  run {i + 1}: " + (f"wall {record['wall_s']:.2f} s" if record["ok"] else
                                       f"FAILED after {record['wall_s']:.2f} s: {record['error']}")
                + f", {record['requests']} requests, {record['throttled']} throttled")
        time.sleep(pause + 0.25)
        result = summarise(name, runs, floor["floor_s"],
                           PLAN_TARGET if floor["floor_s"] >= NEGLIGIBLE_FLOOR else None)
        result.update(stacks=n, floor=floor, reference=reference)
        results.append(result)
    return results


def summarise(name, runs, floor, target):
    """Medians over the runs, and the targets: every run succeeds, nothing is throttled,
    and the wall time is within `target` x floor (None: no ratio target, the floor being
    negligible). A failed run's wall time is its time to the failure."""
    good = [r for r in runs if r["ok"]]
    timed = good or runs
    wall = statistics.median(r["wall_s"] for r in timed)
    throttled = sum(r["throttled"] for r in runs)

    def median(key):
        values = [r[key] for r in good if r.get(key) is not None]
        return statistics.median(values) if values else None

    result = dict(
        name=name, runs=runs, ok_runs=len(good), wall_s=round(wall, 3),
        walls_s=[r["wall_s"] for r in runs], wall_of="successful runs" if good else "failed runs",
        floor_s=round(floor, 3), ratio=round(wall / floor, 3) if floor and good else None,
        requests=statistics.median(r["requests"] for r in timed), throttled=throttled,
        rounds=median("rounds"), rounds_with_gates=median("rounds_with_gates"),
        executor_requests=median("executor_requests"),
        errors=sorted({r["error"] for r in runs if r.get("error")}),
    )
    targets = [dict(what="runs succeed", limit=f"{len(runs)} of {len(runs)}",
                    met=len(good) == len(runs)),
               dict(what="throttled requests", limit="0 (in every run)", met=throttled == 0)]
    if target is not None:
        targets.append(dict(what="wall", limit=f"<= {target:g} x floor = {target * floor:.2f} s",
                            met=bool(good) and wall <= target * floor))
    result["targets"] = targets
    return result


def aws_like_scenarios(binary, repeat, counts, ttl, transition_ttl, latency):
    layer = layer_module()
    emu = AwsLikeEmulator(latency)
    try:
        config = emu.config()
        log(f"AWS-like layer {emu.url} (oracle {emu.oracle}, moto {emu.moto}): {json.dumps(config)}")
        results = [measure_migration(binary, emu, layer, repeat, ttl, transition_ttl),
                   *measure_plans(binary, emu, layer, repeat, counts)]
    finally:
        emu.stop()
    return results, config


def aws_like_table(results, config):
    head = ("scenario", "runs ok", "requests", "throttled", "rounds", "wall s", "floor s",
            "wall / floor", "targets")
    rows = []
    for r in results:
        marks = "; ".join(f"{t['what']} {t['limit']}: {'met' if t['met'] else 'MISSED'}"
                          for t in r["targets"])
        rounds = "-" if r["rounds"] is None else f"{r['rounds']:g}"
        if r.get("rounds_with_gates") is not None:
            rounds += f" ({r['rounds_with_gates']:g} with gates)"
        ratio = f"{r['ratio']:.2f}" if r["ratio"] else "-"
        wall = f"{r['wall_s']:.2f}" + ("" if r["ok_runs"] else " (to the failure)")
        rows.append((r["name"], f"{r['ok_runs']} of {len(r['runs'])}", f"{r['requests']:g}",
                     str(r["throttled"]), rounds, wall, f"{r['floor_s']:.2f}", ratio, marks))
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    text = (f"AWS-like layer: latency {config['latency'][0]:g}-{config['latency'][1]:g} ms, "
            f"provisioning {config['provisioning']:g} s, health scale {config['health_scale']:g}, "
            f"Route53 pending {config['route53_pending']:g} s, consistency "
            f"{config['consistency']:g} s, rate scale {config['rate_scale']:g}; "
            f"{os.cpu_count()} CPUs, load average {load}\n\n" + "\n".join(lines) + "\n")
    for r in results:
        f = r["floor"]
        if r["name"] == "migration-aws-like":
            text += f"\nmigration floor: {f['formula']}\n"
            if "segments_median" in r:
                text += ("  DNS chain, median of the runs: "
                         + "; ".join(f"{s['what']} {s['measured_s']:.2f} s (imposed "
                                     f"{s['imposed_s']:g})" for s in r["segments_median"])
                         + f"; the rest (start-up, lock, plan, changes, release) "
                         f"{r['rest_s']:.2f} s\n"
                         f"  requests {r['requests']:g} at the layer (the walk's own: "
                         f"{r['executor_requests']:g})\n")
        else:
            text += (f"\n{r['name']} floor: max over buckets of (requests - size) / refill = "
                     f"{f['floor_s']:.2f} s, set by {f['dominant_bucket']}\n  from the "
                     f"{r['reference']['requests']} requests of the plan (a run without rate "
                     f"limits: {r['reference']['wall_s']:.2f} s): "
                     + "; ".join(f"{k} {b['requests']} of {b['size']:g} at {b['refill']:g}/s"
                                 for k, b in f["buckets"].items())
                     + f"\n  requests per service / its rate: {f['simple_s']:.2f} s ("
                     + "; ".join(f"{k} {v['requests']} / {v['rate']:g}/s"
                                 for k, v in f["simple"].items()) + ")\n")
        for e in r["errors"]:
            text += f"  failed: {e}\n"
    return text


# ---------------------------------------------------------------------------------------
# Targets and the report


def targets(result, delay_ms):
    """The issue's targets that apply to a scenario: (what, limit text, met)."""
    name = result["name"]
    out = []
    if name == "plan-example":
        out += [("requests", "<= 12", result["requests"] <= 12),
                ("rounds", "<= 3", result["rounds"] <= 3),
                ("wall", f"< {4 * delay_ms + 100:g} ms (4 x delay + 100)",
                 result["wall_ms"] < 4 * delay_ms + 100)]
    elif name == "apply-empty":
        out += [("rounds, gates excluded", "<= 8", result["rounds"] <= 8)]
    elif name == "plan-50":
        per_stack = result["requests"] / 50
        out += [("rounds", "<= 4", result["rounds"] <= 4),
                ("wall", f"< {6 * delay_ms + 300:g} ms (6 x delay + 300)",
                 result["wall_ms"] < 6 * delay_ms + 300),
                ("requests per stack", f"< 8 (measured {per_stack:.2f})", per_stack < 8),
                ("peak memory", "< 40 MiB", result["peak_mib"] < 40)]
    return [dict(what=w, limit=l, met=m) for w, l, m in out]


def table(results, delay_ms):
    head = ("scenario", "requests", "rounds", "chain", "wall ms", "floor ms", "binary CPU ms",
            "emulator CPU ms", "peak MiB (heap)", "targets")
    rows = []
    for r in results:
        marks = "; ".join(f"{t['what']} {t['limit']}: {'met' if t['met'] else 'MISSED'}"
                          for t in r["targets"]) or "-"
        rounds = str(r["rounds"])
        if r["name"] == "apply-empty":
            rounds = f"{r['rounds']} ({r['rounds_with_gates']} with gates)"
        rows.append((r["name"], str(r["requests"]), rounds, str(r["chain"]),
                     f"{r['wall_ms']:.0f}", f"{r['floor_ms']:.0f}", f"{r['binary_cpu_ms']:.0f}",
                     f"{r['emulator_cpu_ms']:.0f}",
                     f"{r['peak_mib']:.1f} ({r['peak_anon_mib']:.1f})", marks))
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"delay {delay_ms:g} ms per request; {os.cpu_count()} CPUs, load average {load}\n\n"
            + "\n".join(lines))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bin", required=True, type=Path, help="the reconcile binary to measure")
    p.add_argument("--profile", default="dev", help="the cargo profile it was built with")
    p.add_argument("--delay", type=parse_delay, default=0.040,
                   help="held before each request is forwarded (default 40ms)")
    p.add_argument("--repeat", type=int, default=3, help="runs per scenario (median wall)")
    p.add_argument("--stacks", dest="stacks_given",
                   help="stack counts for the plan-N scenarios (default 1,10,50; with "
                        "--aws-like 20,50)")
    p.add_argument("--out", type=Path,
                   help="where the JSON goes (default target/bench.json; with --aws-like "
                        "target/bench-aws-like.json)")
    p.add_argument("--aws-like", action="store_true",
                   help="measure the migration and no-op plans of many stacks under the "
                        "AWS-like layer (scripts/aws-like.py) instead")
    p.add_argument("--ttl", type=int, default=10,
                   help="--aws-like: the migration's old TTL in seconds (default 10)")
    p.add_argument("--transition-ttl", type=int, default=3,
                   help="--aws-like: the migration's transition TTL in seconds (default 3)")
    p.add_argument("--latency", default="5,60",
                   help="--aws-like: the layer's latency per call, MIN,MAX ms (default 5,60)")
    args = p.parse_args()
    counts = sorted({int(n) for n in (args.stacks_given or "1,10,50").split(",") if n.strip()})
    if not counts or min(counts) < 1:
        p.error("--stacks takes positive counts, e.g. 1,10,50")
    if args.aws_like:
        if args.stacks_given is None:
            counts = AWS_LIKE_STACKS
        return main_aws_like(args, counts)
    args.out = args.out or REPO / "target" / "bench.json"

    delay_ms = args.delay * 1000
    emu = Emulator()
    proxy = DelayProxy(emu.address, args.delay)
    try:
        results = scenarios(args.bin.resolve(), emu, proxy, max(1, args.repeat), counts)
    finally:
        proxy.close()
        emu.stop()
    for r in results:
        r["targets"] = targets(r, delay_ms)
    version = subprocess.run([args.bin, "--version"], capture_output=True, text=True).stdout
    doc = dict(
        delay_ms=delay_ms, repeat=args.repeat, profile=args.profile,
        cpus=os.cpu_count(), load_average=[round(x, 2) for x in os.getloadavg()],
        binary=version.strip(), binary_builds=len(BUILDS), emulator="moto " + moto_version(),
        when=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), scenarios=results,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(table(results, delay_ms))
    warn_builds()
    print(f"\nfigures written to {args.out}")


def main_aws_like(args, counts):
    out = args.out or REPO / "target" / "bench-aws-like.json"
    t0 = time.monotonic()
    results, config = aws_like_scenarios(args.bin.resolve(), max(1, args.repeat), counts,
                                         args.ttl, args.transition_ttl, args.latency)
    version = subprocess.run([args.bin, "--version"], capture_output=True, text=True).stdout
    doc = dict(
        mode="aws-like", repeat=args.repeat, profile=args.profile, cpus=os.cpu_count(),
        load_average=[round(x, 2) for x in os.getloadavg()], binary=version.strip(),
        binary_builds=len(BUILDS), emulator="moto " + moto_version() + " behind scripts/aws-like.py",
        layer=config, ttl=args.ttl, transition_ttl=args.transition_ttl,
        when=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        bench_seconds=round(time.monotonic() - t0, 1), scenarios=results,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(aws_like_table(results, config))
    warn_builds()
    print(f"figures written to {out} (the whole run: {doc['bench_seconds']:.0f} s)")


def warn_builds():
    if len(BUILDS) > 1:
        print(f"\nWARNING: the binary was replaced during the run ({len(BUILDS)} builds "
              "measured): the figures mix them")


def moto_version():
    try:
        from importlib.metadata import version
        return version("moto")
    except Exception:  # noqa: BLE001 - the version is informative only
        return "?"


if __name__ == "__main__":
    main()
