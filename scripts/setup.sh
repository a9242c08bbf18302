#!/usr/bin/env bash
# Set up everything fhir-safetyplan needs, from scratch, idempotently:
#   .venv/ with the package and its test tools (PyPI),
#   tools/sdc-extract-npm/node_modules (npm: the independent SDC extraction engine for the conformance test),
#   tools/renderers/node_modules + refero/dist (npm: LHC-Forms, Helsenorge Refero bundled by Vite, playwright-core;
#     with Debian's chromium, from apt when missing: the renderer tests),
#   hapi/target/safetyplan-hapi.jar (Maven Central: our local HAPI FHIR JPA server launcher),
#   tools/hl7-validator/ runner + offline package cache (Maven Central + npm: the official HL7 FHIR validator).
# Needs: Python >= 3.11, Node 20 + npm, Java 17 + Maven. SETUP_NPM=0 / SETUP_HAPI=0 / SETUP_HL7_VALIDATOR=0 skip
# the npm, HAPI and HL7 validator steps.
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[test,serve]"

if [ "${SETUP_NPM:-1}" = 1 ]; then
  echo "setup: npm ci tools/sdc-extract-npm"
  npm ci --prefix tools/sdc-extract-npm --no-audit --no-fund --loglevel=error
  if [ ! -x /usr/bin/chromium ]; then
    if command -v apt-get >/dev/null; then
      echo "setup: apt-get install chromium (Debian's, for the renderer tests; no browser download)"
      SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
      $SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
    else
      echo "setup: no /usr/bin/chromium and no apt-get: install Chromium for the renderer tests (node tools/renderers/run.mjs --chromium PATH)"
    fi
  fi
  echo "setup: npm ci + Vite build in tools/renderers (LHC-Forms, Refero)"
  npm ci --prefix tools/renderers --no-audit --no-fund --loglevel=error
  npm run --prefix tools/renderers --silent build
fi

if [ "${SETUP_HAPI:-1}" = 1 ]; then
  echo "setup: building the HAPI FHIR launcher (first time: Maven downloads a few hundred MB)"
  .venv/bin/python -c "from fhir_safetyplan import server; print('setup: HAPI launcher', server.build())"
fi

if [ "${SETUP_HL7_VALIDATOR:-1}" = 1 ]; then
  echo "setup: the official HL7 FHIR validator (tools/hl7-validator)"
  .venv/bin/python tools/hl7-validator/prepare.py
fi
