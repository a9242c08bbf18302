#!/usr/bin/env bash
# Set up from scratch and run every check: ruff, mypy, and the whole pytest suite — unit tests, the npm
# conformance test and the integration tests against a real local HAPI FHIR server (started by the tests).
# Extra arguments go to pytest, e.g.  bash scripts/test.sh -k examples
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy"
.venv/bin/mypy
echo "== pytest"
set +e
.venv/bin/python -m pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests (exit 5); nothing failed"
  exit 0
fi
exit "$rc"
