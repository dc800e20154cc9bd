#!/usr/bin/env python3
"""Writes hostile manifests (huge, deeply nested, odd Unicode) and times `reconcile validate`
on each (docs/fuzzing.md). Each answer should take well under a second or two.

    scripts/huge-manifests.py OUT_DIR [--bin PATH/TO/reconcile]

Without --bin only the files are written. With it, each file is validated once and the
exit code, wall time and size of the report are printed; the report itself is discarded.
"""

import argparse
import copy
import json
import pathlib
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
LIMIT = 1024 * 1024  # the parser's MAX_BYTES
ODD = "\u202e\u200b\u0301\U0001F600\ufeff\u0000\u00ad\u2066"


def base():
    return json.loads((REPO / "manifests/site.example.json").read_text())


def with_listeners(listeners, m=None):
    m = m or base()
    m["load_balancer"]["listeners"] = listeners
    return m


def cases():
    """(file name, what it is, document: a JSON value or raw text)."""
    yield "listeners-50k-empty.json", "50,000 empty listeners (3 missing fields each)", with_listeners([{}] * 50000)
    yield "listeners-50k-port-only.json", "50,000 listeners with only a port", with_listeners(
        [{"port": i + 1} for i in range(50000)])
    yield "listeners-50k-unknown-field.json", "50,000 listeners with an unknown field", with_listeners(
        [{"x": 1}] * 50000)
    yield "listeners-20k-valid.json", "20,000 well-formed listeners", with_listeners(
        [{"port": i + 1, "protocol": "HTTP", "forward": "http"} for i in range(20000)])
    yield "listeners-20k-same-port.json", "20,000 listeners on one port", with_listeners(
        [{"port": 80, "protocol": "HTTP", "forward": "http"}] * 20000)
    yield "listeners-15k-unknown-dangling.json", "15,000 listeners, each with an unknown field and a dangling forward", with_listeners(
        [{"port": 80, "protocol": "HTTP", "forward": "z", "x": 1}] * 15000)
    m = base()
    m["target_groups"] = {f"t{i}": {"port": 80, "protocol": "HTTP"} for i in range(11000)}
    yield "forward-dangling-11k-of-11k-groups.json", "11,000 dangling forwards with 11,000 target groups declared", with_listeners(
        [{"port": i + 1, "protocol": "HTTP", "forward": "missing"} for i in range(11000)], m)
    m = base()
    m["security_groups"] = {f"g{i}": {} for i in range(10000)}
    m["security_groups"]["lb"] = {"ingress": [{"ports": [80], "from": "nope"}] * 10000}
    yield "from-dangling-10k-of-10k-groups.json", "10,000 dangling `from` with 10,000 security groups declared", m
    m = base()
    m["certificates"] = {"c0": {"domain": "a.example.org"}}
    m["load_balancer"]["listeners"] = [
        {"port": i + 1, "protocol": "HTTPS", "certificate": "c0", "forward": "app"} for i in range(8000)]
    m["dns"]["records"] = [{"name": f"{i:x}.example.com", "type": "A", "to": "load_balancer"} for i in range(8000)]
    yield "https-8k-records-8k-uncovered.json", "8,000 HTTPS listeners and 8,000 records no certificate covers", m
    m = base()
    m["certificates"] = {}
    m["target_groups"].pop("app")
    m["load_balancer"]["listeners"] = [{"port": 80, "protocol": "HTTP", "forward": "http"}]
    m["dns"] = {"zone": "x", "records": [{"name": f"{i:x}.x", "type": "A", "to": "load_balancer"} for i in range(21000)]}
    yield "records-21k-valid.json", "21,000 distinct alias records (a valid manifest)", m
    m = base()
    m["security_groups"]["backend"]["ingress"] = [{"ports": [80], "cidrs": ["0.0.0.0/0"]}] * 25000
    yield "ingress-25k-open.json", "25,000 ingress rules open to the world", m
    m = base()
    m["target_groups"]["http"]["targets"] = ["i-0aaaaaaaaaaaaaaa1"] * 45000
    yield "targets-45k-same.json", "45,000 copies of one target", m
    m = base()
    for i in range(80000):
        m[f"x{i}"] = 1
    yield "unknown-top-80k.json", "80,000 unknown top-level fields", m
    yield "duplicate-keys-80k.json", "80,000 copies of one key", "{" + ",".join(['"stack":"a"'] * 80000) + "}"
    m = base()
    m["stack"] = "a" * (LIMIT - 2000)
    yield "string-1mib.json", "a stack id of 1 MiB less 2,000 bytes", m
    m = base()
    m["stack"] = "a" * (LIMIT + 10)
    yield "string-over-limit.json", "a stack id over the 1 MiB limit", m
    m = base()
    m["tags"] = {"k": "\u00e9" * (LIMIT // 2 - 1200)}
    yield "string-half-mib-2-byte-chars.json", "a tag value of 500,000 two-byte characters", m
    m = base()
    m["stack"] = ODD * 8000
    m["tags"] = {ODD * i: ODD for i in range(1, 150)}
    yield "odd-unicode.json", "bidi overrides, zero-width, combining marks, emoji, BOM and NUL in keys and values", m
    yield "deep-arrays-500k.json", "500,000 nested lists", "[" * 500000 + "]" * 500000
    yield "deep-objects-100k.json", "100,000 nested objects", '{"a":' * 100000 + "1" + "}" * 100000
    yield "deep-unclosed-1m.json", "1 MiB of `[`", "[" * (LIMIT - 1)
    yield "number-1m-digits.json", "a version of a million digits", '{"version":' + "9" * (LIMIT - 20) + "}"
    yield "newlines-1m.json", "a million newlines in an object", "{" + "\n" * (LIMIT - 10) + "}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir", type=pathlib.Path)
    ap.add_argument("--bin", type=pathlib.Path, help="a reconcile binary to time")
    args = ap.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for name, what, doc in cases():
        text = doc if isinstance(doc, str) else json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
        data = text.encode()
        path = args.out_dir / name
        path.write_bytes(data)
        if not args.bin:
            print(f"{name}\t{len(data)} bytes\t{what}")
            continue
        start = time.monotonic()
        proc = subprocess.Popen([str(args.bin), "validate", "-f", str(path)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        report = 0
        while chunk := proc.stderr.read(1 << 20):
            report += len(chunk)
        code = proc.wait()
        took = time.monotonic() - start
        print(f"{took:7.2f}s  exit {code}  input {len(data):>9} B  report {report:>11} B  {name}: {what}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
