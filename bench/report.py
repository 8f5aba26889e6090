#!/usr/bin/env python3
"""The figures of scripts/bench.sh, checked against the budgets of issue 7.

    report.py artifacts OUT.json          stripped + zipped size of each function
    report.py recording LOG OUT.json      parse tests/recording_memory.rs's line
    report.py summary                     print every figure, exit 1 if a budget is missed

Everything is read from and written to target/bench/ (and criterion's
target/criterion/). Standard library only.
"""

import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
OUT = os.path.join(TARGET, "bench")
MIB = 1024 * 1024
MB = 1000 * 1000  # the budgets are in MB: decimal, the stricter reading

# The budgets (issue 7). Sizes in MB (10^6 bytes).
BUDGET = {
    "signature_validation_ns": 5_000,
    "access_token_ns": 20_000,
    "twiml_ns": 5_000,
    "status_callback_ns": 100_000,
    "node_ratio": 10.0,
    "cold_start_ms": 25.0,
    "cold_start_rss_mb": 30.0,
    "zip_mb": 8.0,
    "recording_rss_mb": 64.0,
    "load_per_second": 10_000,
    "load_p99_ms": 10.0,
}


def functions():
    return sorted(d for d in os.listdir(os.path.join(ROOT, "functions"))
                  if os.path.isfile(os.path.join(ROOT, "functions", d, "Cargo.toml")))


def artifacts(out):
    release = os.path.join(TARGET, "release")
    sizes = {}
    with tempfile.TemporaryDirectory() as scratch:
        for name in functions():
            binary = os.path.join(release, name)
            stripped = os.path.join(scratch, "bootstrap")
            shutil.copyfile(binary, stripped)
            if shutil.which("strip"):
                subprocess.run(["strip", "--strip-all", stripped], check=True)
            archive = os.path.join(scratch, name + ".zip")
            with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
                z.write(stripped, "bootstrap")
            sizes[name] = {"binary_bytes": os.path.getsize(stripped), "zip_bytes": os.path.getsize(archive)}
            print(f"artifact {name:<20} {sizes[name]['binary_bytes'] / MB:6.2f} MB stripped, "
                  f"{sizes[name]['zip_bytes'] / MB:5.2f} MB zipped")
    with open(out, "w") as f:
        json.dump({"arch": platform.machine(), "functions": sizes}, f, indent=2)


def recording(log, out):
    text = open(log, errors="replace").read()
    m = re.search(r"copied (\d+) MiB in ([\d.]+) s; RSS before ([\d.]+) MiB, peak ([\d.]+) MiB, growth ([\d.]+) MiB", text)
    if not m:
        sys.exit(f"report.py: no figures in {log} (did tests/recording_memory.rs run?)")
    figures = dict(zip(["mib", "seconds", "rss_before_mib", "peak_rss_mib", "growth_mib"], map(float, m.groups())))
    with open(out, "w") as f:
        json.dump(figures, f, indent=2)
    print(f"recording copy: {figures['mib']:.0f} MiB in {figures['seconds']:.1f} s, "
          f"peak RSS {figures['peak_rss_mib']:.1f} MiB (growth {figures['growth_mib']:.1f} MiB)")


class Missing(Exception):
    pass


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise Missing(f"no figures in {os.path.relpath(path, ROOT)} ({e.__class__.__name__})") from e


def criterion_median(group, name):
    path = os.path.join(TARGET, "criterion", group, name, "new", "estimates.json")
    return load(path)["median"]["point_estimate"]


def fmt_ns(ns):
    return f"{ns / 1000:.2f} µs" if ns >= 1000 else f"{ns:.0f} ns"


