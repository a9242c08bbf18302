// The LHC-Forms host page: renders the job's Questionnaire, loads its response (if any), and exposes what the
// harness reads: LHC-Forms' own checkValidity() and the response it would produce.
(async () => {
  const job = await (await fetch('job.json')).json();
  const el = document.getElementById('form');
  const options = { fhirVersion: 'R4' };
  if (job.response) options.questionnaireResponse = job.response;
  await LForms.Util.addFormToPage(job.questionnaire, el, options);
  window.__checkValidity = () => LForms.Util.checkValidity(el);
  window.__response = () => LForms.Util.getFormFHIRData('QuestionnaireResponse', 'R4', el);
  window.__rendered = true;
})().catch((e) => {
  console.error('lforms page: ' + e);
  window.__failed = String(e);
});
