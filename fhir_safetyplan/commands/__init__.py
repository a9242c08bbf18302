"""Sub-commands of ``safetyplan``, one module per group.

Each module exposes ``register(subparsers)``, which adds its sub-commands and sets ``handler`` (a function
``(argparse.Namespace) -> int`` returning an exit code from :mod:`fhir_safetyplan.exitcodes`).
``safetyplan --help`` imports every module here, so at import time they import only what it loads anyway
(the standard library, :mod:`~fhir_safetyplan.errors`, :mod:`~fhir_safetyplan.codes`, each other); handlers
import the stages they run (FHIR client, pydantic, fhirpathpy, FastAPI), which keeps ``--help`` fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse

    #: what ``register`` receives: the ``safetyplan`` parser's sub-commands
    Subcommands = argparse._SubParsersAction[argparse.ArgumentParser]
