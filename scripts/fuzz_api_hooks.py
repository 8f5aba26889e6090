"""Schemathesis hooks of scripts/fuzz-api.sh (loaded with SCHEMATHESIS_HOOKS).

A call placed with `POST /calls` rings nobody until the agent's browser
connects. So that the stateful sequences (a call placed, then held, muted,
transferred, supervised, paused, hung up) drive a live call and not only its
409s, every call the fuzzer places is connected with the sandbox's simulated
browser device (`POST /sandbox/device/connect`, the agent's own sign-in
token), and the hook waits briefly for the simulated customer to answer;
likewise after a transfer to a number starts, for its target to answer, so
that the sequence can go on to complete it.
Calls that do not connect (a refused connect, a busy or failing number)
stay as they are: their 409s are part of the contract too.
"""

import os
import time

import requests
import schemathesis

# How long to wait for a connected call to be in progress (the sandbox's
# clock runs fast: fuzz-api.sh sets its timers).
CONNECT_WAIT_SECONDS = 2.0
_voice_tokens: dict[str, str] = {}


def _base_url() -> str:
    # Set by fuzz-api.sh: the local server under test.
    return os.environ["SWITCHBOARD_FUZZ_URL"].rstrip("/")


def _voice_token(base: str, authorization: str) -> str | None:
    if authorization not in _voice_tokens:
        answer = requests.post(f"{base}/token", headers={"Authorization": authorization}, timeout=10)
        if answer.status_code != 200:
            return None
        _voice_tokens[authorization] = answer.json()["token"]
    return _voice_tokens[authorization]


def _wait_for(base: str, authorization: str, call_id: str, done) -> None:
    deadline = time.monotonic() + CONNECT_WAIT_SECONDS
    while time.monotonic() < deadline:
        call = requests.get(f"{base}/calls/{call_id}", headers={"Authorization": authorization}, timeout=10)
        if call.status_code != 200 or done(call.json()):
            return
        time.sleep(0.05)


@schemathesis.hook
def after_call(context, case, response):
    authorization = response.request.headers.get("Authorization")
    if case.method.upper() != "POST" or not authorization:
        return
    base = _base_url()
    if case.path == "/calls/{callId}/transfer" and response.status_code == 202:
        # A number answers (the sandbox's people do); an agent's browser is
        # not simulated here, and would ring out.
        transfer = response.json().get("transfer") or {}
        if "number" in transfer.get("to", {}):
            ringing = lambda call: (call.get("transfer") or {}).get("state") == "ringing"  # noqa: E731
            _wait_for(base, authorization, response.json()["callId"], lambda call: not ringing(call))
        return
    if case.path != "/calls" or response.status_code != 201:
        return
    token = _voice_token(base, authorization)
    if token is None:
        return
    call_id = response.json()["callId"]
    connected = requests.post(
        f"{base}/sandbox/device/connect",
        headers={"Authorization": authorization},
        json={"token": token, "params": {"callId": call_id}},
        timeout=10,
    )
    if connected.status_code == 201:
        _wait_for(base, authorization, call_id, lambda call: call["state"] not in ("created", "dialing"))
