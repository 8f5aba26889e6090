#!/usr/bin/env bash
# The API contract, fuzzed: Schemathesis holds the local server to
# openapi.json (README, "API contract").
#
# Starts `switchboard --sandbox` (Twilio simulated on this machine, so
# onboarding, calls and texts do real work) on a free loopback port with a
# throw-away data directory, checks that the document it serves is the
# committed one and a valid OpenAPI 3.1 document, connects the sandbox's
# Twilio account (PUT /workspace/twilio), then runs Schemathesis over every
# operation, with its examples, coverage, fuzzing and stateful phases (the
# document's links: a call placed, then read, annotated, held, muted,
# transferred, supervised, paused, hung up), three times:
#
#   1. as an admin, every operation but DELETE /workspace/twilio;
#   2. as an agent (no role): the admin routes must answer 403, the rest as
#      documented;
#   3. as an admin, DELETE /workspace/twilio (last: it disconnects Twilio).
#
# Every check of Schemathesis runs: no 5xx but the 502/503 the document
# lists, every status and header documented, every body fits its schema,
# invalid requests refused, valid ones accepted, 405 with Allow for a wrong
# method, 401 without a token. Then the server must still be up, with no
# panic in its log. Bounded: SWITCHBOARD_FUZZ_SECONDS of fuzzing in all
# (default 170), split 55/35/10 between the runs; SWITCHBOARD_FUZZ_SEED
# picks the seed (default: fixed, so a run can be replayed).
#
#   scripts/fuzz-api.sh          # reports in target/fuzz-api/
set -euo pipefail
cd "$(dirname "$0")/.."

die() { printf 'scripts/fuzz-api.sh: %s\n' "$*" >&2; exit 1; }

budget=${SWITCHBOARD_FUZZ_SECONDS:-170}
seed=${SWITCHBOARD_FUZZ_SEED:-20261130}
[[ "$budget" =~ ^[0-9]+$ ]] && (( budget >= 10 )) || die "SWITCHBOARD_FUZZ_SECONDS must be a whole number, at least 10"
[[ "$seed" =~ ^[0-9]+$ ]] || die "SWITCHBOARD_FUZZ_SEED must be a whole number"

source scripts/python-tools.sh
py_bin=$(python_tools)
[[ -x "$py_bin/st" ]] || die "schemathesis (st) missing from $py_bin after pip install"

# The test command passes the binary its cargo test stage built.
server_bin=${SWITCHBOARD_FUZZ_BINARY:-}
if [[ -z "$server_bin" ]]; then
  cargo build --locked --quiet --bin switchboard || die "cargo build --bin switchboard failed"
  server_bin=target/debug/switchboard
fi
[[ -x "$server_bin" ]] || die "$server_bin is not an executable"

out=target/fuzz-api
rm -rf "$out"
mkdir -p "$out"
work=$(mktemp -d)
server_pid=
stop() {
  if [[ -n "$server_pid" ]]; then kill "$server_pid" 2> /dev/null || true; wait "$server_pid" 2> /dev/null || true; fi
  rm -rf "$work"
}
trap stop EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port"
# A secret of this run only; tokens are signed with it by the binary itself.
export SWITCHBOARD_AUTH_HS256_SECRET
SWITCHBOARD_AUTH_HS256_SECRET=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
export SWITCHBOARD_DATA_DIR="$work/data" RUST_LOG="${RUST_LOG:-warn}"
unset SWITCHBOARD_STORE SWITCHBOARD_PUBLIC_URL SWITCHBOARD_TWILIO_API_URL SWITCHBOARD_AUTH_JWKS_URL

"$server_bin" --sandbox --listen "127.0.0.1:$port" > "$out/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 150); do
  [[ "$(curl -s "$url/health" 2> /dev/null)" == '{"status":"up"}' ]] && break
  kill -0 "$server_pid" 2> /dev/null || { tail -20 "$out/server.log" >&2; die "the server exited (see $out/server.log)"; }
  sleep 0.2
done
[[ "$(curl -s "$url/health")" == '{"status":"up"}' ]] || die "GET /health never said up (see $out/server.log)"

admin=$("$server_bin" agent-token --workspace fuzz --agent fuzz-admin --role admin --ttl-seconds 3600)
agent=$("$server_bin" agent-token --workspace fuzz --agent fuzz-agent --ttl-seconds 3600)

# The served contract is the committed one, and valid OpenAPI 3.1.
curl -sf "$url/openapi.json" -o "$out/served-openapi.json" || die "GET /openapi.json failed"
"$py_bin/python" - "$out/served-openapi.json" openapi.json << 'EOF' || die "the served contract is not the committed openapi.json, or not valid"
import json, sys
from openapi_spec_validator import validate
served, committed = (json.load(open(path)) for path in sys.argv[1:3])
if served != committed:
    sys.exit("GET /openapi.json differs from openapi.json: regenerate it (README, API contract)")
