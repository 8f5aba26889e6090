# Sourced by scripts/test.sh and scripts/bench.sh: `python_tools` makes sure
# the Python tools of scripts/requirements-test.txt (moto, cfn-lint, sam) are
# installed in a virtual environment of their own, target/test-venv, and
# prints its bin directory. Callers define `die`.

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
