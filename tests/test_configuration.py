"""Configuration is read once: by the command line's settings and the service's, argv > environment > default.

Library functions take explicit values; only :mod:`fhir_safetyplan.settings` and
:mod:`fhir_safetyplan.service.settings` look at the environment. Each documented variable still works from the
command line and the service.
"""

from __future__ import annotations

import ast
import base64
import json
from pathlib import Path
from typing import Any

import pytest

from fhir_safetyplan import exitcodes, settings
from fhir_safetyplan.cli import build_parser, main
from fhir_safetyplan.service import settings_from_env

PACKAGE = Path(__file__).resolve().parent.parent / "fhir_safetyplan"
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "01-alt-pa-plass" / "answers.json"
#: the only modules that may read the environment
READERS = {"settings.py", "service/settings.py"}
CONFIGURED = (
    "SAFETYPLAN_CANONICAL_BASE",
    "SAFETYPLAN_OUTBOX",
    "SAFETYPLAN_PUBLIC_HOSTS",
    "SAFETYPLAN_CRISIS_CENTRE_NAME",
    "SAFETYPLAN_CRISIS_CENTRE_PHONE",
)


@pytest.fixture(autouse=True)
def no_inherited_configuration(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in CONFIGURED:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def _environment_reads(tree: ast.AST) -> list[int]:
    """Lines of ``os.environ``, ``os.getenv``, ``os.environb`` and ``from os import environ/getenv``."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "environb", "getenv", "putenv"):
            found.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            if any(a.name in ("environ", "environb", "getenv") for a in node.names):
                found.append(node.lineno)
    return found


def test_the_environment_is_read_only_by_the_two_settings_modules() -> None:
    readers = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        lines = _environment_reads(ast.parse(path.read_text(encoding="utf-8")))
        if lines:
            readers[path.relative_to(PACKAGE).as_posix()] = lines
    assert set(readers) <= READERS, {k: v for k, v in readers.items() if k not in READERS}
    assert set(readers) == READERS  # the walk finds the reads it is meant to find


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, json.loads(out) if out.strip().startswith("{") else out, err


def test_the_canonical_base_comes_from_the_option_else_the_environment_else_the_default(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run(capsys, "questionnaire")[1]["url"].startswith("https://safetyplan.example/fhir/")
    monkeypatch.setenv("SAFETYPLAN_CANONICAL_BASE", "https://fhir.hospital.example/fhir/")
    assert run(capsys, "questionnaire")[1]["url"] == (
        "https://fhir.hospital.example/fhir/Questionnaire/sikkerhetsplan"
    )
    bundle = run(capsys, "bundle", str(EXAMPLE))[1]
    response = bundle["entry"][0]["resource"]
    assert response["questionnaire"].startswith("https://fhir.hospital.example/fhir/Questionnaire/")
    given = run(capsys, "questionnaire", "--canonical-base", "https://other.example/fhir")[1]
    assert given["url"] == "https://other.example/fhir/Questionnaire/sikkerhetsplan"


@pytest.mark.parametrize(
    ("variable", "value", "using", "named", "unaffected"),
    [
        ("SAFETYPLAN_OUTBOX", "mysql://db.example/outbox", ("outbox", "list"), "mysql", ["questionnaire"]),
        ("SAFETYPLAN_HAPI_JAVA_OPTS", "-Xmx1g '-Dopen=quote", ("server", "build"), None, ["schema"]),
        ("SAFETYPLAN_CANONICAL_BASE", "not a url", ("questionnaire",), None, ["schema", "outbox list"]),
    ],
    ids=["outbox", "java-options", "canonical-base"],
)
def test_a_bad_setting_in_the_environment_fails_only_the_commands_that_use_it_and_says_which(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str,
    using: tuple[str, ...],
    named: str | None,
    unaffected: list[str],
) -> None:
    monkeypatch.setenv(variable, value)
    code, _, err = run(capsys, *using)
    assert code == exitcodes.CONFIG and (named or variable) in err
    for command in unaffected:
        assert run(capsys, *command.split())[0] == exitcodes.OK, command


def test_the_crisis_centre_of_the_environment_is_named_in_the_journal_note(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    answers["answers"]["checklist"]["krisesenter"] = "nei"
    Path("plan.json").write_text(json.dumps(answers, ensure_ascii=False), encoding="utf-8")
    monkeypatch.setenv("SAFETYPLAN_CRISIS_CENTRE_NAME", "Krisesenteret i Testby")
    monkeypatch.setenv("SAFETYPLAN_CRISIS_CENTRE_PHONE", "22 00 00 00")
    bundle = run(capsys, "bundle", "plan.json")[1]
    note = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "DocumentReference"
    )
    text = base64.b64decode(note["content"][0]["attachment"]["data"]).decode()
    assert "Krisesenteret i Testby, 22 00 00 00." in text


def test_command_settings_take_argv_over_the_environment_over_the_default() -> None:
    parser = build_parser()
    flush = parser.parse_args(["outbox", "flush", "--public-host", "a.test"])
    assert settings.from_environment(flush, {}).outbox_spec() == settings.DEFAULT_OUTBOX
    env = {"SAFETYPLAN_OUTBOX": "/srv/outbox.sqlite", "SAFETYPLAN_PUBLIC_HOSTS": "b.test c.test"}
    configured = settings.from_environment(flush, env)
    assert configured.outbox_spec() == Path("/srv/outbox.sqlite")
    assert configured.public_hosts == ("a.test", "b.test", "c.test")  # both: each adds hosts to guard
    given = parser.parse_args(["outbox", "list", "--outbox", "here.sqlite"])
    assert settings.from_environment(given, env).outbox_spec() == Path("here.sqlite")
    assert settings.from_environment(given, {"SAFETYPLAN_DEBUG": "1"}).debug is True
    assert "x" * 20 not in repr(settings.from_environment(given, {"SAFETYPLAN_BEARER_TOKEN": "x" * 20}))


def test_the_service_reads_public_hosts_crisis_centre_and_canonical_base_as_the_command_line_does() -> None:
    env = {
        "SAFETYPLAN_PUBLIC_HOSTS": "demo.test,other.test",
        "SAFETYPLAN_CRISIS_CENTRE_NAME": "Krisesenteret i Testby",
        "SAFETYPLAN_CANONICAL_BASE": "https://fhir.hospital.example/fhir/",
    }
    service = settings_from_env(env)
    assert service.public_hosts == ("demo.test", "other.test")
    assert service.crisis_centre is not None and service.crisis_centre.name == "Krisesenteret i Testby"
    assert service.canonical_base == "https://fhir.hospital.example/fhir"
    assert settings_from_env(env, canonical_base="https://x.example/fhir").canonical_base == (
        "https://x.example/fhir"
    )


def test_the_command_line_and_the_service_make_clients_with_the_one_factory() -> None:
    from fhir_safetyplan.client import NO_RETRY, ClientFactory
    from fhir_safetyplan.service import ServiceSettings

    with settings.Settings().client("http://fhir.test/fhir/") as cli_client:
        assert cli_client.base_url == "http://fhir.test/fhir"  # the one normaliser: check_base_url
        assert cli_client.timeout == ClientFactory().timeout
    service = ServiceSettings(upstream_timeout=(1.0, 9.0), health_timeout=2.0)
    with service.new_client("http://fhir.test/fhir/") as delivering:
        assert delivering.base_url == "http://fhir.test/fhir" and delivering.timeout == (1.0, 9.0)
    with service.new_client("http://fhir.test/fhir", probe=True) as probe:
        assert probe.timeout == (2.0, 2.0) and probe.policy is NO_RETRY
