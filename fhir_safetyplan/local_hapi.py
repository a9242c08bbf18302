"""Build, start, stop and inspect the local HAPI FHIR server (the Maven launcher in ``hapi/``; installed
from a wheel, built in the per-user cache directory).

The server is a real HAPI FHIR 8.8.0 JPA server (R4; H2 in memory, so every start is empty, or PostgreSQL
with ``db``: see :mod:`fhir_safetyplan.hapi_database`) listening on 127.0.0.1 only. ``start`` runs it as a detached process and records its pid, port and log file in a state
directory (default ``.safetyplan/``), so ``status`` and ``stop`` work from another process, e.g. a later
``safetyplan server stop``.

Standard library only: the CLI imports this module, and nothing here needs more.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fhir_safetyplan import hapi_database
from fhir_safetyplan.errors import ConfigError, SafetyPlanError
from fhir_safetyplan.outcomes import Kind

log = logging.getLogger(__name__)

#: Where ``start`` keeps the pid/port/log of the running server unless told otherwise.
DEFAULT_STATE_DIR = Path(".safetyplan")
#: Seconds ``start`` waits for ``/fhir/metadata``; a cold start takes about 25 s on 2 cores.
DEFAULT_START_TIMEOUT = 180.0
#: Seconds a Maven build may take; the first one downloads about 350 MB of dependencies.
BUILD_TIMEOUT = 1800.0
#: JVM options for a fast start and a bounded heap (the command line takes ``SAFETYPLAN_HAPI_JAVA_OPTS`` instead).
DEFAULT_JAVA_OPTS = ("-Xmx1g", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC")
JAR_NAME = "safetyplan-hapi.jar"
STATE_FILE = "hapi-server.json"
LOG_FILE = "hapi-server.log"
HOST = "127.0.0.1"
#: Minimum Java feature version of HAPI FHIR 8.
MIN_JAVA = 17


@dataclass(frozen=True)
class Toolchain:
    """Where the launcher's Maven project is and which Java runs it: explicit values, never the environment.

    The command line fills one from ``SAFETYPLAN_HAPI_DIR``, ``JAVA_HOME``, ``SAFETYPLAN_HAPI_JAVA_OPTS`` and
    ``XDG_CACHE_HOME`` (:func:`fhir_safetyplan.settings.hapi_toolchain`); the defaults are a clone's ``hapi/``
    (or the packaged sources in ``~/.cache``), ``java`` on PATH and :data:`DEFAULT_JAVA_OPTS`.
    """

    #: the launcher's Maven project; None: a clone's ``hapi/``, or a wheel's sources copied into ``cache``
    project: Path | None = None
    #: a JDK whose ``bin/java`` is used when it exists; None: ``java`` on PATH
    java_home: Path | None = None
    java_opts: tuple[str, ...] = DEFAULT_JAVA_OPTS
    #: the per-user cache a wheel's launcher sources are copied into and built in (None: ``~/.cache/…``)
    cache: Path | None = None


#: no configuration: the defaults above
DEFAULT_TOOLCHAIN = Toolchain()


class ServerStartError(SafetyPlanError):
    """The server process died or did not answer ``/fhir/metadata`` in time; the message quotes its log."""

    kind = Kind.UNAVAILABLE


@dataclass(frozen=True)
class ServerInfo:
    """A server started by :func:`start`: where it listens and where its log is."""

    pid: int
    port: int
    base_url: str
    log_file: Path
    started_at: float
    #: where it keeps its data: ``h2 in memory`` or the PostgreSQL URL without its password
    database: str = hapi_database.IN_MEMORY

    def to_json(self) -> dict[str, Any]:
        """JSON-shaped form, as kept in the state file."""
        data = asdict(self)
        data["log_file"] = str(self.log_file)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ServerInfo:
        """Inverse of :meth:`to_json`; raises KeyError/TypeError/ValueError on a malformed record."""
        return cls(
            pid=int(data["pid"]),
            port=int(data["port"]),
            base_url=str(data["base_url"]),
            log_file=Path(data["log_file"]),
            started_at=float(data["started_at"]),
            database=str(data.get("database", hapi_database.IN_MEMORY)),
        )


# --------------------------------------------------------------------------------------------- locating


def hapi_dir(toolchain: Toolchain = DEFAULT_TOOLCHAIN) -> Path:
    """The Maven project of the launcher: ``toolchain.project``, a clone's ``hapi/``, or (installed from a
    wheel) its packaged sources copied into the per-user cache (see :mod:`fhir_safetyplan.bundled`)."""
    from fhir_safetyplan import bundled

    path = toolchain.project or bundled.hapi_project(toolchain.cache)
    if path is None or not (path / "pom.xml").is_file():
        missing = path / "pom.xml" if path is not None else "the packaged launcher sources"
        raise ConfigError(
            f"The HAPI FHIR launcher sources were not found ({missing} is missing). "
            "Reinstall fhir-safetyplan from a complete wheel or a clone, or set SAFETYPLAN_HAPI_DIR to a "
            "hapi/ directory, or use a server you run yourself (--server URL)."
        )
    return path


def jar_path(project: Path | None = None, toolchain: Toolchain = DEFAULT_TOOLCHAIN) -> Path:
    """Where ``mvn package`` puts the runnable jar (of ``project``, else of the toolchain's project)."""
    return (project or hapi_dir(toolchain)) / "target" / JAR_NAME


def _tool(name: str, why: str) -> str:
    found = shutil.which(name)
    if not found:
        raise ConfigError(
            f"'{name}' was not found on PATH; it is needed {why}. Install a JDK {MIN_JAVA}+ and Maven 3.8+ "
            "(Debian/Ubuntu: apt-get install openjdk-17-jdk-headless maven), or point the tests at a running "
            "server with SAFETYPLAN_HAPI_URL."
        )
    return found


def java_executable(toolchain: Toolchain = DEFAULT_TOOLCHAIN) -> str:
    """Path of ``java`` (``toolchain.java_home/bin/java`` first), checked to be version 17 or newer."""
    java_home = toolchain.java_home
    candidate = java_home / "bin" / "java" if java_home else None
    java = (
        str(candidate) if candidate and candidate.is_file() else _tool("java", "to run the HAPI FHIR server")
    )
    version = _java_feature_version(java)
    if version is not None and version < MIN_JAVA:
        raise ConfigError(
            f"{java} is Java {version}; HAPI FHIR 8 needs Java {MIN_JAVA} or newer. "
            "Set JAVA_HOME to a newer JDK."
        )
    return java


def _java_feature_version(java: str) -> int | None:
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    # e.g. 'openjdk version "17.0.15" 2025-04-15' or 'java version "1.8.0_392"'
    for line in out.stderr.splitlines():
        if "version" in line and '"' in line:
            number = line.split('"')[1]
            parts = number.split(".")
            try:
                return int(parts[1]) if parts[0] == "1" and len(parts) > 1 else int(parts[0])
            except ValueError:
                return None
    return None


def check_tools(need_maven: bool = True, toolchain: Toolchain = DEFAULT_TOOLCHAIN) -> None:
    """Raise :class:`ConfigError` unless Java 17+ (and, if needed, Maven) can be run."""
    java_executable(toolchain)
    if need_maven:
        _tool("mvn", "once, to build the HAPI FHIR server")


# --------------------------------------------------------------------------------------------- build


def _newest_source_mtime(project: Path) -> float:
    newest = (project / "pom.xml").stat().st_mtime
    src = project / "src"
    if src.is_dir():
        for path in src.rglob("*"):
            if path.is_file():
                newest = max(newest, path.stat().st_mtime)
    return newest


def needs_build(project: Path | None = None, toolchain: Toolchain = DEFAULT_TOOLCHAIN) -> bool:
    """True when the jar is missing or older than ``pom.xml`` or anything under ``src/``."""
    project = project or hapi_dir(toolchain)
    jar = jar_path(project)
    return not jar.is_file() or jar.stat().st_mtime < _newest_source_mtime(project)


@contextlib.contextmanager
def _build_lock(project: Path) -> Iterator[None]:
    """Serialise builds (two test sessions starting at once must not run Maven on one tree together)."""
    target = project / "target"
    target.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks in the stdlib; builds there are not concurrent
        yield
        return
    with open(target / ".build.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build(force: bool = False, project: Path | None = None, toolchain: Toolchain = DEFAULT_TOOLCHAIN) -> Path:
    """Build the launcher jar with Maven if it is missing or older than its sources; return its path.

    Raises :class:`ConfigError` when Java or Maven is missing or the build fails (the message names the
    build log and quotes its last lines).
    """
    project = project or hapi_dir(toolchain)
    jar = jar_path(project)
    if not force and not needs_build(project):
        return jar
    mvn = _tool("mvn", "once, to build the HAPI FHIR server")
    java_executable(toolchain)
    with _build_lock(project):
        if not force and not needs_build(project):  # another process built it while we waited
            return jar
        build_log = project / "target" / "build.log"
        cmd = [mvn, "-B", "-q", "-f", str(project / "pom.xml"), "package", "-DskipTests"]
        log.info("building the HAPI FHIR server with Maven (the first build downloads ~350 MB)")
        started = time.monotonic()
        try:
            with open(build_log, "w") as out:
                result = subprocess.run(
                    cmd,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    timeout=BUILD_TIMEOUT,
                    check=False,
                )
        except subprocess.TimeoutExpired:
            raise ConfigError(
                f"Building the HAPI FHIR server took more than {BUILD_TIMEOUT:.0f} s and was stopped; "
                f"see {build_log}.\n{_tail(build_log)}"
            ) from None
        if result.returncode != 0 or not jar.is_file():
            raise ConfigError(
                f"Building the HAPI FHIR server failed (mvn exit code {result.returncode}); "
                f"see {build_log}. Last lines:\n{_tail(build_log)}"
            )
        log.info("built %s in %.0f s", jar.name, time.monotonic() - started)
    return jar


# --------------------------------------------------------------------------------------------- processes


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As Tomcat does: a port in TIME_WAIT after a killed server is free to bind again.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return True
    return False


def _reap(pid: int) -> None:
    """Collect the exit status if ``pid`` is our own child, so it does not linger as a zombie."""
    if os.name == "nt":
        return
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _alive(pid: int) -> bool:
    _reap(pid)
    stat = Path(f"/proc/{pid}/stat")
    if stat.exists():
        try:
            # field 3 is the state; Z (zombie) and X (dead) are not running
            state = stat.read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return False
        return state not in ("Z", "X")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def _proc_start(pid: int) -> str | None:
    """Start time of ``pid`` in clock ticks since boot (Linux), to tell our server from a recycled pid."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _same_process(info: ServerInfo, recorded_start: str | None) -> bool:
    """True if ``info.pid`` is alive and (where we can tell) still the process we started."""
    if not _alive(info.pid):
        return False
    return recorded_start is None or _proc_start(info.pid) in (None, recorded_start)


def _tail(path: Path, lines: int = 25) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 64 * 1024))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return "(no log)"
    # Java stack frames say little to a user; keep the messages.
    kept = [line for line in text.splitlines() if not line.lstrip().startswith("at ")]
    return "\n".join(kept[-lines:])


def metadata_ok(base_url: str, timeout: float = 5.0) -> bool:
    """True when ``{base_url}/metadata`` answers 200 (the server is ready for requests)."""
    url = base_url.rstrip("/") + "/metadata"
    if not url.startswith(("http://", "https://")):
        return False
    request = urllib.request.Request(url, headers={"Accept": "application/fhir+json"})  # noqa: S310 (http only)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (checked above)
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def wait_until_ready(
    base_url: str, timeout: float, pid: int | None = None, log_file: Path | None = None
) -> None:
    """Poll ``/metadata`` until it answers.

    Raises :class:`ServerStartError` if process ``pid`` dies first or ``timeout`` seconds pass.
    """
    deadline = time.monotonic() + timeout
    while True:
        if metadata_ok(base_url):
            return
        if pid is not None and not _alive(pid):
            detail = f" Last lines of {log_file}:\n{_tail(log_file)}" if log_file else ""
            raise ServerStartError(f"The HAPI FHIR server exited during startup.{detail}")
        if time.monotonic() >= deadline:
            detail = f" Last lines of {log_file}:\n{_tail(log_file)}" if log_file else ""
            raise ServerStartError(
                f"The HAPI FHIR server at {base_url} did not answer /metadata within {timeout:.0f} s.{detail}"
            )
        time.sleep(0.5)


def _server_command(jar: Path, port: int, server_args: Sequence[str], toolchain: Toolchain) -> list[str]:
    """The command line of the server process (a seam for tests that run a stand-in server)."""
    return [
        java_executable(toolchain),
        *toolchain.java_opts,
        "-jar",
        str(jar),
        f"--server.port={port}",
        f"--server.address={HOST}",
        *server_args,
    ]


def _state_path(state_dir: Path) -> Path:
    return Path(state_dir) / STATE_FILE


def _read_state(state_dir: Path) -> tuple[ServerInfo, str | None] | None:
    path = _state_path(state_dir)
    try:
        data = json.loads(path.read_text())
        recorded_start = data.get("proc_start")
        return ServerInfo.from_json(data), None if recorded_start is None else str(recorded_start)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        log.warning("ignoring unreadable server state file %s", path)
        return None


def _clear_state(state_dir: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        _state_path(state_dir).unlink()


def status(state_dir: Path = DEFAULT_STATE_DIR) -> ServerInfo | None:
    """The server recorded in ``state_dir`` if its process is still running, else None (stale records go)."""
    state = _read_state(state_dir)
    if state is None:
        return None
    info, recorded_start = state
    if not _same_process(info, recorded_start):
        _clear_state(state_dir)
        return None
    return info


def start(
    port: int | None = None,
    state_dir: Path = DEFAULT_STATE_DIR,
    wait: bool = True,
    timeout: float = DEFAULT_START_TIMEOUT,
    server_args: Sequence[str] = (),
    toolchain: Toolchain = DEFAULT_TOOLCHAIN,
    db: str | None = None,
    db_password: str | None = None,
) -> ServerInfo:
    """Start the server (building it first if needed) as a detached process on 127.0.0.1.

    ``port`` None picks a free port. ``server_args`` go to the launcher, e.g.
    ``["--safetyplan.validate-requests=true"]`` (see hapi/README.md); ``toolchain`` says where the launcher
    and Java are. ``db`` is a ``postgresql://`` URL of an existing database to keep the data in (None: H2 in
    memory); its password (``db_password``, else the one in the URL) goes to the JVM in a private file that
    the launcher reads once and deletes, never on its command line.
    With ``wait`` the call returns once ``/fhir/metadata`` answers. If a server from ``state_dir`` is already
    running it is returned as is. Raises :class:`ConfigError` (tools missing, build failed, port taken, a bad
    database URL or a database that refuses us) or :class:`ServerStartError`.
    """
    state_dir = Path(state_dir)
    database = hapi_database.parse(db, db_password) if db is not None else None
    wanted = database.display if database else hapi_database.IN_MEMORY
    running = status(state_dir)
    if running is not None:
        if (port is not None and port != running.port) or wanted != running.database:
            raise ConfigError(
                f"A HAPI FHIR server from {state_dir} is already running on port {running.port} "
                f"({running.database}); stop it first (safetyplan server stop --state-dir {state_dir})."
            )
        if wait:
            wait_until_ready(running.base_url, timeout, running.pid, running.log_file)
        return running
    jar = build(toolchain=toolchain)
    if port is None:
        port = free_port()
    elif _port_in_use(port):
        raise ConfigError(f"Port {port} on {HOST} is already in use; choose another with --port or omit it.")
    state_dir.mkdir(parents=True, exist_ok=True)
    secret = None
    if database is not None:
        database.check_reachable()
        secret = database.write_password(state_dir)
        server_args = [*server_args, *database.launcher_args(secret)]
    log_file = (state_dir / LOG_FILE).resolve()
    try:
        pid = _spawn(_server_command(jar, port, server_args, toolchain), log_file, state_dir)
    except BaseException:
        _remove(secret)
        raise
    info = ServerInfo(pid, port, f"http://{HOST}:{port}/fhir", log_file, time.time(), wanted)
    record = dict(info.to_json(), proc_start=_proc_start(pid))
    _state_path(state_dir).write_text(json.dumps(record, indent=2) + "\n")
    log.info("started HAPI FHIR server pid %d on port %d", info.pid, port)
    if wait:
        try:
            wait_until_ready(info.base_url, timeout, info.pid, log_file)
        except ServerStartError:
            stop(state_dir)
            _remove(secret)
            refusal = hapi_database.refusal_in_log(_tail(log_file, lines=200))
            if refusal is None:
                raise
            raise ConfigError(
                f"The HAPI FHIR server could not open its database: {refusal.removeprefix('safetyplan-hapi: ')}. "
                "Check the user, password and database name in --db (the database must exist: createdb NAME)."
            ) from None
        _remove(secret)  # read and deleted by the launcher by now; this is in case it could not delete it
        log.info("HAPI FHIR server ready after %.1f s", time.time() - info.started_at)
    return info


def _remove(path: Path | None) -> None:
    if path is not None:
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)


def _spawn(cmd: list[str], log_file: Path, cwd: Path) -> int:
    """Start ``cmd`` detached from the caller's session, output to ``log_file``; its pid."""
    detach: dict[str, Any]
    if os.name == "nt":
        detach = {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.DETACHED_PROCESS}  # type: ignore[attr-defined]
    else:
        detach = {"start_new_session": True}  # Ctrl-C in the caller's terminal must not kill it
    with open(log_file, "wb") as out:
        process = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=cwd, **detach
        )
    return process.pid


def stop(state_dir: Path = DEFAULT_STATE_DIR, timeout: float = 30.0) -> bool:
    """Stop the server recorded in ``state_dir``: SIGTERM, then SIGKILL after ``timeout`` s.

    Returns True if a running server was stopped, False if none was running.
    """
    state_dir = Path(state_dir)
    info = status(state_dir)
    if info is None:
        return False
    _signal(info.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(info.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _alive(info.pid):
        log.warning("HAPI FHIR server pid %d ignored SIGTERM for %.0f s; killing it", info.pid, timeout)
        _signal(info.pid, getattr(signal, "SIGKILL", signal.SIGTERM))
        for _ in range(50):
            if not _alive(info.pid):
                break
            time.sleep(0.1)
    _clear_state(state_dir)
    return True


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
