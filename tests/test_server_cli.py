"""Managing the local HAPI FHIR server (``fhir_safetyplan.local_hapi``, ``safetyplan server ...``) without Java.

A small Python HTTP server stands in for HAPI (``_server_command`` is the seam), so start/wait/status/stop,
their state files and their error messages are tested as real processes; Maven and Java are fakes on PATH.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from fhir_safetyplan import exitcodes, local_hapi
from fhir_safetyplan.cli import main
from fhir_safetyplan.errors import ConfigError
from fhir_safetyplan.settings import hapi_toolchain

STAND_IN = r"""
import http.server, sys
port = int(sys.argv[1])

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ok = self.path.startswith("/fhir/metadata")
        body = b'{"resourceType": "CapabilityStatement"}' if ok else b"{}"
        self.send_response(200 if ok else 404)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

print("stand-in listening", flush=True)
http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()
"""


def _use_command(monkeypatch: pytest.MonkeyPatch, script: str, *script_args: str) -> None:
    """``server start`` runs the Python ``script`` instead of the launcher: ``script PORT SCRIPT_ARGS SERVER_ARGS``."""

    def command(jar: Path, port: int, server_args: Sequence[str], toolchain: object) -> list[str]:
        return [sys.executable, "-c", script, str(port), *script_args, *server_args]

    monkeypatch.setattr(local_hapi, "_server_command", command)
    monkeypatch.setattr(local_hapi, "build", lambda **_: Path("unused.jar"))


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "state"
    yield path
    local_hapi.stop(path, timeout=5)  # never leave a stand-in running


@pytest.fixture
def stand_in(monkeypatch: pytest.MonkeyPatch) -> None:
    _use_command(monkeypatch, STAND_IN)


def test_start_waits_until_metadata_answers_and_records_pid_port_and_log(
    stand_in: None, state_dir: Path
) -> None:
    info = local_hapi.start(state_dir=state_dir, timeout=30)
    assert info.base_url == f"http://127.0.0.1:{info.port}/fhir"
    assert local_hapi.metadata_ok(info.base_url)
    assert info.log_file == (state_dir / local_hapi.LOG_FILE).resolve()
    assert "stand-in listening" in info.log_file.read_text()
    assert local_hapi.status(state_dir) == info

    assert local_hapi.stop(state_dir, timeout=10) is True
    assert local_hapi.status(state_dir) is None
    assert not local_hapi.metadata_ok(info.base_url)
    assert not (state_dir / local_hapi.STATE_FILE).exists()


def test_start_while_running_returns_the_running_server(stand_in: None, state_dir: Path) -> None:
    first = local_hapi.start(state_dir=state_dir, timeout=30)
    assert local_hapi.start(state_dir=state_dir, timeout=30) == first
    assert local_hapi.start(port=first.port, state_dir=state_dir, timeout=30) == first


def test_start_on_another_port_while_running_is_a_config_error(stand_in: None, state_dir: Path) -> None:
    first = local_hapi.start(state_dir=state_dir, timeout=30)
    other = local_hapi.free_port()
    with pytest.raises(ConfigError, match=f"already running on port {first.port}"):
        local_hapi.start(port=other, state_dir=state_dir, timeout=30)


def test_start_on_a_port_in_use_is_a_config_error(stand_in: None, state_dir: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ConfigError, match=f"Port {port} .* already in use"):
            local_hapi.start(port=port, state_dir=state_dir, timeout=30)


def test_server_exiting_during_startup_is_reported_with_the_end_of_its_log(
    monkeypatch: pytest.MonkeyPatch, state_dir: Path
) -> None:
    _use_command(
        monkeypatch, "import sys; print('Web server failed to start. Port was already in use.'); sys.exit(1)"
    )
    with pytest.raises(local_hapi.ServerStartError, match="exited during startup") as caught:
        local_hapi.start(state_dir=state_dir, timeout=30)
    assert "Port was already in use" in str(caught.value)
    assert caught.value.exit_code == exitcodes.UNAVAILABLE
    assert local_hapi.status(state_dir) is None


def test_server_not_answering_in_time_is_stopped_and_reported(
    monkeypatch: pytest.MonkeyPatch, state_dir: Path
) -> None:
    _use_command(monkeypatch, "import time; print('still initialising', flush=True); time.sleep(600)")
    with pytest.raises(local_hapi.ServerStartError, match="did not answer /metadata within 1 s") as caught:
        local_hapi.start(state_dir=state_dir, timeout=1)
    assert "still initialising" in str(caught.value)
    assert local_hapi.status(state_dir) is None  # the slow process was stopped, not left behind


def test_status_forgets_a_server_whose_process_has_ended(stand_in: None, state_dir: Path) -> None:
    info = local_hapi.start(state_dir=state_dir, timeout=30)
    os.kill(info.pid, 9)
    deadline = time.monotonic() + 10
    while local_hapi.status(state_dir) is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert local_hapi.status(state_dir) is None
    assert not (state_dir / local_hapi.STATE_FILE).exists()
    assert local_hapi.stop(state_dir) is False


def test_status_ignores_an_unreadable_state_file(tmp_path: Path) -> None:
    tmp_path.joinpath(local_hapi.STATE_FILE).write_text("{not json")
    assert local_hapi.status(tmp_path) is None
    tmp_path.joinpath(local_hapi.STATE_FILE).write_text('{"pid": "x"}')
    assert local_hapi.status(tmp_path) is None


def test_status_does_not_claim_an_unrelated_process_with_a_recycled_pid(tmp_path: Path) -> None:
    if not Path("/proc/self/stat").exists():
        pytest.skip("needs /proc to tell processes apart")
    unrelated = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        record = local_hapi.ServerInfo(
            unrelated.pid, 1, "http://127.0.0.1:1/fhir", tmp_path / "log", 0.0
        ).to_json()
        record["proc_start"] = "1"  # a different start time than the live process has
        tmp_path.joinpath(local_hapi.STATE_FILE).write_text(__import__("json").dumps(record))
        assert local_hapi.status(tmp_path) is None
        assert local_hapi.stop(tmp_path) is False
        assert unrelated.poll() is None  # and it was not killed
    finally:
        unrelated.kill()
        unrelated.wait()


# ------------------------------------------------------------------------------------------- build


def _project(tmp_path: Path) -> Path:
    project = tmp_path / "hapi"
    (project / "src" / "main" / "java").mkdir(parents=True)
    (project / "pom.xml").write_text("<project/>")
    (project / "src" / "main" / "java" / "Launcher.java").write_text("class Launcher {}")
    return project


def _touch(path: Path, mtime: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    os.utime(path, (mtime, mtime))


def test_needs_build_when_jar_missing_or_older_than_any_source(tmp_path: Path) -> None:
    project = _project(tmp_path)
    now = time.time()
    for source in (project / "pom.xml", project / "src" / "main" / "java" / "Launcher.java"):
        os.utime(source, (now - 100, now - 100))
    jar = local_hapi.jar_path(project)
    assert local_hapi.needs_build(project)
    _touch(jar, now)
    assert not local_hapi.needs_build(project)
    os.utime(project / "src" / "main" / "java" / "Launcher.java", (now + 10, now + 10))
    assert local_hapi.needs_build(project)


def _fake_tools(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mvn_script: str | None, java_version: str
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    scripts = {"java": f"#!/bin/sh\necho 'openjdk version \"{java_version}\" 2025-04-15' >&2\n"}
    if mvn_script is not None:
        scripts["mvn"] = "#!/bin/sh\n" + mvn_script
    for name, text in scripts.items():
        path = bin_dir / name
        path.write_text(text)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.delenv("JAVA_HOME", raising=False)


@pytest.mark.skipif(os.name == "nt", reason="fake tools are shell scripts")
def test_build_without_maven_is_a_config_error_saying_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_tools(tmp_path, monkeypatch, mvn_script=None, java_version="17.0.15")
    with pytest.raises(ConfigError, match="'mvn' was not found on PATH") as caught:
        local_hapi.build(project=_project(tmp_path))
    assert "SAFETYPLAN_HAPI_URL" in str(caught.value)


@pytest.mark.skipif(os.name == "nt", reason="fake tools are shell scripts")
def test_build_failure_is_a_config_error_pointing_to_the_build_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_tools(
        tmp_path,
        monkeypatch,
        mvn_script="echo '[ERROR] COMPILATION ERROR in Launcher.java'\nexit 1\n",
        java_version="17.0.15",
    )
    project = _project(tmp_path)
    with pytest.raises(ConfigError, match="mvn exit code 1") as caught:
        local_hapi.build(project=project)
    assert str(project / "target" / "build.log") in str(caught.value)
    assert "COMPILATION ERROR" in str(caught.value)


@pytest.mark.skipif(os.name == "nt", reason="fake tools are shell scripts")
def test_build_runs_maven_only_when_the_jar_is_stale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = _project(tmp_path)
    counter = tmp_path / "mvn-runs"
    jar = local_hapi.jar_path(project)
    _fake_tools(
        tmp_path, monkeypatch, mvn_script=f"echo run >> '{counter}'\n: > '{jar}'\n", java_version="17.0.15"
    )
    assert local_hapi.build(project=project) == jar
    assert local_hapi.build(project=project) == jar
    assert counter.read_text().count("run") == 1
    local_hapi.build(force=True, project=project)
    assert counter.read_text().count("run") == 2


@pytest.mark.skipif(os.name == "nt", reason="fake tools are shell scripts")
def test_java_older_than_17_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_tools(tmp_path, monkeypatch, mvn_script="exit 0\n", java_version="1.8.0_392")
    with pytest.raises(ConfigError, match="Java 8; HAPI FHIR 8 needs Java 17"):
        local_hapi.check_tools()


def test_missing_launcher_sources_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="launcher sources were not found"):
        local_hapi.hapi_dir(local_hapi.Toolchain(project=tmp_path))


def test_safetyplan_hapi_dir_names_the_launcher_the_server_command_builds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SAFETYPLAN_HAPI_DIR", str(tmp_path))
    assert main(["server", "build"]) == exitcodes.CONFIG
    assert f"{tmp_path / 'pom.xml'} is missing" in capsys.readouterr().err


def test_the_toolchain_comes_from_java_home_and_the_hapi_variables(tmp_path: Path) -> None:
    env = {
        "SAFETYPLAN_HAPI_DIR": str(tmp_path / "hapi"),
        "JAVA_HOME": str(tmp_path / "jdk"),
        "SAFETYPLAN_HAPI_JAVA_OPTS": "-Xmx512m '-Dname=a b'",
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    toolchain = hapi_toolchain(env)
    assert toolchain.project == tmp_path / "hapi" and toolchain.java_home == tmp_path / "jdk"
    assert toolchain.java_opts == ("-Xmx512m", "-Dname=a b")
    assert toolchain.cache == tmp_path / "cache" / "fhir-safetyplan"
    assert hapi_toolchain({"SAFETYPLAN_HAPI_JAVA_OPTS": ""}).java_opts == ()  # set but empty: no options
    assert hapi_toolchain({}) == local_hapi.Toolchain(cache=hapi_toolchain({}).cache)
    assert hapi_toolchain({}).java_opts == local_hapi.DEFAULT_JAVA_OPTS


# ------------------------------------------------------------------------------------------- command line


def test_cli_start_prints_base_url_status_repeats_it_and_stop_ends_it(
    stand_in: None, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["server", "start", "--state-dir", str(state_dir), "--timeout", "30"]) == exitcodes.OK
    base_url = capsys.readouterr().out.strip()
    assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/fhir")

    assert main(["server", "status", "--state-dir", str(state_dir)]) == exitcodes.OK
    out = capsys.readouterr()
    assert out.out.strip() == base_url and "ready" in out.err

    assert main(["server", "stop", "--state-dir", str(state_dir)]) == exitcodes.OK
    assert "stopped" in capsys.readouterr().err
    assert main(["server", "status", "--state-dir", str(state_dir)]) == exitcodes.UNAVAILABLE
    assert "no HAPI FHIR server running" in capsys.readouterr().err


def test_cli_stop_without_a_server_succeeds_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["server", "stop", "--state-dir", str(tmp_path)]) == exitcodes.OK
    assert "no HAPI FHIR server running" in capsys.readouterr().err


def test_cli_start_failure_exits_unavailable_with_the_log(
    monkeypatch: pytest.MonkeyPatch, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _use_command(monkeypatch, "import sys; print('APPLICATION FAILED TO START'); sys.exit(1)")
    assert main(["server", "start", "--state-dir", str(state_dir)]) == exitcodes.UNAVAILABLE
    assert "APPLICATION FAILED TO START" in capsys.readouterr().err


def test_cli_missing_tools_exit_with_config_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SAFETYPLAN_HAPI_DIR", str(tmp_path / "nowhere"))
    assert main(["server", "start", "--state-dir", str(tmp_path)]) == exitcodes.CONFIG
    assert "launcher sources were not found" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv", [["server"], ["server", "start", "--port", "0"], ["server", "start", "--port", "x"]]
)
def test_cli_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    try:
        code = main(argv)
    except SystemExit as exc:
        code = int(exc.code or 0)
    assert code == exitcodes.USAGE
    assert capsys.readouterr().err
