#!/usr/bin/env bash
# The fault campaign (README "Reliability"). Not part of scripts/test.sh or CI.
#
# Loopback only, bounded in time, stops by itself. Builds the release server
# and the campaign's driver (crates/testkit/src/bin/switchboard-faults), starts
# moto for the AWS part, then runs, each under load:
#   1. kill:   SIGKILL of the local server at random moments, 20 times;
#   2. disk:   the embedded store's disk full (a tmpfs in a private mount
#              namespace: needs root, says so loudly otherwise), then space back;
#   3. aws:    DynamoDB, S3, KMS and SQS failing behind a fault proxy in front of moto;
#   4. twilio: Twilio's REST API failing (the sandbox's fault switches) under call control;
#   5. soak:   a million signed status callbacks, memory and open files flat;
# and prints a table of faults injected, requests made, writes acknowledged and
# lost (target/faults/summary.md, summary.json; logs and samples beside them).
# Exits non-zero if anything acknowledged is lost, an answer is not one the
# README documents, a part could not run, or the time limit is reached.
#
# Knobs: SWITCHBOARD_FAULTS_ONLY (kill,disk,aws,twilio,soak), SWITCHBOARD_FAULTS_KILLS
# (20), SWITCHBOARD_FAULTS_SECONDS (6, each load phase), SWITCHBOARD_FAULTS_SOAK_CALLBACKS
# (1000000), SWITCHBOARD_FAULTS_SEED (random; printed), SWITCHBOARD_FAULTS_TIMEOUT
# (600 s for the campaign, builds aside), SWITCHBOARD_FAULTS_MOTO_URL (a moto
# already running; else one is started), SWITCHBOARD_STORE_CACHE_MB (the soak's
# server; else its default).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n== %s\n' "$*"; }
die() { printf 'scripts/faults.sh: %s\n' "$*" >&2; exit 1; }

out=target/faults
mkdir -p "$out"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2> /dev/null || true; done; }
trap cleanup EXIT
ulimit -Sn "$(ulimit -Hn)"

parts=${SWITCHBOARD_FAULTS_ONLY:-kill,disk,aws,twilio,soak}

say "cargo build --release (the local server and the campaign's driver)"
cargo build --release --locked --bin switchboard -p switchboard
cargo build --release --locked -p switchboard-testkit --bin switchboard-faults

if [[ ",$parts," == *",aws,"* && -z "${SWITCHBOARD_FAULTS_MOTO_URL:-}" ]]; then
  say "starting moto (DynamoDB, KMS, S3, SQS) for the AWS part"
  source scripts/python-tools.sh
  start_moto "$(python_tools)" "$out/moto.log"
  export SWITCHBOARD_FAULTS_MOTO_URL="$moto_url"
fi

say "the campaign ($parts)"
limit=${SWITCHBOARD_FAULTS_TIMEOUT:-600}
export SWITCHBOARD_FAULTS_OUT="$out"
rc=0
timeout --kill-after=10 "$limit" target/release/switchboard-faults || rc=$?
if ((rc == 124 || rc == 137)); then
  die "the campaign did not finish within ${limit} s (SWITCHBOARD_FAULTS_TIMEOUT): nothing it measured counts"
fi
((rc == 0)) || die "the campaign failed: see the table above and $out/"
echo "scripts/faults.sh: every part passed (table: $out/summary.md)"