def summary():
    rows = []  # (what, figure, budget, ok)
    misses = []

    def check(what, figure, budget, ok):
        rows.append((what, figure, budget, "pass" if ok else "MISSED"))
        if not ok:
            misses.append(what)

    lines = []
    try:  # library
        node = load(os.path.join(OUT, "node_micro.json"))
        lines += ["## Library operations (criterion medians; Node: twilio "
                 f"{node['twilio']} on Node {node['node']})", "",
                 "| Operation | Switchboard | Node helper library | Ratio |", "|---|---|---|---|"]
        library = [
            ("signature_validation", "signature validation (status callback)", "signature_validation_ns"),
            ("access_token", "access token minting", "access_token_ns"),
            ("twiml_agent_leg", "TwiML, agent leg", "twiml_ns"),
            ("twiml_customer_leg", "TwiML, customer leg", "twiml_ns"),
        ]
        for key, label, budget in library:
            rust = criterion_median("library", key)
            theirs = node[key]["median_ns"]
            ratio = theirs / rust
            lines.append(f"| {label} | {fmt_ns(rust)} | {fmt_ns(theirs)} | {ratio:.1f}× |")
            check(f"{label}: median", fmt_ns(rust), f"≤ {fmt_ns(BUDGET[budget])}", rust <= BUDGET[budget])
            check(f"{label}: vs Node", f"{ratio:.1f}×", f"≥ {BUDGET['node_ratio']:.0f}×", ratio >= BUDGET["node_ratio"])
        new_key = criterion_median("library", "signature_validation_new_key")
        lines.append("")
        lines.append(f"Signature validation with the HMAC key set up from the Auth Token each time (the gate "
                     f"keeps one per workspace): {fmt_ns(new_key)}, "
                     f"{node['signature_validation']['median_ns'] / new_key:.1f}× the helper library.")
        status = criterion_median("route_table", "status_callback")
        duplicate = criterion_median("route_table", "status_callback_duplicate")
        lines.append("")
        lines.append(f"Status callback through the route table on the embedded store: {fmt_ns(status)} (median; "
                     f"a new callback, its timeline event durable before the answer); "
                     f"the same callback again: {fmt_ns(duplicate)}.")
        check("status callback, route table, embedded store: median", fmt_ns(status),
              f"≤ {fmt_ns(BUDGET['status_callback_ns'])}", status <= BUDGET["status_callback_ns"])
    except Missing as e:
        misses.append(str(e))

    try:  # functions
        cold = load(os.path.join(OUT, "cold_start.json"))
        sizes = load(os.path.join(OUT, "artifacts.json"))
        lines += ["", f"## Functions (cold start: median of {cold['runs']} runs; sizes: {sizes['arch']})", "",
                  "| Function | Cold start | Peak RSS | Stripped | Zipped | First response |",
                  "|---|---|---|---|---|---|"]
        if cold.get("failed"):
            misses.append("cold start: a function failed to answer (see target/bench/cold_start/)")
        for name in functions():
            c = cold["functions"].get(name)
            s = sizes["functions"][name]
            zipped = s["zip_bytes"] / MB
            check(f"{name}: zipped artifact", f"{zipped:.2f} MB", f"≤ {BUDGET['zip_mb']:.0f} MB", zipped <= BUDGET["zip_mb"])
            if c is None:
                check(f"{name}: cold start", "no figure", "", False)
                continue
            rss = c["peak_rss_kb_max"] * 1024 / MB
            lines.append(f"| {name} | {c['median_ms']:.1f} ms | {rss:.1f} MB | {s['binary_bytes'] / MB:.1f} MB "
                         f"| {zipped:.2f} MB | {c['outcome']} |")
            check(f"{name}: cold start median", f"{c['median_ms']:.1f} ms", f"≤ {BUDGET['cold_start_ms']:.0f} ms",
                  c["median_ms"] <= BUDGET["cold_start_ms"])
            check(f"{name}: peak RSS", f"{rss:.1f} MB", f"≤ {BUDGET['cold_start_rss_mb']:.0f} MB",
                  rss <= BUDGET["cold_start_rss_mb"])
            if not (c["outcome"].startswith("HTTP 2") or c["outcome"] == "0 of the batch failed"):
                misses.append(f"{name}: first response was {c['outcome']}")
        n = cold.get("node")
        if n:
            token = cold["functions"].get("token")
            ratio = f" ({n['median_ms'] / token['median_ms']:.1f}× Switchboard's `token`)" if token else ""
            lines.append(f"| Node.js + twilio (token) | {n['median_ms']:.1f} ms | {n['peak_rss_kb_max'] * 1024 / MB:.1f} MB "
                         f"| | | {n['outcome']} |")
            lines.append("")
            lines.append(f"Node.js cold start with the helper library loaded: {n['median_ms']:.1f} ms{ratio}.")
        else:
            misses.append("node cold start: no figure")
    except Missing as e:
        misses.append(str(e))

    try:  # recording
        rec = load(os.path.join(OUT, "recording.json"))
        peak_mb = rec["peak_rss_mib"] * MIB / MB
        lines += ["", "## Recording copy (200 MiB, Twilio-like media server → S3 on moto, 8 MiB parts)", "",
                  f"{rec['seconds']:.1f} s, peak RSS {peak_mb:.1f} MB "
                  f"(the whole test process; growth during the copy {rec['growth_mib']:.1f} MiB)."]
        check("recording copy 200 MiB: peak RSS", f"{peak_mb:.1f} MB",
              f"≤ {BUDGET['recording_rss_mb']:.0f} MB", peak_mb <= BUDGET["recording_rss_mb"])
    except Missing as e:
        misses.append(str(e))

    try:  # load
        ld = load(os.path.join(OUT, "load.json"))
        lines += ["", f"## Local server under load (wrk, {ld['connections']} connections, {ld['seconds']} s, loopback)", "",
                  f"{ld['per_second']:.0f} signed status callbacks/s; latency p50 {ld['p50_ms']:.2f} ms, "
                  f"p99 {ld['p99_ms']:.2f} ms, max {ld['max_ms']:.1f} ms; {ld['errors']} errors."]
        check("local server: throughput", f"{ld['per_second']:.0f}/s", f"≥ {BUDGET['load_per_second']}/s",
              ld["per_second"] >= BUDGET["load_per_second"] and ld["errors"] == 0)
        check("local server: p99", f"{ld['p99_ms']:.2f} ms", f"≤ {BUDGET['load_p99_ms']:.0f} ms",
              ld["p99_ms"] <= BUDGET["load_p99_ms"])
    except Missing as e:
        misses.append(str(e))

    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    cpu = ""
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    header = [f"# scripts/bench.sh, {stamp}", "",
              f"Machine: {os.cpu_count()} cores ({cpu or platform.machine()}), {platform.system()} {platform.release()}.", ""]
    budget_lines = ["", "## Budgets", "", "| Check | Figure | Budget | |", "|---|---|---|---|"]
    budget_lines += [f"| {w} | {f} | {b} | {ok} |" for w, f, b, ok in rows]
    text = "\n".join(header + lines + budget_lines) + "\n"
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "summary.md"), "w") as f:
        f.write(text)
    print()
    print(text)
    if misses:
        print(f"scripts/bench.sh: {len(misses)} budget(s) missed or not measured:", file=sys.stderr)
        for m in misses:
            print(f"  - {m}", file=sys.stderr)
        return 1
    print("scripts/bench.sh: every budget met")
    return 0


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "summary"
    if command == "artifacts":
        artifacts(sys.argv[2])
    elif command == "recording":
        recording(sys.argv[2], sys.argv[3])
    elif command == "summary":
        sys.exit(summary())
    else:
        sys.exit(__doc__)
