#!/usr/bin/env python3
"""The benchmark's driver (run it through scripts/bench, which builds the binary first).

    .venv/bin/python scripts/bench.py --bin PATH [--delay 40ms] [--repeat 3]
                                      [--stacks 1,10,50] [--out FILE]

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
"""

import argparse
import asyncio
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

    def __init__(self, stdout, wall, peak_kib, anon_kib, cpu):
        self.stdout = stdout
        self.wall = wall
        self.peak_mib = peak_kib / 1024
        self.anon_mib = anon_kib / 1024
        self.cpu = cpu


def run(binary, endpoint, args, ok=(0,)):
    """Runs the binary. Peak memory and CPU time are the kernel's own figures for the
    process (wait4's rusage: maximum resident set, user + system time); the anonymous
    part of the resident set (heap and stacks, without the binary's mapped code) is
    sampled every 2 ms while it runs."""
    args = [str(a) for a in args]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.monotonic()
        p = subprocess.Popen([str(binary), *args], env=environment(endpoint),
                             stdout=out, stderr=err)
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
    return Ran(stdout, wall, usage.ru_maxrss, anon, usage.ru_utime + usage.ru_stime)


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

    log("plan-example: seeding the starting point and applying it (no delay)")
    emu.reset()
    manifest, _ = emu.seed("--ttl", "1", "--transition-ttl", "1")
    run(binary, emu.url, ["apply", "-f", manifest, "--yes"])
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
    run(binary, emu.url, ["apply", "-f", folder, "--yes"])
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
    p.add_argument("--stacks", default="1,10,50",
                   help="stack counts for the plan-N scenarios (default 1,10,50)")
    p.add_argument("--out", type=Path, default=REPO / "target" / "bench.json",
                   help="where the JSON goes (default target/bench.json)")
    args = p.parse_args()
    counts = sorted({int(n) for n in args.stacks.split(",") if n.strip()})
    if not counts or min(counts) < 1:
        p.error("--stacks takes positive counts, e.g. 1,10,50")

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
        binary=version.strip(), emulator="moto " + moto_version(),
        when=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), scenarios=results,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(table(results, delay_ms))
    print(f"\nfigures written to {args.out}")


def moto_version():
    try:
        from importlib.metadata import version
        return version("moto")
    except Exception:  # noqa: BLE001 - the version is informative only
        return "?"


if __name__ == "__main__":
    main()
