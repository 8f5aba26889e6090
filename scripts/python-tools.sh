# Sourced by the scripts: `python_tools` makes sure the Python tools of
# scripts/requirements-test.txt (moto, cfn-lint, sam) are installed in a
# virtual environment of their own, target/test-venv, and prints its bin
# directory; `start_moto` starts moto from it. Callers define `die`.

python_tools() {
  # A venv of its own, not the first python3's site-packages: pip refuses to
  # install into Debian's and Ubuntu's system Python (externally-managed-environment).
  local venv=target/test-venv requirements_hash
  # A venv that was made by a python3 since removed or upgraded cannot start or
  # import pip: it is made again.
  if ! "$venv/bin/python" -c 'import pip' > /dev/null 2>&1; then
    python3 -c 'import venv, ensurepip' > /dev/null 2>&1 \
      || die "python3 -m venv is unavailable (the venv or ensurepip module is missing): install it, on Debian and Ubuntu the python3-venv package (apt-get install python3-venv)"
    rm -rf "$venv"
    python3 -m venv "$venv" >&2 \
      || die "python3 -m venv $venv failed: on Debian and Ubuntu, install the python3-venv package (apt-get install python3-venv)"
    "$venv/bin/python" -c 'import pip' > /dev/null 2>&1 \
      || die "$venv has no pip: on Debian and Ubuntu, install the python3-venv package (apt-get install python3-venv)"
  fi
  # pip runs only when requirements-test.txt changed since the last install.
  requirements_hash=$(sha256sum scripts/requirements-test.txt | cut -d' ' -f1)
  if [[ "$(cat "$venv/.switchboard-requirements" 2> /dev/null)" != "$requirements_hash" ]]; then
    # Its output goes to stderr: stdout is the answer.
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r scripts/requirements-test.txt >&2 \
      || die "pip could not install scripts/requirements-test.txt into $venv"
    echo "$requirements_hash" > "$venv/.switchboard-requirements"
  fi
  # Absolute: callers may put it on PATH for tools that change directory.
  echo "$PWD/$venv/bin"
}

# start_moto PY_BIN LOG: moto in server mode (scripts/moto-server.py, from
# the venv python_tools printed) on a free loopback port, its output in LOG.
# Sets `moto_url` and adds moto's pid to the caller's `pids` (to kill on
# exit): call it as a command, not in $(...). Waits with Python, not curl.
start_moto() {
  local python="$1/python" log="$2" port
  port=$("$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "$python" scripts/moto-server.py -H 127.0.0.1 -p "$port" > "$log" 2>&1 &
  pids+=($!)
  moto_url="http://127.0.0.1:$port"
  # Any HTTP answer means it is serving.
  "$python" - "$moto_url/moto-api/" << 'EOF' || { tail -20 "$log" >&2 || true; die "moto did not start (see $log)"; }
import sys, time, urllib.error, urllib.request
for _ in range(150):
    try:
        urllib.request.urlopen(sys.argv[1], timeout=1)
        sys.exit(0)
    except urllib.error.HTTPError:
        sys.exit(0)
    except OSError:
        time.sleep(0.2)
sys.exit(1)
EOF
}
