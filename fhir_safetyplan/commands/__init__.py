"""Sub-commands of ``safetyplan``, one module per group.

Each module exposes ``register(subparsers)``, which adds its sub-commands and sets ``handler`` (a function
``(argparse.Namespace) -> int`` returning an exit code from :mod:`fhir_safetyplan.exitcodes`).
Modules here import only the standard library at import time, so that ``safetyplan --help`` stays fast;
handlers import the heavy stages when they run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse

    #: what ``register`` receives: the ``safetyplan`` parser's sub-commands
    Subcommands = argparse._SubParsersAction[argparse.ArgumentParser]
