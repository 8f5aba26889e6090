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

say "checking the SAM template (cfn-lint; sam validate --lint)"
# The console scripts of the Python that pip just installed into (not whatever
# is first on PATH). Both run offline: the SAM transform needs only a region,
# no credentials and no network; telemetry is off.
py_bin=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
[[ -x "$py_bin/cfn-lint" && -x "$py_bin/sam" ]] || die "cfn-lint or sam missing from $py_bin after pip install"
export SAM_CLI_TELEMETRY=0
lint_rc=0
"$py_bin/cfn-lint" infra/template.yaml || lint_rc=$?
# cfn-lint's exit code is a bit set: 2 errors, 4 warnings, 8 informational; 1 a crash.
(( (lint_rc & 7) == 0 )) || die "cfn-lint: infra/template.yaml has errors or warnings (exit $lint_rc)"
AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}" "$py_bin/sam" validate --lint -t infra/template.yaml \
  || die "sam validate --lint: infra/template.yaml is not a valid SAM template"
# The full `sam build` (cross-compiling every function to arm64) is too slow
# for every run: tests/template.rs checks that each binary the template builds
# is a package of the workspace; README "Deploy" says how to run the build.

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

say "starting Prism (Twilio's OpenAPI description of API v2010, contract mock)"
# Both pinned in package.json / package-lock.json: @stoplight/prism-cli serves
# the spec that @twilio-alpha/mcp ships, rejecting (422) requests that break it.
command -v npm > /dev/null || die "npm not found: install Node.js 20+ (Prism runs on it)"
# `npm ci` wipes and reinstalls node_modules (~30 s): only when the lock changed.
lock_hash=$(sha256sum package-lock.json | cut -d' ' -f1)
if [[ "$(cat node_modules/.switchboard-lock 2> /dev/null)" != "$lock_hash" ]]; then
  npm ci --no-audit --no-fund || die "npm ci failed (package.json, package-lock.json)"
  echo "$lock_hash" > node_modules/.switchboard-lock
fi
prism_spec=node_modules/@twilio-alpha/mcp/twilio-oai/spec/json/twilio_api_v2010.json
[[ -f "$prism_spec" ]] || die "$prism_spec missing after npm ci"
prism_port=$(free_port)
# The local binary, not `npx prism`: npx runs Prism as a grandchild that would
# outlive the kill in cleanup.
node_modules/.bin/prism mock "$prism_spec" -h 127.0.0.1 -p "$prism_port" > target/prism.log 2>&1 &
prism_pid=$!
pids+=("$prism_pid")
# Prism parses the 2 MB spec before it listens: ~2.5 s on two idle cores,
# longer on a busy machine. Up to 90 s here plus wait_for's 30; any HTTP status
# counts (Prism answers 404 on /). An early exit fails at once.
for _ in $(seq 1 450); do
  curl -s -o /dev/null "http://127.0.0.1:$prism_port/" && break
  kill -0 "$prism_pid" 2> /dev/null || { tail -20 target/prism.log >&2; die "Prism exited (see target/prism.log)"; }
  sleep 0.2
done
wait_for Prism "http://127.0.0.1:$prism_port/" target/prism.log
export SWITCHBOARD_TEST_PRISM_URL="http://127.0.0.1:$prism_port"

say "cargo test (workspace, all targets)"
# Two cores: keep the emulator-heavy tests from starving each other.
export RUST_TEST_THREADS="${RUST_TEST_THREADS:-4}"
# Every test binary runs even when one fails, so a run shows every failure.
cargo test --workspace --all-targets --locked --no-fail-fast
