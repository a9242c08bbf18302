"""``FhirClient``: one configured ``requests.Session`` that speaks FHIR R4 JSON to one server.

Transport concerns live here once: timeouts on every call, connection pooling, one retry policy
(``_retry``), ``application/fhir+json`` both ways, and errors that carry an OperationOutcome.
Logs hold the method, the path with query *names* only, the status and the timing — never a body,
never a query value (search parameters can be identity numbers).
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import InvalidHeader, MaxRetryError, NewConnectionError
from urllib3.util.retry import Retry

from fhir_safetyplan import __version__, fhir_r4
from fhir_safetyplan.client._capabilities import DELIVERY_REQUIREMENTS, capability_problems, json_objects
from fhir_safetyplan.client._errors import (
    FhirError,
    FhirHttpError,
    ServerConfigError,
    ServerIncompatible,
    ServerRejected,
    ServerUnavailable,
    WriteConflict,
    synthesised_outcome,
    unknown_patient,
)
from fhir_safetyplan.client._retry import Attempt, RetryPolicy, default_policy
from fhir_safetyplan.client._transaction import (
    check_transaction_response,
    entry_results,
    is_idempotent_transaction,
)
from fhir_safetyplan.errors import JSON, ConfigError, InputError, operation_outcome

log = logging.getLogger("fhir_safetyplan.client")

FHIR_JSON = "application/fhir+json"
_TYPE = re.compile(r"^[A-Z][A-Za-z]{1,63}$")
_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_HAPI_CODE = re.compile(r"\bHAPI-\d{4}\b")
_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})

_HINTS = {
    400: "the server could not parse or accept the content; see the OperationOutcome",
    401: "the server did not accept the credentials; check the SAFETYPLAN_* auth settings",
    403: "the credentials lack permission for this (for SMART, check the scope)",
    404: "check the server URL and the resource type and id",
    405: "the server does not allow this interaction on this resource type",
    409: "the data conflicts with a newer version on the server; see the OperationOutcome",
    410: "the resource was deleted on the server",
    412: "a condition failed on the server (e.g. an identifier matched several resources); "
    "see the OperationOutcome",
    413: "the request is too large for the server; send smaller bundles",
    415: "the server does not accept application/fhir+json",
    422: "the server found the content invalid against its rules or profiles; see the OperationOutcome",
}


def _check_type(resource_type: str) -> str:
    if not _TYPE.match(resource_type):
        raise InputError(f"{resource_type!r} is not a FHIR resource type name (e.g. 'CarePlan').")
    return resource_type


def _check_id(resource_id: str) -> str:
    if not _ID.match(resource_id):
        raise InputError("A FHIR id has 1-64 characters from A-Z, a-z, 0-9, '-' and '.'.")
    return resource_id


def _never_sent(exc: BaseException) -> bool:
    """The request provably did not reach the server: safe to repeat even when not idempotent."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(exc, requests.exceptions.ConnectionError) and exc.args:
        reason = exc.args[0]
        if isinstance(reason, MaxRetryError):
            reason = reason.reason
        # Refused connections and failed DNS lookups; a *reset* may come after the body was sent.
        return isinstance(reason, NewConnectionError)
    return False


def _describe_failure(exc: BaseException) -> str:
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "the connection timed out"
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return "the server did not answer in time (read timeout)"
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS verification failed (for a hospital CA, set REQUESTS_CA_BUNDLE to its certificate file)"
    if _never_sent(exc):
        return "the connection was refused or the host name did not resolve"
    return "the connection was lost (reset or closed)"


def check_base_url(base_url: str) -> str:
    """``base_url`` normalised (no trailing slash); ConfigError unless http(s), a host, no query, no userinfo."""
    parts = urlsplit(base_url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            "The FHIR server URL must start with http:// or https:// and name a host, "
            "e.g. http://127.0.0.1:8080/fhir."
        )
    if parts.query or parts.fragment:
        raise ConfigError("The FHIR server URL is the base URL only: no '?' query and no '#' part.")
    if "@" in parts.netloc:
        # It would show up in messages, logs and outbox listings; secrets come from the environment.
        raise ConfigError(
            "The FHIR server URL must not hold a user name or password (user:password@host): give the "
            "URL without them and the credentials with --auth basic and SAFETYPLAN_BASIC_USER / "
            "SAFETYPLAN_BASIC_PASSWORD[_FILE]."
        )
    return base_url.strip().rstrip("/")


