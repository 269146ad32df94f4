#!/usr/bin/env bash
# Install everything the tests need (Debian packages, p2pdiag with its test extras, Node 22 and the
# js-libp2p reference peers from the committed lockfile, the go-libp2p peers built from interop/go),
# lint with ruff and run the whole test suite.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup-system.sh
bash scripts/setup-lab.sh
python3 -m pip install --quiet --disable-pip-version-check -e ".[test]"
bash scripts/setup-js.sh >/dev/null
bash scripts/setup-go.sh >/dev/null

# the rule set in pyproject.toml; a finding fails the run before any test starts
python3 -m ruff check p2pdiag tests bench scripts

set +e
# the 25 slowest tests are listed at the end: CI has a time budget (docs/performance.md)
python3 -m pytest -q -p no:cacheprovider --durations=25 "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "test-all.sh: pytest collected no tests; that is a failure here" >&2
  exit 1
fi
exit "$status"
