// Drives the form page of 'safetyplan preview' / 'safetyplan serve' (/form) in Debian's chromium, headless,
// for tests/test_form_browser.py. Every request to anything but 127.0.0.1 is aborted and counted.
//
//   node drive-form.mjs SCENARIO.json
//
// SCENARIO: {"url", "chromium", "screenshots": dir|null, "firstCheck": bool, "deliver": bool, "steps": [...]}
// ("firstCheck": press "check" once before the steps; "check": false leaves out the check after them;
// "deliver": press "deliver" after a valid check); a step is
//   {"choose": [linkId, answer text]}  click that answer of the question (radio or checkbox)
//   {"type": [linkId, text]}           type into the question's text field
//   {"language": "nn"}                 press a language button
// Prints one JSON object: what the page showed, the console errors, the blocked requests.
import { readFileSync } from "node:fs";
import { chromium } from "playwright-core";

const scenario = JSON.parse(readFileSync(process.argv[2], "utf-8"));
const report = { consoleErrors: [], blocked: [], requests: 0, firstProblems: null, result: null, problems: null };
const browser = await chromium.launch({ executablePath: scenario.chromium, args: ["--no-sandbox"] });
try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  page.on("console", (m) => { if (m.type() === "error") report.consoleErrors.push(m.text()); });
  page.on("pageerror", (e) => report.consoleErrors.push(`pageerror: ${e.message}`));
  await page.route("**/*", (route) => {
    report.requests += 1;
    const url = new URL(route.request().url());
    if (url.hostname !== "127.0.0.1") {
      report.blocked.push(url.origin);
      return route.abort("blockedbyclient");
    }
    return route.continue();
  });
  await page.goto(scenario.url);
  await page.waitForSelector("#sp-form lhc-item-question", { timeout: 60000 });

  const row = (linkId) => page.locator("lhc-item-question", { has: page.locator(`[id^="label-${linkId}/"]`) });
  const problemsShown = () => page.$$eval(".sp-problem", (nodes) => nodes.map((n) => ({ linkId: n.dataset.linkId, text: n.textContent })));

  if (scenario.firstCheck) {
    await page.click("#sp-check");
    await page.waitForSelector("#sp-problems:not([hidden])", { timeout: 30000 });
    report.firstProblems = { shown: await problemsShown(), listed: await page.$$eval("#sp-problem-list li", (n) => n.length) };
  }
  for (const step of scenario.steps) {
    if (step.choose) {
      const text = new RegExp(`^\\s*${step.choose[1].replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\s*$`);
      const answer = row(step.choose[0]).locator("label.lhc-answer, label.ant-radio-wrapper, label.ant-checkbox-wrapper").filter({ hasText: text }).first();
      await answer.click();
      await answer.locator("input:checked").waitFor({ state: "attached", timeout: 10000 });
    } else if (step.type) {
      await page.locator(`input[id^="${step.type[0]}/"], textarea[id^="${step.type[0]}/"]`).first().fill(step.type[1]);
    } else if (step.language) {
      await page.click(`#sp-languages button[data-lang="${step.language}"]`);
      await page.waitForSelector(`html[lang="${step.language}"] #sp-form lhc-item-question`, { timeout: 60000 });
    }
  }
  await page.mouse.move(0, 0);
  await page.evaluate(() => document.activeElement && document.activeElement.blur());
  if (scenario.screenshots) await page.screenshot({ path: `${scenario.screenshots}/form-filled.png`, fullPage: true });
  if (scenario.check !== false) {
    await page.click("#sp-check");
    await page.waitForSelector("#sp-result:not([hidden]), #sp-problems:not([hidden]), #sp-message:not([hidden])", { timeout: 30000 });
  }
  report.message = await page.$eval("#sp-message", (n) => (n.hidden ? null : n.textContent));
  report.problems = await problemsShown();
  report.problemList = await page.$$eval("#sp-problem-list li", (nodes) => nodes.map((n) => n.textContent));
  if (await page.isVisible("#sp-result")) {
    report.result = {
      note: await page.textContent("#sp-note"),
      activities: await page.$$eval("#sp-activities li", (nodes) => nodes.map((n) => n.textContent)),
      flag: await page.textContent("#sp-flag"),
    };
    if (scenario.screenshots) await page.locator("#sp-result").screenshot({ path: `${scenario.screenshots}/form-result.png` });
    if (scenario.deliver) {
      await page.click("#sp-deliver");
      await page.waitForSelector("#sp-delivery:not([hidden])", { timeout: 120000 });
      report.delivery = await page.textContent("#sp-delivery-status");
    }
  }
  report.title = await page.title();
  report.questions = await page.$$eval("#sp-form .question", (nodes) => nodes.map((n) => n.textContent.trim()));
  report.deliverShown = await page.isVisible("#sp-deliver");
  report.tokenAsked = await page.isVisible("#sp-token");
  report.labels = await page.$$eval("#sp-form label[id^='label-']", (nodes) => nodes.map((n) => n.id));
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(report) + "\n");
