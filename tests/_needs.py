"""What a test needs from the machine (a browser, Node, an npm engine, Java, PostgreSQL, HAPI): where it is
missing the test is skipped with the reason, except under ``CI``, which installs everything and where no
test may skip: there it fails."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def unavailable(what: str, reason: str) -> NoReturn:
    """``what`` cannot run here, for ``reason``: skipped, or failed when ``CI`` is set."""
    if os.environ.get("CI"):
        pytest.fail(f"CI is set, so {what} must run: {reason}", pytrace=False)
    pytest.skip(reason)
