#!/usr/bin/env bash
# Set up everything fhir-safetyplan needs, from scratch, idempotently:
#   .venv/ with the package and its test tools (PyPI),
#   tools/sdc-extract-npm/node_modules (npm: the independent SDC extraction engine for the conformance test),
#   tools/sdc-populate-npm/node_modules (npm: the independent SDC $populate engine for its conformance test),
#   tools/renderers/node_modules + refero/dist (npm: LHC-Forms, Helsenorge Refero bundled by Vite, playwright-core:
#     the renderer tests),
#   tools/form-preview/node_modules (npm: LHC-Forms for 'safetyplan preview', playwright-core for its test),
#   Debian's chromium when missing (apt: the headless browser of the preview and renderer tests),
#   Debian's postgresql when missing (apt: the real PostgreSQL the tests run a temporary cluster of),
#   hapi/target/safetyplan-hapi.jar (Maven Central: our local HAPI FHIR JPA server launcher),
#   tools/hl7-validator/ runner + offline package cache (Maven Central + npm: the official HL7 FHIR validator).
# Needs: Python >= 3.11, Node 20 + npm, Java 17 + Maven. SETUP_NPM=0 / SETUP_CHROMIUM=0 / SETUP_POSTGRES=0 /
# SETUP_HAPI=0 / SETUP_HL7_VALIDATOR=0 skip those steps.
set -euo pipefail
cd "$(dirname "$0")/.."

# A registry connection that stalls is given up after 60 s and retried (npm's default waits 5 minutes, twice);
# seen here: one `npm ci` sat on idle connections for over ten minutes.
export npm_config_fetch_timeout="${npm_config_fetch_timeout:-60000}"
export npm_config_fetch_retries="${npm_config_fetch_retries:-5}"

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
  echo "setup: npm ci tools/sdc-populate-npm"
  # its .npmrc says legacy-peer-deps: fhirclient's optional React Native peers would add ~300 MB, unused here
  (cd tools/sdc-populate-npm && npm ci --no-audit --no-fund --loglevel=error)
  echo "setup: npm ci + Vite build in tools/renderers (LHC-Forms, Refero)"
  npm ci --prefix tools/renderers --no-audit --no-fund --loglevel=error
  npm run --prefix tools/renderers --silent build
  echo "setup: npm ci tools/form-preview"
  # --legacy-peer-deps: lforms' Angular peer ranges otherwise make npm search for 15+ minutes.
  npm ci --prefix tools/form-preview --legacy-peer-deps --no-audit --no-fund --loglevel=error
fi

if [ "${SETUP_CHROMIUM:-1}" = 1 ] && ! command -v chromium >/dev/null 2>&1; then
  echo "setup: installing Debian's chromium (headless browser of the preview and renderer tests)"
  SUDO=""
  if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; fi
  $SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
fi

have_postgres() {
  command -v initdb >/dev/null 2>&1 || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
}
if [ "${SETUP_POSTGRES:-1}" = 1 ] && ! have_postgres; then
  echo "setup: installing Debian's postgresql (the tests start a temporary cluster with initdb / pg_ctl)"
  SUDO=""
  if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; fi
  $SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql
  # The tests run their own clusters; Debian's package starts a system one, which they do not need.
  $SUDO service postgresql stop >/dev/null 2>&1 || true
fi

if [ "${SETUP_HAPI:-1}" = 1 ]; then
  echo "setup: building the HAPI FHIR launcher (first time: Maven downloads a few hundred MB)"
  # through the command line, so JAVA_HOME and SAFETYPLAN_HAPI_* apply as they do for "safetyplan server"
  jar=$(.venv/bin/safetyplan server build)
  echo "setup: HAPI launcher $jar"
fi

if [ "${SETUP_HL7_VALIDATOR:-1}" = 1 ]; then
  echo "setup: the official HL7 FHIR validator (tools/hl7-validator)"
  .venv/bin/python tools/hl7-validator/prepare.py
fi
