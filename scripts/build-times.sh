#!/usr/bin/env bash
# Build times (README, "Performance"): prints how long the builds a developer
# waits for take on this machine. Not part of the test command (it builds
# everything from scratch, twice).
#
#   1. `cargo build --release --workspace` from an empty target directory;
#   2. the same after a one-line change in the core crate;
#   3. `sam build` (every function, arm64, via cargo-lambda) from an empty
#      target directory;
#   4. `sam build` after a one-line change in the core crate;
#   and the size of each function's arm64 bootstrap, zipped as SAM uploads it.
#
# The one-line change: a new value of one constant of shared/src/api.rs,
# put back at the end. The builds use their own target directories
# (target/build-times/…), so the usual target/ stays as it is.
# Needs: the arm64 target (rustup target add aarch64-unknown-linux-gnu), and
# cargo-lambda and aws-sam-cli (pip, in the tools' venv: installed here).
# Knobs: SWITCHBOARD_BUILD_TIMES_SKIP_CARGO=1, SWITCHBOARD_BUILD_TIMES_SKIP_SAM=1.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n== %s\n' "$*"; }
die() { printf 'scripts/build-times.sh: %s\n' "$*" >&2; exit 1; }

out=target/build-times
mkdir -p "$out"
results=()
probe_file=shared/src/api.rs
probe_line='pub const BUILD_PROBE: &str = "'
cp "$probe_file" "$out/api.rs.orig"
restore() { cp "$out/api.rs.orig" "$probe_file"; }
trap restore EXIT

# One line changed: a constant of the core crate gets a new value.
change_one_line() {
  restore
  printf '\n/// Changed by scripts/build-times.sh (put back when it ends).\n%s%s";\n' "$probe_line" "$(date +%s%N)" >> "$probe_file"
}

# timed LABEL COMMAND...: runs COMMAND, records LABEL and its wall time.
timed() {
  local label=$1
  shift
  local start end
  start=$(date +%s.%N)
  "$@" > "$out/$(echo "$label" | tr ' /' '__').log" 2>&1 || { tail -30 "$out/$(echo "$label" | tr ' /' '__').log" >&2; die "$label failed"; }
  end=$(date +%s.%N)
  local seconds
  seconds=$(python3 -c "print(f'{$end - $start:.0f}')")
  results+=("$label|$seconds")
  printf '%s: %s s (%s)\n' "$label" "$seconds" "$(python3 -c "s=$seconds; print(f'{int(s)//60} min {int(s)%60} s')")"
}

if [[ -z "${SWITCHBOARD_BUILD_TIMES_SKIP_CARGO:-}" ]]; then
  say "cargo build --release --workspace, from an empty target directory"
  export CARGO_TARGET_DIR=$out/cargo
  rm -rf "$CARGO_TARGET_DIR"
  timed "cargo build, cold" cargo build --release --locked --workspace
  change_one_line
  timed "cargo build, one-line change" cargo build --release --locked --workspace
  restore
  unset CARGO_TARGET_DIR
fi

if [[ -z "${SWITCHBOARD_BUILD_TIMES_SKIP_SAM:-}" ]]; then
  say "sam build (cargo-lambda, arm64), from an empty target directory"
  rustup target list --installed | grep -q aarch64-unknown-linux-gnu \
    || die "the arm64 target is missing: rustup target add aarch64-unknown-linux-gnu"
  source scripts/python-tools.sh
  py_bin=$(python_tools)
  [[ -x "$py_bin/cargo-lambda" ]] || "$py_bin/python" -m pip install --quiet cargo-lambda >&2 \
    || die "pip could not install cargo-lambda"
  export PATH="$py_bin:$PATH" SAM_CLI_TELEMETRY=0
  export CARGO_TARGET_DIR=$PWD/$out/sam
  rm -rf "$CARGO_TARGET_DIR" .aws-sam
  timed "sam build, cold" sam build --beta-features
  change_one_line
  timed "sam build, one-line change" sam build --beta-features
  restore
  say "sizes of the arm64 bootstraps (stripped; zipped as SAM uploads them)"
  for bootstrap in .aws-sam/build/*/bootstrap; do
    function=$(basename "$(dirname "$bootstrap")")
    zipped=$(python3 -c "
import io, sys, zipfile
buffer = io.BytesIO()
with zipfile.ZipFile(buffer, 'w', zipfile.ZIP_DEFLATED) as z:
    z.write(sys.argv[1], 'bootstrap')
print(len(buffer.getvalue()))" "$bootstrap")
    printf '%s|%s|%s\n' "$function" "$(stat -c %s "$bootstrap")" "$zipped" | tee -a "$out/sizes.txt"
  done
fi

say "build times on $(nproc) cores"
printf '| %-32s | %8s |\n' "build" "seconds"
for row in "${results[@]}"; do
  printf '| %-32s | %8s |\n' "${row%%|*}" "${row##*|}"
done | tee "$out/summary.md"
