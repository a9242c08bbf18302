#!/usr/bin/env node
// Runs @aehrc/sdc-populate (the independent SDC $populate engine) for fhir-safetyplan's conformance test and
// benchmark. No network: the Questionnaire, the Patient and the previous response are passed in as resources;
// the resource and terminology callbacks refuse every request (the engine's default terminology server is
// online, so a fetch would otherwise leave the machine). The command line is ../npm-oracle-cli.js:
//
//   node populate.js < {"questionnaire": Q, "previous": QR, "patient": Patient, "contextName": "previousResponse"}
//       prints {"ok": true, "response": QR, "issues": OperationOutcome|null}, or {"ok": false, "outcome": ...}
//   node populate.js --jsonl < one such input per line   (one Node process for a whole corpus)
//   node populate.js --bench N < one input                 prints {"times_ms": [...]}
'use strict';

const { populate } = require('@aehrc/sdc-populate');
const { serve } = require('../npm-oracle-cli.js'); // stdin/stdout, --jsonl, --bench; the engine's console.warn to stderr

const refuse = async (query) => {
  throw new Error(`offline: no fetch allowed (${String(query).slice(0, 80)})`);
};
const config = { sourceServerUrl: 'http://127.0.0.1:9/offline', terminologyServerUrl: 'http://127.0.0.1:9/offline' };

async function runOne(input) {
  const { questionnaire, previous, patient, contextName } = input;
  const parameters = {
    resourceType: 'Parameters',
    parameter: [
      { name: 'questionnaire', resource: questionnaire },
      { name: 'subject', valueReference: { reference: `Patient/${patient.id}` } },
      { name: 'context', part: [{ name: 'name', valueString: 'patient' }, { name: 'content', resource: patient }] },
      { name: 'context', part: [{ name: 'name', valueString: contextName }, { name: 'content', resource: previous }] },
    ],
  };
  const out = await populate(parameters, refuse, config, refuse, config);
  if (out.resourceType !== 'Parameters') {
    return { ok: false, outcome: out };
  }
  const get = (name) => (out.parameter.find((p) => p.name === name) || {}).resource || null;
  return { ok: true, response: get('response'), issues: get('issues') };
}

serve(runOne);
