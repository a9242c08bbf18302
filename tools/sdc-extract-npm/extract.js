#!/usr/bin/env node
// Runs @aehrc/sdc-template-extract (the independent SDC $extract engine) for fhir-safetyplan's conformance
// test and benchmark. No network: the Questionnaire is passed in, never fetched.
//
//   node extract.js < {"questionnaire": Q, "response": QR}
//       prints {"ok": true, "bundle": Bundle, "issues": OperationOutcome|null}, or {"ok": false, "issues": ...}
//   node extract.js --jsonl < one {"questionnaire", "response"} per line
//       prints one such result per line (one Node process for a whole corpus)
//   node extract.js --bench N < {"questionnaire", "response"}
//       runs the extraction N times in this process and prints {"times_ms": [...]} (one per run)
'use strict';

const { inAppExtract } = require('@aehrc/sdc-template-extract');

// The engine logs FHIRPath failures with console.warn; keep stdout for our JSON only.
console.warn = (...args) => process.stderr.write(args.join(' ') + '\n');
console.log = console.warn;

async function runOne(input) {
  const { questionnaire, response } = input;
  const out = await inAppExtract(response, questionnaire, null);
  const result = out.extractResult || {};
  if (out.extractSuccess && result.extractedBundle) {
    return { ok: true, bundle: result.extractedBundle, issues: result.issues || null };
  }
  return { ok: false, issues: result.issues || out.extractResult || null };
}

function readStdin() {
  return new Promise((resolve, reject) => {
    const chunks = [];
    process.stdin.on('data', (c) => chunks.push(c));
    process.stdin.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    process.stdin.on('error', reject);
  });
}

async function main() {
  const args = process.argv.slice(2);
  const text = await readStdin();
  const write = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
  if (args[0] === '--jsonl') {
    for (const line of text.split('\n')) {
      if (line.trim()) write(await runOne(JSON.parse(line)));
    }
  } else if (args[0] === '--bench') {
    const n = parseInt(args[1] || '200', 10);
    const input = JSON.parse(text);
    const times = [];
    for (let i = 0; i < n; i++) {
      const t0 = process.hrtime.bigint();
      await runOne(input);
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    write({ times_ms: times });
  } else {
    write(await runOne(JSON.parse(text)));
  }
}

main().catch((err) => {
  process.stderr.write(String((err && err.stack) || err) + '\n');
  process.exit(1);
});
