#!/usr/bin/env node
// Runs @aehrc/sdc-template-extract (the independent SDC $extract engine) for fhir-safetyplan's conformance
// test and benchmark. No network: the Questionnaire is passed in, never fetched. The command line is
// ../npm-oracle-cli.js:
//
//   node extract.js < {"questionnaire": Q, "response": QR}
//       prints {"ok": true, "bundle": Bundle, "issues": OperationOutcome|null}, or {"ok": false, "issues": ...}
//   node extract.js --jsonl < one {"questionnaire", "response"} per line
//       prints one such result per line (one Node process for a whole corpus)
//   node extract.js --bench N < {"questionnaire", "response"}
//       runs the extraction N times in this process and prints {"times_ms": [...]} (one per run)
'use strict';

const { inAppExtract } = require('@aehrc/sdc-template-extract');
const { serve } = require('../npm-oracle-cli.js'); // stdin/stdout, --jsonl, --bench; the engine's console.warn to stderr

async function runOne(input) {
  const { questionnaire, response } = input;
  const out = await inAppExtract(response, questionnaire, null);
  const result = out.extractResult || {};
  if (out.extractSuccess && result.extractedBundle) {
    return { ok: true, bundle: result.extractedBundle, issues: result.issues || null };
  }
  return { ok: false, issues: result.issues || out.extractResult || null };
}

serve(runOne);
