#!/usr/bin/env bash
# The test command: installs and starts what the tests need, then runs every test.
# Nothing is skipped: a missing tool or emulator fails the run, loudly.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n== %s\n' "$*"; }
die() { printf 'scripts/test.sh: %s\n' "$*" >&2; exit 1; }

say "installing test tools (pip: scripts/requirements-test.txt)"
python3 -m pip install --quiet --disable-pip-version-check -r scripts/requirements-test.txt \
  || die "pip could not install scripts/requirements-test.txt"

mkdir -p target
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# wait_for NAME URL LOG: polls URL until it answers, or fails with the log's tail.
wait_for() {
  for _ in $(seq 1 150); do
    if curl -s -o /dev/null "$2"; then return 0; fi
    sleep 0.2
  done
  tail -20 "$3" >&2 || true
  die "$1 did not start (see $3)"
}

say "starting moto (DynamoDB, S3, KMS) in server mode"
moto_port=$(free_port)
python3 -m moto.server -H 127.0.0.1 -p "$moto_port" > target/moto.log 2>&1 &
pids+=($!)
wait_for moto "http://127.0.0.1:$moto_port/moto-api/" target/moto.log
export SWITCHBOARD_TEST_MOTO_URL="http://127.0.0.1:$moto_port"

say "cargo test (workspace, all targets)"
# Two cores: keep the emulator-heavy tests from starving each other.
export RUST_TEST_THREADS="${RUST_TEST_THREADS:-4}"
cargo test --workspace --all-targets --locked
