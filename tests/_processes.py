"""Commands the tests run as servers of their own: started, waited for until they answer HTTP, stopped."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests


@contextmanager
def answering(
    command: Sequence[str],
    url: str,
    log: Path,
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``command`` (stdout dropped, stderr to ``log``, no stdin) until ``url`` gives any HTTP answer, then
    yield it; afterwards it is stopped (terminated, killed if it has not ended within 30 s). Fails the test
    with the end of ``log`` when the command ends first or nothing answers within 60 s."""
    with open(log, "w") as err:
        process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL, cwd=cwd, env=env
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(url, timeout=5)
                break
            except requests.ConnectionError:
                if process.poll() is not None:
                    pytest.fail(f"{url} never answered, its server ended: {log.read_text()[-3000:]}")
                if time.monotonic() > deadline:
                    pytest.fail(f"{url} did not answer within 60 s: {log.read_text()[-3000:]}")
                time.sleep(0.3)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)
