// The Refero host page: renders the job's Questionnaire (and response, if any) the way a Helsenorge host does.
import '@helsenorge/designsystem-react/scss/helsenorge.scss';
// Refero's stylesheet is not in its package exports: import it by path.
import '../node_modules/@helsenorge/refero/index.css';
import { createElement as h } from 'react';
import { createRoot } from 'react-dom/client';
import { Provider } from 'react-redux';
import { Refero, store } from '@helsenorge/refero';

const job = await (await fetch('./job.json')).json();
const nothing = () => {};
const referoStore = store();
// What the harness reads back: the QuestionnaireResponse Refero keeps in its store as the user answers.
window.__response = () => referoStore.getState().refero.form.FormData.Content ?? null;
createRoot(document.getElementById('form')).render(
  h(
    Provider,
    { store: referoStore },
    h(Refero, {
      questionnaire: job.questionnaire,
      questionnaireResponse: job.response ?? undefined,
      resources: __REFERO_RESOURCES__,
      language: job.lang === 'en' ? 'en-GB' : 'nb-NO',
      authorized: true,
      loginButton: h('span'),
      onSubmit: nothing,
      onSave: nothing,
      onCancel: nothing,
      syncQuestionnaireResponse: Boolean(job.response),
    }),
  ),
);
window.__rendered = true;