def _outcome_of(resp: requests.Response) -> JSON | None:
    try:
        body = resp.json()
    except (ValueError, RecursionError):
        return None
    if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome":
        return body
    return None


#: (connect, read) seconds a client waits unless told otherwise
DEFAULT_TIMEOUT = (5.0, 60.0)
#: how often a safe request is repeated after a transient failure unless told otherwise
DEFAULT_RETRIES = 3


class FhirClient:
    """A FHIR R4 JSON client for one server base URL.

    ``timeout`` is (connect, read) seconds for every request. ``retries`` is how many times a safe
    request is repeated after 408/429/502/503/504 or a lost connection (or a full :class:`RetryPolicy`).
    ``auth`` is any ``requests.auth.AuthBase`` (see :mod:`fhir_safetyplan.client` for ours).
    ``verify`` is passed to requests (True, False, or a CA bundle path).
    """

    def __init__(
        self,
        base_url: str,
        *,
        auth: requests.auth.AuthBase | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        retries: int | RetryPolicy = DEFAULT_RETRIES,
        user_agent: str | None = None,
        verify: bool | str = True,
        max_pages: int = 50,
    ) -> None:
        self.base_url = check_base_url(base_url)
        self._base = urlsplit(self.base_url)
        self.timeout = timeout
        self.policy = retries if isinstance(retries, RetryPolicy) else default_policy(retries)
        self.max_pages = max_pages
        self.auth = auth
        session = requests.Session()
        # Retry(0): every retry decision is ours (see _retry); the adapter only pools connections.
        adapter = HTTPAdapter(max_retries=Retry(total=0, read=False, redirect=False, raise_on_status=False))
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.auth = auth
        session.verify = verify
        session.headers.update(
            {
                "Accept": FHIR_JSON,
                "User-Agent": user_agent
                or f"fhir-safetyplan/{__version__} python-requests/{requests.__version__}",
            }
        )
        self._session = session

    def __repr__(self) -> str:
        return f"FhirClient({self.base_url!r}, auth={self.auth!r}, timeout={self.timeout!r})"

    def close(self) -> None:
        """Close pooled connections (and the auth's own, e.g. SMART's token endpoint session)."""
        self._session.close()
        close_auth = getattr(self.auth, "close", None)
        if callable(close_auth):
            close_auth()

    def __enter__(self) -> FhirClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- the FHIR interactions ------------------------------------------------------------------

    def capabilities(self) -> JSON:
        """The server's CapabilityStatement (``GET [base]/metadata``)."""
        body = self._json(self._request("GET", "metadata", idempotent=True), "GET metadata")
        if body.get("resourceType") != "CapabilityStatement":
            raise FhirError(
                f"{self.base_url}/metadata did not return a CapabilityStatement; check that this is the FHIR base URL."
            )
        return body

    def check_capabilities(
        self,
        required: Mapping[str, Iterable[str]] = DELIVERY_REQUIREMENTS,
        *,
        system_interactions: Iterable[str] = (),
        fhir_version_prefix: str = fhir_r4.SERVER_VERSION_PREFIX,
    ) -> JSON:
        """Check the server is FHIR R4 and supports ``required`` {type: interactions}; return the statement.

        Raises :class:`ServerIncompatible` listing everything missing at once.
        """
        cs = self.capabilities()
        problems = capability_problems(cs, required, system_interactions, fhir_version_prefix)
        if problems:
            raise ServerIncompatible(
                f"The server at {self.base_url} cannot take our resources: "
                + "; ".join(p["diagnostics"] for p in problems),
                operation_outcome(problems),
            )
        return cs

    def transaction(
        self, bundle: JSON, *, idempotent: bool | None = None, headers: Mapping[str, str] | None = None
    ) -> JSON:
        """POST a transaction (or batch) Bundle to the base; return the response Bundle.

        It is retried after a lost answer only when :func:`is_idempotent_transaction` holds
        (or ``idempotent`` says so explicitly). ``headers``: e.g. ``Cache-Control: no-cache`` for a batch of
        searches (HAPI applies it to the searches inside).
        """
        if bundle.get("resourceType") != "Bundle" or bundle.get("type") not in ("transaction", "batch"):
            raise InputError("Only a Bundle of type 'transaction' or 'batch' can be posted as a transaction.")
        safe = is_idempotent_transaction(bundle) if idempotent is None else idempotent
        resp = self._request("POST", "", body=bundle, idempotent=safe, headers=headers)
        body = self._json(resp, "POST transaction")
        if body.get("resourceType") != "Bundle" or body.get("type") not in (
            "transaction-response",
            "batch-response",
        ):
            raise FhirError(
                "The server accepted the transaction but did not answer with a transaction-response Bundle."
            )
        check_transaction_response(bundle, body)
        return body

    def read(self, resource_type: str, resource_id: str) -> JSON:
        """``GET [base]/Type/id``."""
        path = f"{_check_type(resource_type)}/{_check_id(resource_id)}"
        return self._json(self._request("GET", path, idempotent=True), f"GET {resource_type}")

    def search(
        self,
        resource_type: str,
        params: Mapping[str, str | Sequence[str]] | None = None,
        *,
        max_pages: int | None = None,
    ) -> list[JSON]:
        """All resources of a search (matches and ``_include``-s), following ``next`` links.

        Sent with ``Cache-Control: no-cache`` (HAPI otherwise may answer from a 60 s search cache).
        Raises :class:`FhirError` when more than ``max_pages`` pages come back (narrow the search).
        """
        cap = max_pages or self.max_pages
        headers = {"Cache-Control": "no-cache"}
        resp = self._request(
            "GET", _check_type(resource_type), params=dict(params or {}), headers=headers, idempotent=True
        )
        out: list[JSON] = []
        for page in range(1, cap + 1):
            bundle = self._json(resp, f"GET {resource_type} search")
            if bundle.get("resourceType") != "Bundle":
                raise FhirError(f"The search for {resource_type} did not return a Bundle.")
            out.extend(
                e["resource"]
                for e in json_objects(bundle.get("entry"))
                if isinstance(e.get("resource"), dict)
            )
            nxt = next(
                (lk.get("url") for lk in json_objects(bundle.get("link")) if lk.get("relation") == "next"),
                None,
            )
            if nxt is not None and not isinstance(nxt, str):
                raise FhirError(
                    f"The search for {resource_type} returned a next-page link that is not a URL."
                )
            if not nxt:
                return out
            if page == cap:
                break
            resp = self._request("GET", self._same_origin(nxt), headers=headers, idempotent=True)
        raise FhirError(
            f"The search for {resource_type} has more than {cap} pages; narrow it (e.g. _count, dates) "
            "or raise max_pages."
        )

    def create(self, resource: JSON, *, if_none_exist: str | None = None) -> JSON:
        """``POST [base]/Type``; with ``if_none_exist`` (e.g. ``identifier=sys|val``) a conditional create.

        Only the conditional form is retried after a lost answer: a plain create would duplicate.
        """
        rtype = _check_type(str(resource.get("resourceType", "")))
        headers = {"Prefer": "return=representation"}
        if if_none_exist:
            headers["If-None-Exist"] = if_none_exist
        resp = self._request("POST", rtype, body=resource, headers=headers, idempotent=bool(if_none_exist))
        return self._written(resp, rtype)

    def update(self, resource: JSON) -> JSON:
        """``PUT [base]/Type/id`` (creates the resource with that id when the server allows it)."""
        rtype = _check_type(str(resource.get("resourceType", "")))
        rid = _check_id(str(resource.get("id", "")))
        resp = self._request(
            "PUT",
            f"{rtype}/{rid}",
            body=resource,
            headers={"Prefer": "return=representation"},
            idempotent=True,
        )
        return self._written(resp, rtype)

    def validate(self, resource: JSON, profile: str | None = None) -> JSON:
        """``POST [base]/Type/$validate``; the OperationOutcome, also when it lists errors.

        HAPI answers 412 (some servers 400/422) when the resource has errors: that is the verdict,
        not a failure, so the OperationOutcome is returned. ``$validate`` changes nothing: retried freely.
        """
        rtype = _check_type(str(resource.get("resourceType", "")))
        path = f"{rtype}/$validate"
        if profile:
            # As a query parameter: HAPI 8.8 does not resolve a profile given inside a Parameters body
            # ("Invalid profile. Failed to retrieve profile with url=UriType[...]"); ?profile= works.
            path += "?profile=" + quote(profile, safe="")
        resp = self._request("POST", path, body=resource, idempotent=True, accept=(400, 412, 422))
        outcome = _outcome_of(resp)
        if outcome is None:
            if resp.status_code >= 400:
                raise self._http_error("POST", f"{rtype}/$validate", resp)
            raise FhirError(f"$validate on {rtype} did not return an OperationOutcome.")
        return outcome

    # ---- plumbing -------------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.base_url}/{path}" if path else self.base_url

    def _same_origin(self, url: str) -> str:
        # Credentials go only to the configured server, also when a server's paging link points elsewhere.
        parts = urlsplit(url)
        if (parts.scheme, parts.netloc) != (self._base.scheme, self._base.netloc):
            raise FhirError(
                f"The server's next-page link points to another host ({parts.scheme}://{parts.netloc}); "
                f"not following it. Configure the server's public base URL to match {self.base_url}."
            )
        return url

    def _where(self, url: str, params: Mapping[str, Any] | None) -> str:
        """The path for logs and messages: query parameter names kept, their values dropped."""
        parts = urlsplit(url)
        path = parts.path
        if path.startswith(self._base.path):
            path = path[len(self._base.path) :] or "/"
        names = [k for k, _ in parse_qsl(parts.query, keep_blank_values=True)] + list(params or {})
        return path + ("?" + "&".join(f"{n}=…" for n in dict.fromkeys(names)) if names else "")

    def _request(
        self,
        method: str,
        path: str,
        *,
        body: JSON | None = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        accept: Iterable[int] = (),
    ) -> requests.Response:
        url = self._url(path)
        where = self._where(url, params)
        safe = method in _IDEMPOTENT_METHODS if idempotent is None else idempotent
        hdrs = dict(headers or {})
        data = None
        if body is not None:
            # UTF-8 without a BOM: HAPI rejects a BOM (HAPI-1859).
            data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
            hdrs["Content-Type"] = FHIR_JSON
        accepted = set(accept)
        number = 0
        while True:
            number += 1
            started = time.perf_counter()
            try:
                resp = self._session.request(
                    method,
                    url,
                    params=params,
                    data=data,
                    headers=hdrs,
                    timeout=self.timeout,
                    # A redirected POST would silently become a GET; writes must reach the base as given.
                    allow_redirects=method in ("GET", "HEAD"),
                )
            except (
                requests.exceptions.ConnectionError,
                requests.exceptions.Timeout,
                requests.exceptions.ChunkedEncodingError,
            ) as exc:
                ms = (time.perf_counter() - started) * 1000
                retryable = not isinstance(exc, requests.exceptions.SSLError)
                attempt = Attempt(number, safe, error=exc, never_sent=_never_sent(exc))
                wait = self.policy.next_wait(attempt) if retryable else None
                what = _describe_failure(exc)
                if wait is None:
                    log.warning(
                        "%s %s failed after %.0f ms: %s (attempt %d)", method, where, ms, what, number
                    )
                    hint = "" if safe else " It was not retried because resending it could duplicate data."
                    raise ServerUnavailable(
                        f"{method} {where}: no answer from {self.base_url}: {what}.{hint}",
                        None,
                        synthesised_outcome("transient", f"No answer from the FHIR server: {what}."),
                    ) from exc
                log.warning("%s %s: %s; retrying in %.1f s (attempt %d)", method, where, what, wait, number)
                self.policy.sleep(wait)
                continue
            except requests.exceptions.RequestException as exc:
                raise FhirError(
                    f"{method} {where}: the request could not be made ({type(exc).__name__})."
                ) from exc
            ms = (time.perf_counter() - started) * 1000
            status = resp.status_code
            log.info("%s %s -> %d in %.0f ms (attempt %d)", method, where, status, ms, number)
            if status < 300 or status in accepted:
                return resp
            retry_after = self._retry_after(resp)
            wait = self.policy.next_wait(Attempt(number, safe, status=status, retry_after=retry_after))
            if wait is None:
                raise self._http_error(method, where, resp, path=path, attempt=number)
            log.warning(
                "%s %s answered %d; retrying in %.1f s (attempt %d)", method, where, status, wait, number
            )
            resp.close()
            self.policy.sleep(wait)

    @staticmethod
    def _retry_after(resp: requests.Response) -> float | None:
        value = resp.headers.get("Retry-After")
        if value is None:
            return None
        try:
            return float(Retry().parse_retry_after(value))
        except InvalidHeader:
            return None

    def _http_error(
        self, method: str, where: str, resp: requests.Response, *, path: str | None = None, attempt: int = 1
    ) -> FhirHttpError:
        status = resp.status_code
        outcome = _outcome_of(resp)
        # HAPI's message codes (e.g. HAPI-0450) identify the cause without quoting the data.
        codes = sorted(
            {
                c
                for i in (outcome or {}).get("issue", [])
                for c in _HAPI_CODE.findall(str(i.get("diagnostics", "")))
            }
        )
        tag = f" [{', '.join(codes)}]" if codes else ""
        at_base = path in ("", "metadata")
        if at_base and method == "POST" and status == 404 and "HAPI-1091" in codes:
            return unknown_patient(method, where, status, outcome)  # this plan's patient, not our URL
        if 300 <= status < 400:
            msg = f"{method} {where}: the server redirected ({status}); use the final FHIR base URL instead."
            return ServerConfigError(msg, status, outcome or synthesised_outcome("processing", msg))
        if status in (401, 403, 407) or (at_base and status in (404, 405, 413, 415)):
            # Our URL or credentials, not the plan: keep it pending until the configuration is fixed.
            hint = _HINTS.get(status, "check the proxy settings")
            if at_base and status == 404:
                hint = f"check that {self.base_url} is the FHIR base URL"
            msg = f"{method} {where}: the server refused the request ({status} {resp.reason}){tag}: {hint}."
            return ServerConfigError(msg, status, outcome or synthesised_outcome("security", msg))
        if status == 409 and (attempt > 1 or "HAPI-0550" in codes):
            # A racing identical write (HAPI-0550), or a resend meeting the first attempt still in progress.
            msg = f"{method} {where}: a concurrent write of the same resources conflicted ({status}){tag}."
            return WriteConflict(msg + " Try again later.", status, synthesised_outcome("conflict", msg))
        if path == "" and method == "POST" and (status not in (400, 409, 412, 422) or outcome is None):
            # A verdict on the plan comes with an OperationOutcome; anything else (a proxy's 400 page, 410)
            # does not say the content is wrong, so the plan stays pending.
            msg = (
                f"{method} {where}: the server answered {status} {resp.reason} without saying what is wrong "
                "with the content; try again later."
            )
            return ServerUnavailable(msg, status, outcome or synthesised_outcome("transient", msg))
        if 400 <= status < 500 and status not in (408, 429):
            hint = _HINTS.get(status, "see the OperationOutcome")
            msg = f"{method} {where}: the server rejected the request ({status} {resp.reason}){tag}: {hint}."
            return ServerRejected(msg, status, outcome or synthesised_outcome("processing", msg))
        msg = (
            f"{method} {where}: the server could not take the request ({status} {resp.reason}){tag}; "
            "try again later."
        )
        return ServerUnavailable(msg, status, outcome or synthesised_outcome("transient", msg))

    def _json(self, resp: requests.Response, what: str) -> JSON:
        try:
            body = resp.json()
        except ValueError:
            raise FhirError(f"{what}: the server's answer ({resp.status_code}) is not JSON.") from None
        except RecursionError:
            raise FhirError(
                f"{what}: the server's answer ({resp.status_code}) is nested too deeply."
            ) from None
        if not isinstance(body, dict):
            raise FhirError(f"{what}: the server's answer ({resp.status_code}) is not a FHIR resource.")
        return body

    def _written(self, resp: requests.Response, rtype: str) -> JSON:
        if resp.content:
            return self._json(resp, f"write {rtype}")
        # The server ignored Prefer: return=representation; the Location still says what was written.
        loc = resp.headers.get("Location") or resp.headers.get("Content-Location") or ""
        res = entry_results({"entry": [{"response": {"status": str(resp.status_code), "location": loc}}]})[0]
        out: JSON = {"resourceType": res.resource_type or rtype}
        if res.id:
            out["id"] = res.id
        if res.version_id:
            out["meta"] = {"versionId": res.version_id}
        return out
