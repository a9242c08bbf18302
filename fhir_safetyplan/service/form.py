"""``/form``: our Questionnaire in LHC-Forms, a "check" that shows what the answers become, and (for
``safetyplan preview --server`` only: ``ServiceSettings.form_delivers``) an explicit "deliver" through the normal
delivery path. The page sets a synthetic patient, so on ``safetyplan serve`` it checks and never delivers.

The page, its script and LHC-Forms' files are served from this process (never a CDN); the page's Content
Security Policy lets it talk to this origin only. Reading the page needs no token; the check posts a plan,
so it needs the service's token like every other POST (``safetyplan preview`` makes a one-time token and
hands it to the page in the URL's fragment, which never reaches a server or a log).
"""

from __future__ import annotations

import logging
from pathlib import Path as FilePath

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, Response

from fhir_safetyplan import codes
from fhir_safetyplan.errors import JSON
from fhir_safetyplan.service.callers import require_caller
from fhir_safetyplan.service.fhirio import PLAIN_JSON, HttpError, fhir_response, read_json
from fhir_safetyplan.service.settings import ServiceSettings

log = logging.getLogger("fhir_safetyplan.service.form")

router = APIRouter(tags=["form"])

PAGE_DIR = FilePath(__file__).resolve().parent / "form_page"
#: our own files of the page (name → media type)
PAGE_FILES = {"form.js": "text/javascript", "form.css": "text/css"}
#: LHC-Forms files the page loads, relative to its dist/lforms/ folder (the wheel carries the same set)
LFORMS_FILES = {
    "webcomponent/styles.css": "text/css",
    "webcomponent/assets/lib/zone.min.js": "text/javascript",
    "webcomponent/runtime.js": "text/javascript",
    "webcomponent/polyfills.js": "text/javascript",
    "webcomponent/main.js": "text/javascript",
    "webcomponent/down_arrow_gray_10_10.png": "image/png",
    "webcomponent/magnifying_glass.png": "image/png",
    "fhir/R4/lformsFHIR.min.js": "text/javascript",
}
#: LHC-Forms needs inline styles and eval-free scripts from this origin; nothing may go anywhere else.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
#: the synthetic people of every preview (a Tenor test number: month + 80; an HPR test number). The patient is
#: the preview's own, no example's: a plan delivered from the preview (dated now) would otherwise be the newest
#: plan of that example's patient on a shared server, and hold the example's own plan (an older conversation)
SYNTHETIC_PATIENT = {"system": codes.FNR, "value": "12867949818"}
SYNTHETIC_CLINICIAN = {"system": codes.HPR, "value": "99990001"}

_NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


@router.get("/form", include_in_schema=False)
async def form_page() -> Response:
    """The page (static: every text and setting comes from /form/config)."""
    html = (PAGE_DIR / "form.html").read_bytes()
    return Response(
        html, media_type="text/html; charset=utf-8", headers={**_NO_STORE, "Content-Security-Policy": CSP}
    )


@router.get("/form/static/{name}", include_in_schema=False)
async def form_file(name: str) -> Response:
    """The page's script and style sheet."""
    if name not in PAGE_FILES:
        raise HttpError(404, "There is no such file of the form page.", code="not-found")
    return FileResponse(PAGE_DIR / name, media_type=PAGE_FILES[name], headers=_NO_STORE)


@router.get("/form/lforms/{path:path}", include_in_schema=False)
async def lforms_file(path: str) -> Response:
    """One of LHC-Forms' built files, from the wheel or the clone's tools/form-preview."""
    from fhir_safetyplan.bundled import lforms_root

    root = lforms_root()
    if path not in LFORMS_FILES or root is None:
        raise HttpError(
            404, "LHC-Forms is not installed here, or there is no such file of it.", code="not-found"
        )
    return FileResponse(root / path, media_type=LFORMS_FILES[path])


@router.get("/form/config", include_in_schema=False)
async def form_config(request: Request) -> Response:
    """What the page needs to know: languages, their Questionnaire ids, its words, whether it may deliver."""
    from fhir_safetyplan.bundled import lforms_root
    from fhir_safetyplan.form_preview import page_texts

    settings = request.app.state.settings
    config: JSON = {
        "languages": list(codes.LANGUAGES),
        "questionnaires": {lang: codes.questionnaire_id(lang) for lang in codes.LANGUAGES},
        "texts": page_texts(),
        "renderer": lforms_root() is not None,
        "deliver": _delivers(settings),
        "patient": SYNTHETIC_PATIENT,
        "clinician": SYNTHETIC_CLINICIAN,
    }
    return fhir_response(config, media_type=PLAIN_JSON, headers=_NO_STORE)


@router.post("/form/check", include_in_schema=False, dependencies=[Depends(require_caller)])
async def form_check(request: Request) -> Response:
    """The journal note, CarePlan activities and Flag the answers become (200), or the problems by question
    with the OperationOutcome (422: the form's rules; 400: no plan at all)."""
    from starlette.concurrency import run_in_threadpool

    from fhir_safetyplan.form_preview import result
    from fhir_safetyplan.service.routes import _context

    settings = request.app.state.settings
    data = await read_json(request, settings.max_body_bytes)
    status, answer = await run_in_threadpool(result, data, _context(settings))
    log.info("form check: %s", "valid" if answer["ok"] else f"{len(answer['problems'])} problem(s)")
    return fhir_response(answer, status, media_type=PLAIN_JSON, headers=_NO_STORE)


def _delivers(settings: ServiceSettings) -> bool:
    return settings.form_delivers and settings.upstream is not None


@router.post("/form/deliver", include_in_schema=False, dependencies=[Depends(require_caller)])
async def form_deliver(request: Request) -> Response:
    """The page's explicit "deliver": the normal delivery path (``POST /QuestionnaireResponse``), for
    ``safetyplan preview --server`` only; anywhere else 403 and nothing is sent."""
    from fhir_safetyplan.service.routes import create_response

    if not _delivers(request.app.state.settings):
        raise HttpError(
            403,
            "This service's form page checks plans but does not deliver them: its patient is synthetic. Deliver "
            "from the form with 'safetyplan preview --server URL', or send real plans to POST "
            "/QuestionnaireResponse.",
            code="forbidden",
        )
    return await create_response(request, None)
