"""Authentication as small ``requests.auth.AuthBase`` objects: bearer, basic, SMART Backend Services.

Secrets come from the environment or from files (:func:`auth_from_env`), never from the command line,
and never appear in a repr, a log line or an error message.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import stat
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import requests
from requests.auth import AuthBase, HTTPBasicAuth

from fhir_safetyplan.client._errors import AuthError, ServerUnavailable, synthesised_outcome
from fhir_safetyplan.codes import WRITTEN_TYPES
from fhir_safetyplan.errors import ConfigError

log = logging.getLogger("fhir_safetyplan.client.auth")

#: the scopes a journal delivery and a read-back need (SMART v1 syntax, which v2 servers also accept)
DEFAULT_SMART_SCOPE = " ".join(f"system/{t}.{access}" for t in WRITTEN_TYPES for access in ("read", "write"))
#: assertion lifetime: under SMART's 5-minute ceiling, with room for a server clock running behind ours
_ASSERTION_SECONDS = 240
_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_REDACTED = "<redacted>"


class BearerAuth(AuthBase):
    """A fixed bearer token (``Authorization: Bearer …``)."""

    def __init__(self, token: str) -> None:
        token = token.strip()
        if not token:
            raise AuthError(
                "The bearer token is empty; set SAFETYPLAN_BEARER_TOKEN or SAFETYPLAN_BEARER_TOKEN_FILE."
            )
        self._token = token

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = f"Bearer {self._token}"
        return r

    def __repr__(self) -> str:
        return f"BearerAuth(token={_REDACTED})"


class BasicAuth(HTTPBasicAuth):
    """HTTP basic authentication (requests' own encoding); only the repr differs: no password."""

    def __repr__(self) -> str:
        return f"BasicAuth(username={self.username!r}, password={_REDACTED})"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _thumbprint(public_jwk: Mapping[str, Any]) -> str:
    """RFC 7638 JWK thumbprint: the usual key id when a key is registered as a JWK."""
    members = ("e", "kty", "n") if public_jwk["kty"] == "RSA" else ("crv", "kty", "x", "y")
    canonical = json.dumps({m: public_jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    return _b64url(hashlib.sha256(canonical.encode("utf-8")).digest())


class SmartBackendAuth(AuthBase):
    """SMART Backend Services: client credentials with a ``private_key_jwt`` assertion.

    Each token request carries a fresh assertion (iss = sub = ``client_id``, aud = ``token_url``,
    exp four minutes ahead, a new ``jti``), signed RS384 or ES384 with ``private_key_pem``. The token is
    cached until shortly before ``expires_in``; when the FHIR server still answers 401 the token is
    fetched anew and the request resent once. ``kid`` defaults to the key's RFC 7638 thumbprint.
    """

    def __init__(
        self,
        token_url: str,
        client_id: str,
        private_key_pem: bytes | str,
        *,
        alg: str = "RS384",
        kid: str | None = None,
        scope: str = DEFAULT_SMART_SCOPE,
        timeout: tuple[float, float] = (5.0, 30.0),
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
        refresh_margin: float = 60.0,
    ) -> None:
        import jwt
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec, rsa

        if alg not in ("RS384", "ES384"):
            raise AuthError(f"SMART Backend Services signs with RS384 or ES384, not {alg!r}.")
        if not token_url.startswith(("https://", "http://")):
            raise AuthError("The SMART token URL must be an http(s) URL (SAFETYPLAN_SMART_TOKEN_URL).")
        if not client_id:
            raise AuthError("The SMART client id is empty (SAFETYPLAN_SMART_CLIENT_ID).")
        pem = private_key_pem.encode("ascii") if isinstance(private_key_pem, str) else private_key_pem
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError):
            # Never echo the key material or the library's message about it.
            raise AuthError(
                "The SMART private key could not be read: it must be an unencrypted PEM private key."
            ) from None
        public_jwk: dict[str, Any]
        if alg == "RS384":
            if not isinstance(key, rsa.RSAPrivateKey):
                raise AuthError("RS384 needs an RSA private key; for an EC P-384 key use alg ES384.")
            public_jwk = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
        else:
            if not (isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp384r1"):
                raise AuthError("ES384 needs an EC P-384 private key; for an RSA key use alg RS384.")
            public_jwk = jwt.algorithms.ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
        self.token_url = token_url
        self.client_id = client_id
        self.alg = alg
        self.scope = scope
        self._key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = key
        self.kid = kid or _thumbprint(public_jwk)
        self._timeout = timeout
        # Our own session is ours to close; a session handed in belongs to the caller.
        self._own_session = session is None
        self._session = session or requests.Session()
        self._clock = clock
        self._margin = refresh_margin
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0

    def close(self) -> None:
        """Close the token endpoint session (when this object made it)."""
        if self._own_session:
            self._session.close()

    def __repr__(self) -> str:
        return (
            f"SmartBackendAuth(token_url={self.token_url!r}, client_id={self.client_id!r}, alg={self.alg!r}, "
            f"kid={self.kid!r}, key={_REDACTED})"
        )

    def client_assertion(self) -> str:
        """A freshly signed client assertion JWT (new ``jti`` every time)."""
        import jwt

        now = int(self._clock())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": self.token_url,
            "iat": now,
            "exp": now + _ASSERTION_SECONDS,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self._key, algorithm=self.alg, headers={"kid": self.kid, "typ": "JWT"})

    def token(self) -> str:
        """The current access token, fetched when missing or about to expire."""
        with self._lock:
            if self._token is None or self._clock() >= self._expires_at:
                self._token, lifetime = self._fetch()
                self._expires_at = self._clock() + max(0.0, lifetime - min(self._margin, lifetime / 2))
            return self._token

    def invalidate(self, token: str | None = None) -> None:
        """Forget the cached token; with ``token``, only if still that one (a thread may have renewed)."""
        with self._lock:
            if token is None or token == self._token:
                self._token = None

    def _fetch(self) -> tuple[str, float]:
        form = {
            "grant_type": "client_credentials",
            "scope": self.scope,
            "client_assertion_type": _ASSERTION_TYPE,
            "client_assertion": self.client_assertion(),
        }
        started = time.perf_counter()
        try:
            resp = self._session.post(
                self.token_url, data=form, headers={"Accept": "application/json"}, timeout=self._timeout
            )
        except requests.exceptions.RequestException as exc:
            msg = f"The SMART token endpoint could not be reached ({type(exc).__name__})."
            raise ServerUnavailable(msg, None, synthesised_outcome("transient", msg)) from exc
        log.info(
            "POST token endpoint -> %d in %.0f ms", resp.status_code, (time.perf_counter() - started) * 1000
        )
        if resp.status_code == 429 or resp.status_code >= 500:
            msg = f"The SMART token endpoint is unavailable ({resp.status_code}); try again later."
            raise ServerUnavailable(msg, resp.status_code, synthesised_outcome("transient", msg))
        try:
            body = resp.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        if resp.status_code != 200:
            # OAuth's `error` code (e.g. invalid_client) says what is wrong without quoting anything secret.
            code = body.get("error") if isinstance(body.get("error"), str) else "no error code"
            raise AuthError(
                f"The SMART token endpoint refused the client ({resp.status_code}, {code}): check the client "
                "id, that the public key (kid) is registered with the server, the algorithm and the scope."
            )
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise AuthError("The SMART token endpoint answered without an access_token.")
        if str(body.get("token_type", "bearer")).lower() != "bearer":
            raise AuthError("The SMART token endpoint issued a token that is not a bearer token.")
        try:
            lifetime = float(body.get("expires_in", 300))
        except (TypeError, ValueError):
            lifetime = 300.0
        return token, lifetime

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = f"Bearer {self.token()}"
        r.register_hook("response", self._resend_once_on_401)  # type: ignore[no-untyped-call]
        return r

    def _resend_once_on_401(self, resp: requests.Response, **kwargs: Any) -> requests.Response:
        if resp.status_code != 401 or getattr(resp.request, "_smart_resent", False):
            return resp
        used = str(resp.request.headers.get("Authorization", "")).removeprefix("Bearer ")
        self.invalidate(used)
        prep = resp.request.copy()
        prep.headers["Authorization"] = f"Bearer {self.token()}"
        prep._smart_resent = True  # type: ignore[attr-defined]
        # Drain and release the first connection before reusing the pool (as requests' digest auth does).
        _ = resp.content
        resp.close()
        log.info("FHIR server answered 401: fetched a new access token, resending once")
        new = resp.connection.send(prep, **kwargs)
        new.history.append(resp)
        new.request = prep
        return new


# ---- configuration from environment variables (a mapping the caller passes) --------------------

AUTH_KINDS = ("none", "bearer", "basic", "smart")


def _read_file(name: str, path: str) -> str:
    p = Path(path)
    try:
        mode = p.stat().st_mode
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{name} names a file that cannot be read ({exc.strerror}): {path}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("%s: the file %s is readable by other users; chmod 600 it", name, path)
    return text


def _secret(env: Mapping[str, str], name: str, *, required: bool = True) -> str | None:
    """The value of ``name`` or of the file named by ``name_FILE`` (one of them, not both)."""
    value, file = env.get(name), env.get(f"{name}_FILE")
    if value and file:
        raise ConfigError(f"Set either {name} or {name}_FILE, not both.")
    if file:
        value = _read_file(f"{name}_FILE", file).strip()
    if not value:
        if required:
            raise ConfigError(f"Set {name} (or {name}_FILE with the name of a file holding it).")
        return None
    return value


def _setting(env: Mapping[str, str], name: str, default: str | None = None) -> str:
    value = env.get(name) or default
    if not value:
        raise ConfigError(f"Set {name}.")
    return value


def auth_from_env(kind: str, env: Mapping[str, str]) -> AuthBase | None:
    """The auth object for ``kind`` (none | bearer | basic | smart), configured from the variables in ``env``
    (the caller's settings pass the environment; this module never reads it itself).

    - bearer: ``SAFETYPLAN_BEARER_TOKEN`` or ``SAFETYPLAN_BEARER_TOKEN_FILE``
    - basic: ``SAFETYPLAN_BASIC_USER`` and ``SAFETYPLAN_BASIC_PASSWORD`` or ``SAFETYPLAN_BASIC_PASSWORD_FILE``
    - smart: ``SAFETYPLAN_SMART_TOKEN_URL``, ``SAFETYPLAN_SMART_CLIENT_ID``, ``SAFETYPLAN_SMART_KEY_FILE``
      (PEM), optional ``SAFETYPLAN_SMART_ALG`` (RS384 | ES384), ``SAFETYPLAN_SMART_KID``,
      ``SAFETYPLAN_SMART_SCOPE``

    Raises :class:`ConfigError` naming the variable that is missing (never showing a value).
    """
    kind = kind.strip().lower()
    if kind == "none":
        return None
    if kind == "bearer":
        return BearerAuth(_secret(env, "SAFETYPLAN_BEARER_TOKEN") or "")
    if kind == "basic":
        user = _setting(env, "SAFETYPLAN_BASIC_USER")
        return BasicAuth(user, _secret(env, "SAFETYPLAN_BASIC_PASSWORD") or "")
    if kind == "smart":
        names = ("SAFETYPLAN_SMART_TOKEN_URL", "SAFETYPLAN_SMART_CLIENT_ID", "SAFETYPLAN_SMART_KEY_FILE")
        missing = [n for n in names if not env.get(n)]
        if missing:
            raise ConfigError(f"SMART Backend Services needs {', '.join(missing)} to be set.")
        token_url, client_id, key_file = (env[n] for n in names)
        return SmartBackendAuth(
            token_url,
            client_id,
            _read_file("SAFETYPLAN_SMART_KEY_FILE", key_file),
            alg=_setting(env, "SAFETYPLAN_SMART_ALG", "RS384").upper(),
            kid=env.get("SAFETYPLAN_SMART_KID") or None,
            scope=env.get("SAFETYPLAN_SMART_SCOPE") or DEFAULT_SMART_SCOPE,
        )
    raise ConfigError(f"Unknown auth kind {kind!r}; use one of: {', '.join(AUTH_KINDS)}.")
