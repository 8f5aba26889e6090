#!/usr/bin/env bash
# The test command: installs and starts what the tests need, then runs every test.
# Nothing is skipped: a missing tool or emulator fails the run, loudly.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n== %s\n' "$*"; }
die() { printf 'scripts/test.sh: %s\n' "$*" >&2; exit 1; }
command -v curl > /dev/null || die "curl not found: install it (the emulators' readiness checks and the API fuzzing use it)"

mkdir -p target
pids=()
cleanup() { for pid in ${pids[@]+"${pids[@]}"}; do kill "$pid" 2>/dev/null || true; done; }

# Stages and their wall-clock time: each is printed as it ends, and the table
# of all of them at exit, on success or failure alike (the EXIT trap).
all_stages=("layer check" "cargo fmt --check" "python tools" "template lint" "moto start"
  "npm/prism start" "dialer" "cargo clippy" "cargo test" "api fuzz")
stage_seconds=()  # by index in all_stages
stage_result=()
stage=-1          # the index of the stage running, -1 when none
stage_started=0
# Microseconds since the epoch; EPOCHREALTIME is bash 5 (its decimal mark
# follows the locale), whole seconds from date otherwise.
now_us() {
  local t=${EPOCHREALTIME:-}
  if [[ -n "$t" ]]; then echo "${t/[.,]/}"; else echo "$(( $(date +%s) * 1000000 ))"; fi
}
# begin NAME: ends the stage running (it succeeded) and starts NAME, one of all_stages.
begin() {
  end_stage ok
  local i
  for i in "${!all_stages[@]}"; do [[ "${all_stages[$i]}" == "$1" ]] && stage=$i; done
  (( stage >= 0 )) || die "begin: $1 is not in all_stages"
  stage_started=$(now_us)
}
end_stage() {
  (( stage >= 0 )) || return 0
  local us=$(( $(now_us) - stage_started ))
  stage_seconds[stage]=$(printf '%d.%d' $(( us / 1000000 )) $(( us % 1000000 / 100000 )))
  stage_result[stage]=$1
  printf -- '-- %s: %s s (%s)\n' "${all_stages[$stage]}" "${stage_seconds[$stage]}" "$1"
  stage=-1
}
summary() {
  printf '\n%-20s %8s  %s\n' stage seconds result
  local i
  for i in "${!all_stages[@]}"; do
    printf '%-20s %8s  %s\n' "${all_stages[$i]}" "${stage_seconds[$i]:--}" "${stage_result[$i]:-not run}"
  done
}
on_exit() {
  local rc=$?
  if (( rc == 0 )); then end_stage ok; else end_stage "failed (exit $rc)"; fi
  cleanup
  summary
  exit "$rc"
}
trap on_exit EXIT
# So that Ctrl-C and kill also stop the emulators and print the table.
trap 'exit 130' INT
trap 'exit 143' TERM

begin "layer check"
say "checking that each crate's modules form layers, with no circle (scripts/layers.py)"
# Standard library only: the system python3. The self-test first, so a
# broken checker cannot pass the tree.
python3 scripts/layers.py --self-test || die "scripts/layers.py --self-test failed"
python3 scripts/layers.py || die "scripts/layers.py: a circle or an upward import (above)"

begin "cargo fmt --check"
say "cargo fmt --check (workspace)"
cargo fmt --all -- --check || die "cargo fmt: files are not formatted (run cargo fmt --all)"

begin "python tools"
say "installing test tools (a virtual environment, target/test-venv: scripts/requirements-test.txt)"
source scripts/python-tools.sh
py_bin=$(python_tools)

begin "template lint"
say "checking the SAM template (cfn-lint; sam validate --lint)"
# The console scripts of the venv (not whatever is first on PATH). Both run
# offline: the SAM transform needs only a region, no credentials and no
# network; telemetry is off.
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