validate(served)  # raises on an invalid OpenAPI 3.1 document
print(f"contract: {len(served['paths'])} paths, valid OpenAPI {served['openapi']}, served as committed")
EOF

# The sandbox's clock fast (a ring of 1.5 s takes 30 ms), its first account
# connected: a workspace with three numbers, recording calls.
curl -sf -X POST "$url/sandbox/timers" -H 'Content-Type: application/json' -d '{"scale": 0.02}' > /dev/null \
  || die "POST /sandbox/timers failed"
curl -sf "$url/sandbox/accounts" -o "$work/accounts.json" || die "GET /sandbox/accounts failed"
read -r account_sid auth_token numbers < <("$py_bin/python" -c '
import json, sys
account = json.load(open(sys.argv[1]))["accounts"][0]
print(account["accountSid"], account["authToken"], ",".join(account["numbers"]))' "$work/accounts.json")
connected=$(curl -s -o "$out/configure.json" -w '%{http_code}' -X PUT "$url/workspace/twilio" \
  -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' \
  -d "{\"accountSid\": \"$account_sid\", \"authToken\": \"$auth_token\", \"record\": true}")
[[ "$connected" == 200 ]] || die "PUT /workspace/twilio answered $connected: $(cat "$out/configure.json")"

quoted() { printf '"%s", ' "$@"; }
IFS=, read -r -a number_list <<< "$numbers"

# Calls of the agent in progress before the fuzzing starts (the simulated
# customers stay on the line), connected with the sandbox's simulated
# browser: the admin's supervising, muting, holding and transfers act on
# live calls of another agent, not only on calls that never rang.
"$py_bin/python" - "$url" "$agent" "${number_list[0]}" > "$work/calls.txt" << 'EOF' || die "could not place the agent's calls"
import sys, time
import requests
url, token, number = sys.argv[1:4]
auth = {"Authorization": f"Bearer {token}"}
voice = requests.post(f"{url}/token", headers=auth, timeout=10).json()["token"]
ids = []
# The last one is for hanging up: the others stay up for the rest.
for to in ["+15005550001", "+14155550199", "+15005552003", "+15005550001"]:
    placed = requests.post(f"{url}/calls", headers=auth, json={"to": to, "from": number}, timeout=10)
    placed.raise_for_status()
    ids.append(placed.json()["callId"])
    connect = {"token": voice, "params": {"callId": ids[-1]}}
    requests.post(f"{url}/sandbox/device/connect", headers=auth, json=connect, timeout=10).raise_for_status()
deadline = time.monotonic() + 20
for call in ids:
    while requests.get(f"{url}/calls/{call}", headers=auth, timeout=10).json()["state"] != "in-progress":
        if time.monotonic() > deadline:
            sys.exit(f"call {call} never came to be in progress")
        time.sleep(0.05)
print(" ".join(ids))
EOF
read -r -a live_calls < "$work/calls.txt"
doomed_call=${live_calls[3]}
live_calls=("${live_calls[@]:0:3}")
# Values a schema cannot say are valid: numbers of the workspace and of
# people who answer (the sandbox scripts them by number; libphonenumber
# accepts them), the sandbox account, our own agents. In valid requests
# these fields take these values; invalid requests are generated as usual.
cat > "$work/schemathesis.toml" << EOF
seed = $seed

[dictionaries.workspace-numbers]
values = [$(quoted "${number_list[@]}")]
[dictionaries.people]
values = ["+15005550001", "+15005550002", "+15005550003", "+15005550004", "+15005551005", "+14155550199"]
[dictionaries.account]
values = ["$account_sid"]
[dictionaries.auth-token]
values = ["$auth_token"]
[dictionaries.agents]
values = ["fuzz-admin", "fuzz-agent"]
[dictionaries.wait-url]
values = ["", "https://example.com/hold.mp3"]
[dictionaries.live-calls]
values = [$(quoted "${live_calls[@]}")]
[dictionaries.doomed-call]
values = ["$doomed_call"]
[dictionaries.labels]
values = ["customer", "agent-1", "transfer-1", "supervisor-1"]

# A 502 (Twilio failed) or 503 (the store, the secrets) is no server error
# where the operation documents it (status_code_conformance checks that);
# a 500 always is. The 5xx answered are listed after the runs.
[checks]
not_a_server_error.expected-statuses = ["2xx", "3xx", "4xx", "502", "503"]

[parameters]
"path.number" = { dictionary = "workspace-numbers" }
"query.number" = { dictionary = "workspace-numbers" }
"body.from" = { dictionary = "workspace-numbers" }
"body.callerId" = { dictionary = "workspace-numbers" }
"body.to" = { dictionary = "people" }
"body.to.number" = { dictionary = "people" }
"body.accountSid" = { dictionary = "account" }
"body.authToken" = { dictionary = "auth-token" }
"body.agents[*]" = { dictionary = "agents" }
"body.waitUrl" = { dictionary = "wait-url" }
"path.callId" = { dictionary = "live-calls", probability = 0.5 }
"path.label" = { dictionary = "labels", probability = 0.8 }

# Valid by their schema, refused by rules no schema states: numbers are
# checked against libphonenumber's numbering plans (the coverage phase tries
# boundary values such as "+10", which the dictionaries do not replace),
# Twilio judges credentials, a listing's cursor is opaque and its
# \`updatedAfter\` excludes the filters, a call cannot be transferred to its
# own agent nor supervised by it. These may answer such requests 400.
[[operations]]
include-operation-id = ["listCalls", "listMessages", "placeCall", "sendMessage", "assignNumber", "configureTwilio", "transferCall", "monitorCall"]
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "429", "5xx"]

# Hang up one call of the agent's, not the ones the others act on.
[[operations]]
include-operation-id = "hangUpCall"
parameters."path.callId" = { dictionary = "doomed-call", probability = 0.5 }
EOF

export SWITCHBOARD_FUZZ_URL="$url" PYTHONPATH="$PWD/scripts${PYTHONPATH:+:$PYTHONPATH}"
export SCHEMATHESIS_HOOKS=fuzz_api_hooks

# run NAME TOKEN SECONDS [FILTER…]: one Schemathesis run; its reports in $out/NAME/.
failed=()
run() {
  local name=$1 token=$2 seconds=$3
  shift 3
  local started=$SECONDS
  printf '\n== schemathesis: %s (%s s)\n' "$name" "$seconds"
  if ! "$py_bin/st" --config-file "$work/schemathesis.toml" run "$url/openapi.json" \
    -H "Authorization: Bearer $token" \
    --checks all --max-time "$seconds" --workers 1 --request-timeout 20 \
    --report junit,har --report-dir "$out/$name" "$@"; then
    failed+=("$name")
  fi
  printf -- '-- %s: %s s\n' "$name" $(( SECONDS - started ))
}

run admin "$admin" $(( budget * 55 / 100 )) --exclude-operation-id clearTwilio
run agent "$agent" $(( budget * 35 / 100 ))
run clear "$admin" $(( budget * 10 / 100 )) --include-operation-id clearTwilio --phases examples,coverage,fuzzing

# What the runs were answered, by operation and status; the 5xx named.
"$py_bin/python" - "$out" << 'EOF'
import collections, glob, json, re, sys
statuses = collections.defaultdict(collections.Counter)
for har in sorted(glob.glob(f"{sys.argv[1]}/*/har-*.json")):
    for entry in json.load(open(har))["log"]["entries"]:
        path = re.sub(r"^https?://[^/]+", "", entry["request"]["url"]).split("?")[0]
        path = re.sub(r"/calls/[^/]+", "/calls/{callId}", path)
        path = re.sub(r"/participants/[^/]+", "/participants/{label}", path)
        path = re.sub(r"/workspace/numbers/.+", "/workspace/numbers/{number}", path)
        statuses[f"{entry['request']['method']} {path}"][entry["response"]["status"]] += 1
total = sum(sum(c.values()) for c in statuses.values())
print(f"\nrequests answered: {total}")
for operation, counts in sorted(statuses.items()):
    if set(counts) == {405}:
        continue  # a method the path does not have: 405 with Allow, checked by Schemathesis
    print(f"  {operation:48} " + " ".join(f"{s}:{n}" for s, n in sorted(counts.items())))
errors = {op: {s: n for s, n in c.items() if s >= 500} for op, c in statuses.items()}
errors = {op: c for op, c in errors.items() if c}
print("5xx answered: " + (", ".join(f"{op} {c}" for op, c in sorted(errors.items())) or "none"))
EOF

kill -0 "$server_pid" 2> /dev/null || die "the server died during the fuzzing (see $out/server.log)"
if grep -n 'panicked' "$out/server.log" >&2; then die "the server panicked (above; $out/server.log)"; fi
(( ${#failed[@]} == 0 )) || die "Schemathesis found failures in: ${failed[*]} (above; reports in $out/)"
echo "fuzz-api: no failures (reports in $out/)"
