// The command line both npm oracle runners share (sdc-extract-npm/extract.js, sdc-populate-npm/populate.js):
// each gives runOne(input) -> result (a Promise), this reads the input from stdin and prints JSON to stdout.
//
//   node RUNNER < one input                 prints runOne's result
//   node RUNNER --jsonl < one input a line  prints one result a line (one Node process for a whole corpus)
//   node RUNNER --bench N < one input       runs it N times in this process, prints {"times_ms": [...]}
//
// The engines log with console.warn/console.log; both go to stderr, so stdout holds our JSON only.
'use strict';

console.warn = (...args) => process.stderr.write(args.join(' ') + '\n');
console.log = console.warn;

function readStdin() {
  return new Promise((resolve, reject) => {
    const chunks = [];
    process.stdin.on('data', (c) => chunks.push(c));
    process.stdin.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    process.stdin.on('error', reject);
  });
}

async function main(runOne) {
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

// Runs the command line for runOne; a failure is its stack on stderr and exit 1.
function serve(runOne) {
  main(runOne).catch((err) => {
    process.stderr.write(String((err && err.stack) || err) + '\n');
    process.exit(1);
  });
}

module.exports = { serve };
