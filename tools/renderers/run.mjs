// Renders jobs in real renderers in Debian's headless Chromium and prints what they showed as JSON on stdout.
//
//   node run.mjs [--chromium PATH] JOBS.json
//
// JOBS: a list of {renderer, questionnaire, response?, lang, steps?, screenshot?, screenshotHeight?}.
// Jobs run one after the other in one browser, each in a fresh browser context; the output is one JSON list with a
// result per job. steps: [{linkId, code}] picks an answer option by clicking it, as a user does.
// A Node HTTP server on 127.0.0.1 (a free port) serves the renderer's page, its built files and the job; every
// request to any other address is aborted and listed in "blockedRequests". Console errors and uncaught page errors
// are listed in "consoleErrors". Nothing here judges: tests/test_renderers.py asserts on the output.
import { readFileSync, existsSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { RENDERERS } from './renderers.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

function fail(message) {
  process.stderr.write(`run.mjs: ${message}\n`);
  process.exit(2);
}

/** Serve `roots` (url prefix -> folder) and the current job as job.json on 127.0.0.1, on a port the OS picks. */
function serve(roots, current) {
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url, 'http://127.0.0.1').pathname);
    if (path.endsWith('/job.json')) {
      res.writeHead(200, { 'content-type': TYPES['.json'] }).end(JSON.stringify(current.job));
      return;
    }
    for (const [prefix, folder] of Object.entries(roots)) {
      if (!path.startsWith(prefix)) continue;
      const rest = path.slice(prefix.length) || 'index.html';
      const file = normalize(join(folder, rest));
      if ((file === folder || file.startsWith(folder + sep)) && existsSync(file) && statSync(file).isFile()) {
        res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' });
        res.end(readFileSync(file));
        return;
      }
    }
    res.writeHead(404).end();
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

const args = process.argv.slice(2);
let chromiumPath = '/usr/bin/chromium';
if (args[0] === '--chromium') {
  chromiumPath = args[1];
  args.splice(0, 2);
}
const [jobPath] = args;
if (!jobPath) fail('usage: node run.mjs [--chromium PATH] JOBS.json   (default PATH: /usr/bin/chromium)');
const jobs = JSON.parse(readFileSync(jobPath, 'utf8'));
if (!Array.isArray(jobs)) fail('the jobs file must hold a JSON list of jobs');
const roots = {};
for (const job of jobs) {
  const renderer = RENDERERS[job.renderer];
  if (!renderer) fail(`unknown renderer ${JSON.stringify(job.renderer)}; use one of ${Object.keys(RENDERERS)}`);
  Object.assign(roots, renderer.roots(here));
}
for (const folder of Object.values(roots)) {
  if (!existsSync(folder)) fail(`${folder} is missing: run scripts/setup.sh (npm ci + build in tools/renderers)`);
}

if (!existsSync(chromiumPath)) fail(`no Chromium at ${chromiumPath}: apt-get install chromium, or pass --chromium PATH`);

const current = { job: null };
const server = await serve(roots, current);
const origin = `http://127.0.0.1:${server.address().port}`;
const browser = await chromium.launch({
  executablePath: chromiumPath,
  headless: true,
  args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
});

async function run(job) {
  const renderer = RENDERERS[job.renderer];
  const out = { renderer: job.renderer, lang: job.lang, consoleErrors: [], blockedRequests: [], requests: 0 };
  const context = await browser.newContext({
    viewport: { width: 1100, height: 900 },
    locale: job.lang === 'en' ? 'en-GB' : 'nb-NO',
    serviceWorkers: 'block',
  });
  try {
    await context.route('**/*', (route) => {
      const url = route.request().url();
      if (url.startsWith(origin + '/')) {
        out.requests += 1;
        return route.continue();
      }
      out.blockedRequests.push(url);
      return route.abort('blockedbyclient');
    });
    const page = await context.newPage();
    page.setDefaultTimeout(20000);
    page.on('console', (msg) => {
      if (msg.type() === 'error') out.consoleErrors.push(msg.text());
    });
    page.on('pageerror', (err) => out.consoleErrors.push(`uncaught: ${err.message}`));
    await page.goto(`${origin}${renderer.page}`);
    await page.waitForFunction(() => window.__rendered === true || window.__failed, null, { timeout: 60000 });
    const failed = await page.evaluate(() => window.__failed ?? null);
    if (failed) throw new Error(`the renderer could not show the form: ${failed}`);
    await renderer.settle(page);
    for (const step of job.steps ?? []) await renderer.choose(page, job, step);
    Object.assign(out, await renderer.read(page, job));
    if (job.screenshot) {
      // The whole form, or its top screenshotHeight pixels (a README picture need not be 7000 px tall).
      const box = await page.locator('#form').boundingBox();
      const height = Math.min(box.height, job.screenshotHeight ?? box.height);
      await page.screenshot({ path: job.screenshot, fullPage: true, clip: { ...box, height } });
    }
  } finally {
    await context.close();
  }
  return out;
}

const results = [];
let failure = null;
try {
  for (const [i, job] of jobs.entries()) {
    current.job = job;
    try {
      results.push(await run(job));
    } catch (err) {
      failure = `job ${i} (${job.renderer}, ${job.lang}): ${err.message.split('\n')[0]}`;
      break;
    }
  }
} finally {
  await browser.close();
  server.close();
}
if (failure) fail(failure);
process.stdout.write(JSON.stringify(results) + '\n');