begin "moto start"
say "starting moto (DynamoDB, S3, KMS) in server mode"
moto_port=$(free_port)
"$py_bin/python" scripts/moto-server.py -H 127.0.0.1 -p "$moto_port" > target/moto.log 2>&1 &
pids+=($!)
wait_for moto "http://127.0.0.1:$moto_port/moto-api/" target/moto.log
export SWITCHBOARD_TEST_MOTO_URL="http://127.0.0.1:$moto_port"

begin "npm/prism start"
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

begin "dialer"
say "the dialer (web/): npm ci, type check, unit tests, dist/ rebuilt and compared, Chromium"
# Pinned in web/package-lock.json: esbuild, TypeScript, the Voice SDK, playwright-core.
web_lock_hash=$(sha256sum web/package-lock.json | cut -d' ' -f1)
if [[ "$(cat web/node_modules/.switchboard-lock 2> /dev/null)" != "$web_lock_hash" ]]; then
  (cd web && npm ci --no-audit --no-fund) || die "npm ci failed in web/ (web/package.json, web/package-lock.json)"
  echo "$web_lock_hash" > web/node_modules/.switchboard-lock
fi
(cd web && npm run --silent check) || die "web/: TypeScript errors (above)"
(cd web && npm test) || die "web/: unit tests failed (above)"
# The committed bundle is what the sources build (and within its budget).
(cd web && node build.mjs --verify) || die "web/dist differs from what web/src builds, or is over budget (above)"
# The browser tests (tests/integration/dialer.rs, in cargo test below) drive
# Debian's Chromium with playwright-core against the server in sandbox mode;
# no browser is downloaded. CHROMIUM may name another Chromium binary.
if [[ -z "${CHROMIUM:-}" ]] && ! command -v chromium > /dev/null; then
  command -v apt-get > /dev/null || die "chromium not found, and no apt-get to install it: install Debian's chromium package, or set CHROMIUM"
  as_root=()
  if (( EUID != 0 )); then
    command -v sudo > /dev/null || die "chromium not found: install Debian's chromium package as root (apt-get install chromium), or set CHROMIUM"
    as_root=(sudo -n)
  fi
  { "${as_root[@]}" apt-get update -qq \
    && "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } > target/chromium-install.log 2>&1 \
    || { tail -20 target/chromium-install.log >&2; die "apt-get install chromium failed (target/chromium-install.log)"; }
fi
export CHROMIUM="${CHROMIUM:-$(command -v chromium)}"
[[ -x "$CHROMIUM" ]] || die "CHROMIUM=$CHROMIUM is not an executable browser"
# (Debian's launcher script may grumble on stderr; only a failure counts.)
"$CHROMIUM" --version 2> target/chromium-version.log \
  || { cat target/chromium-version.log >&2; die "$CHROMIUM does not run (above)"; }

begin "cargo clippy"
say "cargo clippy (workspace, all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings || die "cargo clippy: warnings or errors (above)"

begin "cargo test"
say "cargo test (workspace: libraries, tests, benchmarks as smoke tests)"
# Two cores: keep the emulator-heavy tests from starving each other.
export RUST_TEST_THREADS="${RUST_TEST_THREADS:-4}"
# Every test binary runs even when one fails, so a run shows every failure.
# Not --all-targets: the functions' thin mains have no tests, and a test
# harness of each would be 13 more binaries linking the AWS SDK (clippy
# above checks them).
cargo test --workspace --lib --tests --benches --locked --no-fail-fast

begin "api fuzz"
say "the API contract, fuzzed: Schemathesis against the local server in sandbox mode (scripts/fuzz-api.sh)"
# The server binary cargo test just built for the integration tests (no
# second build with other features); reports in target/fuzz-api/.
SWITCHBOARD_FUZZ_BINARY=target/debug/switchboard scripts/fuzz-api.sh \
  || die "scripts/fuzz-api.sh: the server does not keep its contract (above; target/fuzz-api/)"
