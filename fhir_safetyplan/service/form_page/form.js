// The form page of fhir-safetyplan: our Questionnaire in LHC-Forms, "check" (what the answers become) and,
// when the service has an upstream server, an explicit "deliver". Talks to this origin only.
(function () {
  "use strict";
  const FHIR_JSON = "application/fhir+json";
  const $ = (id) => document.getElementById(id);
  const state = { config: null, lang: "nb", questionnaire: null, token: "", lastValid: null };

  function readToken() {
    // The preview hands over its one-time token in the fragment, which is never sent to a server.
    const fromHash = new URLSearchParams(window.location.hash.slice(1)).get("token");
    if (fromHash) {
      sessionStorage.setItem("safetyplan-token", fromHash);
      history.replaceState(null, "", window.location.pathname + window.location.search);
    }
    return fromHash || sessionStorage.getItem("safetyplan-token") || "";
  }

  function words() {
    return state.config.texts[state.lang] || state.config.texts.nb;
  }

  function show(id, visible) {
    $(id).hidden = !visible;
  }

  function message(text) {
    $("sp-message").textContent = text || "";
    show("sp-message", Boolean(text));
  }

  function applyTexts() {
    const w = words();
    document.documentElement.lang = state.lang;
    document.title = w.title;
    $("sp-title").textContent = w.title;
    $("sp-languages").setAttribute("aria-label", w.language);
    $("sp-synthetic").textContent = w.synthetic;
    $("sp-token-label").textContent = w.token;
    $("sp-check").textContent = w.check;
    $("sp-deliver").textContent = w.deliver;
    $("sp-problems-title").textContent = w.problems;
    $("sp-note-title").textContent = w.note;
    $("sp-activities-title").textContent = w.activities;
    $("sp-flag-title").textContent = w.flag;
    for (const button of $("sp-languages").querySelectorAll("button")) {
      button.setAttribute("aria-pressed", String(button.dataset.lang === state.lang));
    }
  }

  function clearOutcome() {
    show("sp-problems", false);
    show("sp-result", false);
    show("sp-delivery", false);
    $("sp-problem-list").replaceChildren();
    for (const node of document.querySelectorAll(".sp-problem")) node.remove();
    for (const node of document.querySelectorAll(".sp-has-problem")) node.classList.remove("sp-has-problem");
    state.lastValid = null;
    $("sp-deliver").disabled = true;
  }

  async function loadForm(lang) {
    state.lang = lang;
    applyTexts();
    clearOutcome();
    $("sp-check").disabled = true;
    const id = state.config.questionnaires[lang];
    const answer = await fetch(`/Questionnaire/${encodeURIComponent(id)}`, { headers: { Accept: FHIR_JSON } });
    if (!answer.ok) {
      message(`Questionnaire/${id}: HTTP ${answer.status}`);
      return;
    }
    state.questionnaire = await answer.json();
    const el = $("sp-form");
    el.replaceChildren();
    await LForms.Util.addFormToPage(state.questionnaire, el, { fhirVersion: "R4" });
    $("sp-check").disabled = false;
  }

  function questionnaireResponse() {
    const qr = LForms.Util.getFormFHIRData("QuestionnaireResponse", "R4", $("sp-form"));
    const q = state.questionnaire;
    qr.questionnaire = `${q.url}|${q.version}`;
    qr.status = "completed";
    qr.authored = new Date().toISOString();
    qr.subject = { identifier: state.config.patient };
    qr.author = { identifier: state.config.clinician };
    return qr;
  }

  function headers() {
    const h = { "Content-Type": FHIR_JSON, Accept: "application/json" };
    const token = state.token || $("sp-token").value.trim();
    if (token) h.Authorization = `Bearer ${token}`;
    return h;
  }

  function outcomeText(body, status) {
    const issues = (body && body.issue) || [];
    return issues.map((i) => i.diagnostics).filter(Boolean).join(" ") || `HTTP ${status}`;
  }

  // The row LHC-Forms renders for an item: the element around its label "label-<linkId>/1/…".
  function fieldOf(linkId) {
    const label = document.querySelector(`#sp-form [id^="${CSS.escape(`label-${linkId}/`)}"]`);
    if (!label) return null;
    return label.closest("lhc-item-question, lhc-item-group, .lhc-de") || label.parentElement;
  }

  function showProblems(problems) {
    const list = $("sp-problem-list");
    for (const problem of problems) {
      const li = document.createElement("li");
      li.textContent = problem.text;
      list.append(li);
      const field = problem.linkId ? fieldOf(problem.linkId) : null;
      if (field) {
        const note = document.createElement("div");
        note.className = "sp-problem";
        note.setAttribute("role", "alert");
        note.dataset.linkId = problem.linkId;
        note.textContent = problem.text;
        field.classList.add("sp-has-problem");
        field.after(note);
      }
    }
    show("sp-problems", true);
  }

  function showResult(result) {
    const w = words();
    $("sp-note").textContent = result.note;
    const list = $("sp-activities");
    list.replaceChildren();
    for (const text of result.activities) {
      const li = document.createElement("li");
      li.textContent = text;
      list.append(li);
    }
    if (!result.activities.length) {
      const li = document.createElement("li");
      li.textContent = w.no_activities;
      list.append(li);
    }
    $("sp-flag").textContent = result.flag || w.no_flag;
    show("sp-result", true);
    $("sp-result").scrollIntoView();
  }

  async function check() {
    clearOutcome();
    message("");
    const qr = questionnaireResponse();
    const answer = await fetch("/form/check", { method: "POST", headers: headers(), body: JSON.stringify(qr) });
    const body = await answer.json();
    if (body.ok === false && Array.isArray(body.problems)) {
      showProblems(body.problems);
      return;
    }
    if (!answer.ok) {
      show("sp-token-row", answer.status === 401 || !state.token);
      message(outcomeText(body, answer.status));
      return;
    }
    state.lastValid = qr;
    showResult(body);
    $("sp-deliver").disabled = false;
  }

  async function deliver() {
    if (!state.lastValid) return;
    const w = words();
    $("sp-deliver").disabled = true;
    const answer = await fetch("/QuestionnaireResponse", {
      method: "POST",
      headers: { ...headers(), Accept: FHIR_JSON },
      body: JSON.stringify(state.lastValid),
    });
    const body = await answer.json();
    let text;
    if (answer.status === 201 || answer.status === 200) text = `${w.delivered}: ${answer.headers.get("Location") || ""}`;
    else if (answer.status === 202) text = w.queued;
    else text = `${w.failed} (HTTP ${answer.status}): ${outcomeText(body, answer.status)}`;
    $("sp-delivery-status").textContent = text;
    show("sp-delivery", true);
  }

  async function start() {
    state.token = readToken();
    const answer = await fetch("/form/config", { headers: { Accept: "application/json" } });
    state.config = await answer.json();
    const wanted = new URLSearchParams(window.location.search).get("lang");
    state.lang = state.config.languages.includes(wanted) ? wanted : "nb";
    for (const lang of state.config.languages) {
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.lang = lang;
      button.lang = lang;
      button.textContent = lang;
      button.addEventListener("click", () => loadForm(lang).catch((e) => message(String(e))));
      $("sp-languages").append(button);
    }
    show("sp-token-row", !state.token);
    show("sp-deliver", state.config.deliver);
    $("sp-check").addEventListener("click", () => check().catch((e) => message(String(e))));
    $("sp-deliver").addEventListener("click", () => deliver().catch((e) => message(String(e))));
    if (!state.config.renderer || typeof LForms === "undefined") {
      applyTexts();
      message(words().no_renderer);
      return;
    }
    await loadForm(state.lang);
  }

  start().catch((e) => message(String(e)));
})();
