"""Sub-commands of ``safetyplan``, one module per group.

Each module exposes ``register(subparsers)``, which adds its sub-commands and sets ``handler`` (a function
``(argparse.Namespace) -> int`` returning an exit code from :mod:`fhir_safetyplan.exitcodes`).
``safetyplan --help`` imports every module here, so at import time they import only what it loads anyway
(the standard library, :mod:`~fhir_safetyplan.errors`, :mod:`~fhir_safetyplan.codes`, each other); handlers
import the stages they run (FHIR client, pydantic, fhirpathpy, FastAPI), which keeps ``--help`` fast.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    #: what ``register`` receives: the ``safetyplan`` parser's sub-commands
    Subcommands = argparse._SubParsersAction[argparse.ArgumentParser]

#: the lease of a claim on an outbox entry as the options' help states it: the default of
#: :data:`fhir_safetyplan.delivery.store.LEASE_SECONDS`, not imported here (that would load sqlite3 for
#: ``--help``); a test keeps the two equal
LEASE_HELP = "300"


def seconds(text: str) -> float:
    """An option's value in seconds: a positive, finite number (else a usage error, exit 2)."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"give a positive number of seconds, not {text!r}")
    return value
