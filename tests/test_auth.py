"""Authentication: bearer, basic and SMART Backend Services; secrets never in reprs, logs or messages."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jwt
import pytest
import requests
import responses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from responses.registries import OrderedRegistry

from fhir_safetyplan import exitcodes
from fhir_safetyplan.client import (
    AuthError,
    BasicAuth,
    BearerAuth,
    FhirClient,
    ServerConfigError,
    ServerUnavailable,
    SmartBackendAuth,
    auth_from_env,
)
from fhir_safetyplan.errors import ConfigError

BASE = "https://fhir.test/fhir"
TOKEN_URL = "https://auth.test/token"
CLIENT_ID = "safetyplan-engine"
SECRET_TOKEN = "tok-SECRET-abc123"
PASSWORD = "pw-SECRET-xyz789"


def _pem(key: Any) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1())


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=True, registry=OrderedRegistry) as r:
        yield r


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def token_reply(token: str, expires_in: int = 300) -> dict[str, Any]:
    return {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": expires_in,
        "scope": "system/*.write",
    }


def form_of(call: Any) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(call.request.body).items()}


def claims_of(assertion: str, key: Any, alg: str) -> dict[str, Any]:
    """Verify the signature with the public key; time claims are checked against the fake clock instead."""
    return jwt.decode(
        assertion,
        key.public_key(),
        algorithms=[alg],
        audience=TOKEN_URL,
        options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
    )


def smart(key: Any, alg: str = "RS384", clock: Clock | None = None, **kw: Any) -> SmartBackendAuth:
    return SmartBackendAuth(TOKEN_URL, CLIENT_ID, _pem(key), alg=alg, clock=clock or Clock(), **kw)


# ---- bearer and basic -------------------------------------------------------------------------------


def test_bearer_auth_sends_the_token_and_hides_it_in_repr(rsps):
    rsps.get(f"{BASE}/metadata", json={"resourceType": "CapabilityStatement"})
    client = FhirClient(BASE, auth=BearerAuth(SECRET_TOKEN))
    client.capabilities()
    assert rsps.calls[0].request.headers["Authorization"] == f"Bearer {SECRET_TOKEN}"
    assert SECRET_TOKEN not in repr(client)


def test_basic_auth_sends_credentials_and_hides_the_password_in_repr(rsps):
    rsps.get(f"{BASE}/metadata", json={"resourceType": "CapabilityStatement"})
    auth = BasicAuth("klinikk", PASSWORD)
    FhirClient(BASE, auth=auth).capabilities()
    assert rsps.calls[0].request.headers["Authorization"].startswith("Basic ")
    assert PASSWORD not in repr(auth)


def test_an_empty_bearer_token_is_refused():
    with pytest.raises(AuthError):
        BearerAuth("  ")


# ---- SMART Backend Services -------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["RS384", "ES384"])
def test_smart_assertion_has_the_claims_smart_requires(alg, rsa_key, ec_key):
    key = rsa_key if alg == "RS384" else ec_key
    clock = Clock()
    auth = smart(key, alg, clock, kid="key-1")
    first, second = auth.client_assertion(), auth.client_assertion()
    header = jwt.get_unverified_header(first)
    assert header["alg"] == alg and header["kid"] == "key-1" and header["typ"] == "JWT"
    claims = claims_of(first, key, alg)
    assert claims["iss"] == claims["sub"] == CLIENT_ID
    assert claims["aud"] == TOKEN_URL
    assert claims["exp"] <= clock.now + 300
    assert claims["exp"] > clock.now
    assert claims["jti"] != claims_of(second, key, alg)["jti"]


def test_smart_kid_defaults_to_the_keys_jwk_thumbprint(rsa_key):
    auth = smart(rsa_key)
    jwk = jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key(), as_dict=True)
    canonical = json.dumps({k: jwk[k] for k in ("e", "kty", "n")}, separators=(",", ":"), sort_keys=True)
    expected = base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()
    assert auth.kid == expected


def test_smart_token_request_is_client_credentials_with_a_jwt_assertion(rsps, rsa_key):
    rsps.post(TOKEN_URL, json=token_reply("t1"))
    rsps.get(f"{BASE}/metadata", json={"resourceType": "CapabilityStatement"})
    FhirClient(BASE, auth=smart(rsa_key, scope="system/CarePlan.write")).capabilities()
    form = form_of(rsps.calls[0])
    assert form["grant_type"] == "client_credentials"
    assert form["scope"] == "system/CarePlan.write"
    assert form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    assert claims_of(form["client_assertion"], rsa_key, "RS384")["iss"] == CLIENT_ID
    assert rsps.calls[1].request.headers["Authorization"] == "Bearer t1"


def test_smart_token_is_cached_until_shortly_before_it_expires(rsps, rsa_key):
    clock = Clock()
    rsps.post(TOKEN_URL, json=token_reply("t1", expires_in=300))
    for _ in range(2):
        rsps.get(f"{BASE}/metadata", json={"resourceType": "CapabilityStatement"})
    rsps.post(TOKEN_URL, json=token_reply("t2", expires_in=300))
    rsps.get(f"{BASE}/metadata", json={"resourceType": "CapabilityStatement"})
    client = FhirClient(BASE, auth=smart(rsa_key, clock=clock))
    client.capabilities()
    clock.now += 200  # still well inside the 300 s lifetime
    client.capabilities()
    clock.now += 45  # within the refresh margin before expiry
    client.capabilities()
    auths = [c.request.headers.get("Authorization") for c in rsps.calls if c.request.url.startswith(BASE)]
    assert auths == ["Bearer t1", "Bearer t1", "Bearer t2"]
    assert sum(c.request.url == TOKEN_URL for c in rsps.calls) == 2


def test_smart_refreshes_the_token_and_resends_once_on_401(rsps, rsa_key):
    rsps.post(TOKEN_URL, json=token_reply("t1", expires_in=3600))
    rsps.get(f"{BASE}/CarePlan/sp-1", status=401)
    rsps.post(TOKEN_URL, json=token_reply("t2", expires_in=3600))
    rsps.get(f"{BASE}/CarePlan/sp-1", json={"resourceType": "CarePlan", "id": "sp-1"})
    client = FhirClient(BASE, auth=smart(rsa_key))
    assert client.read("CarePlan", "sp-1")["id"] == "sp-1"
    fhir_calls = [c for c in rsps.calls if c.request.url.startswith(BASE)]
    assert [c.request.headers["Authorization"] for c in fhir_calls] == ["Bearer t1", "Bearer t2"]
    # The two assertions were distinct (fresh jti each time).
    assertions = [form_of(c)["client_assertion"] for c in rsps.calls if c.request.url == TOKEN_URL]
    jtis = {jwt.decode(a, options={"verify_signature": False})["jti"] for a in assertions}
    assert len(jtis) == 2


def test_smart_resends_only_once_when_the_new_token_is_refused_too(rsps, rsa_key):
    rsps.post(TOKEN_URL, json=token_reply("t1", expires_in=3600))
    rsps.put(f"{BASE}/CarePlan/sp-1", status=401)
    rsps.post(TOKEN_URL, json=token_reply("t2", expires_in=3600))
    rsps.put(f"{BASE}/CarePlan/sp-1", status=401)
    client = FhirClient(BASE, auth=smart(rsa_key))
    with pytest.raises(ServerConfigError) as info:
        client.update({"resourceType": "CarePlan", "id": "sp-1"})
    assert info.value.status == 401
    assert info.value.exit_code == exitcodes.CONFIG  # credentials, not the content: the plan stays pending
    assert "credentials" in str(info.value)
    assert sum(c.request.url.startswith(BASE) for c in rsps.calls) == 2


def test_token_endpoint_refusal_is_an_auth_error_naming_the_oauth_error(rsps, rsa_key):
    rsps.post(TOKEN_URL, status=400, json={"error": "invalid_client", "error_description": "unknown kid"})
    with pytest.raises(AuthError) as info:
        FhirClient(BASE, auth=smart(rsa_key), retries=0).capabilities()
    assert "invalid_client" in str(info.value)
    assert info.value.exit_code == exitcodes.CONFIG


def test_unreachable_token_endpoint_is_server_unavailable(rsps, rsa_key):
    rsps.post(TOKEN_URL, body=requests.ConnectionError("refused"))
    with pytest.raises(ServerUnavailable, match="token endpoint"):
        FhirClient(BASE, auth=smart(rsa_key), retries=0).capabilities()


def test_the_key_must_match_the_algorithm(rsa_key, ec_key):
    with pytest.raises(AuthError, match="RSA"):
        smart(ec_key, "RS384")
    with pytest.raises(AuthError, match="P-384"):
        smart(rsa_key, "ES384")
    with pytest.raises(AuthError, match="RS384 or ES384"):
        smart(rsa_key, "RS256")
    with pytest.raises(AuthError, match="PEM"):
        SmartBackendAuth(TOKEN_URL, CLIENT_ID, b"not a key")


def test_smart_flow_leaves_no_secret_in_logs_or_reprs(rsps, rsa_key, caplog):
    caplog.set_level(logging.DEBUG)
    rsps.post(TOKEN_URL, json=token_reply(SECRET_TOKEN, expires_in=3600))
    rsps.get(f"{BASE}/metadata", status=401)
    rsps.post(TOKEN_URL, json=token_reply(SECRET_TOKEN + "2", expires_in=3600))
    rsps.get(f"{BASE}/metadata", json={"resourceType": "CapabilityStatement"})
    auth = smart(rsa_key)
    client = FhirClient(BASE, auth=auth)
    client.capabilities()
    pem_body = _pem(rsa_key).decode().splitlines()[1]
    for text in (caplog.text, repr(auth), repr(client), str(vars(client))):
        assert SECRET_TOKEN not in text
        assert pem_body not in text
    assert "resending once" in caplog.text


# ---- configuration from the environment -------------------------------------------------------------


def test_auth_from_env_none_is_no_auth():
    assert auth_from_env("none", {}) is None


def test_auth_from_env_bearer_from_variable_or_file(tmp_path: Path):
    secret_file = tmp_path / "token"
    secret_file.write_text(SECRET_TOKEN + "\n")
    os.chmod(secret_file, 0o600)
    for env in (
        {"SAFETYPLAN_BEARER_TOKEN": SECRET_TOKEN},
        {"SAFETYPLAN_BEARER_TOKEN_FILE": str(secret_file)},
    ):
        auth = auth_from_env("bearer", env)
        assert isinstance(auth, BearerAuth)
        prepared = requests.Request("GET", BASE).prepare()
        assert auth(prepared).headers["Authorization"] == f"Bearer {SECRET_TOKEN}"


def test_auth_from_env_warns_when_a_secret_file_is_readable_by_others(tmp_path: Path, caplog):
    secret_file = tmp_path / "token"
    secret_file.write_text(SECRET_TOKEN)
    os.chmod(secret_file, 0o644)
    auth_from_env("bearer", {"SAFETYPLAN_BEARER_TOKEN_FILE": str(secret_file)})
    assert "chmod 600" in caplog.text
    assert SECRET_TOKEN not in caplog.text


def test_auth_from_env_basic(tmp_path: Path):
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD)
    auth = auth_from_env(
        "basic", {"SAFETYPLAN_BASIC_USER": "klinikk", "SAFETYPLAN_BASIC_PASSWORD_FILE": str(pw)}
    )
    assert isinstance(auth, BasicAuth)
    assert auth.password == PASSWORD
    assert PASSWORD not in repr(auth)


@pytest.mark.parametrize("alg", ["RS384", "ES384"])
def test_auth_from_env_smart_reads_the_key_file(tmp_path: Path, alg, rsa_key, ec_key):
    key_file = tmp_path / "key.pem"
    key_file.write_bytes(_pem(rsa_key if alg == "RS384" else ec_key))
    auth = auth_from_env(
        "smart",
        {
            "SAFETYPLAN_SMART_TOKEN_URL": TOKEN_URL,
            "SAFETYPLAN_SMART_CLIENT_ID": CLIENT_ID,
            "SAFETYPLAN_SMART_KEY_FILE": str(key_file),
            "SAFETYPLAN_SMART_ALG": alg.lower(),
            "SAFETYPLAN_SMART_KID": "k1",
        },
    )
    assert isinstance(auth, SmartBackendAuth)
    assert (auth.alg, auth.kid, auth.client_id) == (alg, "k1", CLIENT_ID)


@pytest.mark.parametrize(
    ("kind", "env", "names"),
    [
        ("bearer", {}, "SAFETYPLAN_BEARER_TOKEN"),
        (
            "bearer",
            {"SAFETYPLAN_BEARER_TOKEN": SECRET_TOKEN, "SAFETYPLAN_BEARER_TOKEN_FILE": "/x"},
            "not both",
        ),
        ("basic", {"SAFETYPLAN_BASIC_USER": "u"}, "SAFETYPLAN_BASIC_PASSWORD"),
        (
            "smart",
            {"SAFETYPLAN_SMART_KEY_FILE": "/x"},
            "SAFETYPLAN_SMART_TOKEN_URL, SAFETYPLAN_SMART_CLIENT_ID",
        ),
        (
            "smart",
            {
                "SAFETYPLAN_SMART_TOKEN_URL": TOKEN_URL,
                "SAFETYPLAN_SMART_CLIENT_ID": CLIENT_ID,
                "SAFETYPLAN_SMART_KEY_FILE": "/nonexistent/key.pem",
            },
            "SAFETYPLAN_SMART_KEY_FILE names a file that cannot be read",
        ),
        ("kerberos", {}, "none, bearer, basic, smart"),
    ],
)
def test_auth_from_env_says_which_setting_is_missing_without_showing_values(kind, env, names):
    with pytest.raises(ConfigError) as info:
        auth_from_env(kind, env)
    assert names in str(info.value)
    assert SECRET_TOKEN not in str(info.value)
    assert info.value.exit_code == exitcodes.CONFIG


def test_closing_the_client_closes_the_smart_token_session(rsa_key):
    auth = smart(rsa_key)
    closed: list[bool] = []
    auth._session.close = lambda: closed.append(True)  # type: ignore[method-assign]
    FhirClient(BASE, auth=auth).close()
    assert closed == [True]


def test_the_command_line_offers_exactly_the_auth_kinds_the_client_knows() -> None:
    # commands/push keeps its own copy so that --help does not import requests; this keeps the two equal.
    from fhir_safetyplan import client
    from fhir_safetyplan.commands import push

    assert push._AUTH_KINDS == client.AUTH_KINDS
