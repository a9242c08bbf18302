// What differs between the renderers: where their files are, how to pick an answer, what to read back.
//
// An answer is picked the way a user does it, by clicking the option in the rendered form; the option is named by
// its code in the job's Questionnaire (step {linkId, code}), so the harness needs no display texts of its own.
import { join } from 'node:path';

/** The answerOption of `linkId` in the Questionnaire whose valueCoding.code is `code`, and its position. */
export function findOption(questionnaire, linkId, code) {
  const walk = (items) => {
    for (const it of items ?? []) {
      if (it.linkId === linkId) return it;
      const found = walk(it.item);
      if (found) return found;
    }
    return null;
  };
  const item = walk(questionnaire.item);
  if (!item) throw new Error(`no item ${linkId} in the Questionnaire`);
  const index = (item.answerOption ?? []).findIndex((o) => o.valueCoding?.code === code);
  if (index < 0) throw new Error(`item ${linkId} has no answerOption with code ${code}`);
  return { index, coding: item.answerOption[index].valueCoding };
}

const formText = (page) => page.locator('#form').innerText();

/** Refero's id for an item: "item_" + the linkId URI-encoded with dots escaped too. */
const referoId = (linkId) => 'item_' + encodeURIComponent(linkId).replace(/\./g, '%2E');
const unReferoId = (id) => decodeURIComponent(id.slice('item_'.length));

export const RENDERERS = {
  lforms: {
    page: '/lforms/index.html',
    roots: (here) => ({
      '/lforms/lib/': join(here, 'node_modules', 'lforms', 'dist', 'lforms'),
      '/lforms/': join(here, 'lforms'),
    }),
    async settle(page) {
      await page.locator('#form lhc-item').first().waitFor();
    },
    async choose(page, job, step) {
      const { coding } = findOption(job.questionnaire, step.linkId, step.code);
      // LHC-Forms gives each option's <label> the id "<linkId>/1/1|<system>|<code>" (first occurrence).
      const id = `${step.linkId}/1/1|${coding.system}|${coding.code}`;
      await page.locator(`[id="${id}"]`).click();
    },
    async read(page) {
      return page.evaluate(() => {
        const kinds = {};
        for (const el of document.querySelectorAll('#form lhc-item[id^="item-"]')) {
          const linkId = el.id.slice('item-'.length).split('/')[0];
          const own = (sel) => [...el.querySelectorAll(sel)].filter((x) => x.closest('lhc-item') === el).length;
          kinds[linkId] = { checkboxes: own('input[type=checkbox]'), radios: own('input[type=radio]') };
        }
        return {
          text: document.getElementById('form').innerText,
          controls: kinds,
          validity: window.__checkValidity(),
          response: window.__response(),
        };
      });
    },
  },
  refero: {
    page: '/refero/index.html',
    roots: (here) => ({ '/refero/': join(here, 'refero', 'dist') }),
    async settle(page) {
      await page.locator('#form form').first().waitFor();
    },
    async choose(page, job, step) {
      const { index } = findOption(job.questionnaire, step.linkId, step.code);
      const wrapper = page.locator(`[data-testid^="test-choice-"][data-testid*="-${referoId(step.linkId)}"]`);
      // Radio options are "...-<linkId>-<n>", check-box options "...-<linkId>^<repetition>-<n>".
      const option = wrapper.and(page.locator(`[data-testid$="-${index}"]`)).first();
      // The design system hides the native input behind a styled box: click the option's label, as a user does.
      await option.locator('label').first().click();
    },
    async read(page) {
      const facts = await page.evaluate(() => {
        const ids = [...document.querySelectorAll('#form [data-testid]')].map((el) => el.dataset.testid);
        return { ids, text: document.getElementById('form').innerText, response: window.__response() };
      });
      const repeatButtons = facts.ids.filter((id) => id.endsWith('-repeat-button')).map((id) => id.slice(0, -14));
      // One check-box list per copy of the question: options are "test-choice-checkbox-item_<linkId>[^<copy>]-<n>".
      const lists = {};
      for (const id of facts.ids) {
        const m = /^test-choice-checkbox-(item_[^^]+?)(?:\^(\d+))?-(\d+)$/.exec(id);
        if (!m) continue;
        const linkId = unReferoId(m[1]);
        lists[linkId] ??= {};
        const copy = m[2] ?? '0';
        lists[linkId][copy] = (lists[linkId][copy] ?? 0) + 1;
      }
      const checkboxLists = Object.fromEntries(Object.entries(lists).map(([k, v]) => [k, Object.values(v)]));
      return { text: facts.text, repeatButtons, checkboxLists, response: facts.response };
    },
  },
};
