#!/usr/bin/env bash
# The benchmark command (README, "Performance"). Not part of scripts/test.sh.
#
# Installs what it needs (wrk from Debian, moto from PyPI, Twilio's Node.js
# helper library from npm, pinned in bench/node/package-lock.json), builds the
# release binaries, then measures:
#   1. micro-benchmarks (criterion): signature validation, token minting,
#      TwiML for both legs, a status callback through the route table on the
#      embedded store; the same three library operations with npm `twilio`;
#   2. cold start and peak RSS of every function under a loopback Lambda
#      Runtime API emulator, on moto (DynamoDB, KMS, S3, SQS), with moto's
#      own GetItem latency; and of a Node.js function with `twilio` loaded;
#   3. each function's stripped and zipped artifact;
#   4. a 200 MiB recording copy into S3 on moto (tests/recording_memory.rs);
#   5. the local server under load (wrk, loopback, time-bounded), with no
#      live events socket connected, then with idle ones;
#   6. live events on the local server: callback-to-frame latency with
#      sockets connected, and the server's memory holding idle sockets.
# and checks every budget (issue 7, live events): it exits non-zero when one
# is missed. Figures: target/bench/ (summary.md is the table the README quotes).
#
# Knobs: SWITCHBOARD_BENCH_COLD_RUNS (21), SWITCHBOARD_BENCH_LOAD_SECONDS (10),
# SWITCHBOARD_BENCH_LOAD_CONNECTIONS (32), SWITCHBOARD_BENCH_LOAD_THREADS (2),
# SWITCHBOARD_BENCH_LOAD_LOG (info), SWITCHBOARD_BENCH_LOAD_PAIRS (3, runs
# with no socket and with idle sockets, alternating),
# SWITCHBOARD_BENCH_LOAD_SOCKETS (1000, the
# idle sockets of every second load run; 0: none), SWITCHBOARD_BENCH_NODE_SECONDS
# (3), SWITCHBOARD_BENCH_CRITERION_SECONDS (3, measurement time per benchmark),
# SWITCHBOARD_BENCH_LIVE_SECONDS (30), SWITCHBOARD_BENCH_LIVE_RATE (200
# callbacks a second), SWITCHBOARD_BENCH_LIVE_SOCKETS (1000),
# SWITCHBOARD_BENCH_IDLE_SOCKETS (10000).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n== %s\n' "$*"; }
die() { printf 'scripts/bench.sh: %s\n' "$*" >&2; exit 1; }

out=target/bench
mkdir -p "$out"
rm -f "$out"/*.json  # no stale figure from an earlier run
failed=()
pids=()
# Live events hold thousands of sockets, each an open file at both ends
# (the clients in the benchmark's process, the local server in its own).
ulimit -Sn "$(ulimit -Hn)"
open_files=$(ulimit -Sn)
[[ "$open_files" == unlimited ]] || (( open_files >= 12000 )) \
  || die "open files limited to $open_files (ulimit -Hn): the live events benchmark holds over 11,000 sockets"
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2> /dev/null || true; done; }
trap cleanup EXIT

say "installing the benchmark tools (wrk; moto; npm twilio)"
if ! command -v wrk > /dev/null; then
  command -v apt-get > /dev/null || die "wrk not found and no apt-get to install it"
  apt-get update -qq && apt-get install -y -qq wrk > /dev/null || die "apt-get could not install wrk"
fi
source scripts/python-tools.sh
py_bin=$(python_tools)
command -v node > /dev/null || die "node not found: install Node.js 20+ (the side-by-side runs on it)"
lock_hash=$(sha256sum bench/node/package-lock.json | cut -d' ' -f1)
if [[ "$(cat bench/node/node_modules/.switchboard-lock 2> /dev/null)" != "$lock_hash" ]]; then
  (cd bench/node && npm ci --no-audit --no-fund) || die "npm ci failed in bench/node"
  echo "$lock_hash" > bench/node/node_modules/.switchboard-lock
fi

say "cargo build --release (every function and the local server)"
cargo build --release --locked --workspace --bins

say "micro-benchmarks (criterion)"
seconds="${SWITCHBOARD_BENCH_CRITERION_SECONDS:-3}"
cargo bench --locked --bench micro -- --warm-up-time 1 --measurement-time "$seconds" \
  || failed+=("micro-benchmarks")

say "the same library operations with Twilio's Node.js helper library"
node bench/node/micro.js > "$out/node_micro.json" || failed+=("node micro-benchmarks")
cat "$out/node_micro.json"

# moto serves the cold starts (every function runs on DynamoDB) and the
# recording copy.
say "starting moto (DynamoDB, KMS, S3, SQS)"
start_moto "$py_bin" "$out/moto.log"
export SWITCHBOARD_TEST_MOTO_URL="$moto_url"

say "cold start and peak RSS per function (loopback Lambda Runtime API emulator, moto)"
cargo bench --locked --bench cold_start || failed+=("cold start")

say "artifact size per function (stripped, zipped)"
python3 bench/report.py artifacts "$out/artifacts.json" || failed+=("artifact sizes")

# The bench profile (release settings) shares its build with the benches above.
say "recording copy: 200 MiB into S3 on moto (tests/recording_memory.rs, optimized)"
cargo test --profile bench --locked --test recording_memory -- --nocapture 2>&1 | tee "$out/recording.log" \
  && python3 bench/report.py recording "$out/recording.log" "$out/recording.json" \
  || failed+=("recording copy")

say "local server under load (wrk on loopback; no socket, then idle sockets)"
cargo bench --locked --bench load || failed+=("local server under load")

say "live events (local server: callback-to-frame latency, memory of idle sockets)"
cargo bench --locked --bench live || failed+=("live events")

say "figures and budgets"
rc=0
python3 bench/report.py summary || rc=$?
if ((${#failed[@]})); then
  printf 'scripts/bench.sh: these steps failed: %s\n' "${failed[*]}" >&2
  exit 1
fi
exit "$rc"
