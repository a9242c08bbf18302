"""The command line's configuration, read once: each value from argv, else the environment, else a default.

:func:`fhir_safetyplan.cli.main` builds one :class:`Settings` (:func:`for_command`) from the parsed arguments
and the environment before a command runs and hands it over as ``args.settings`` (:func:`settings_of`).
Library functions take these values as arguments and never read the environment; only this module and
:mod:`fhir_safetyplan.service.settings` (the service's own settings, which use the readers below for the
variables both share) do.

Environment (the README's "Configuration" lists them all):

- ``SAFETYPLAN_CANONICAL_BASE`` (``--canonical-base``), ``SAFETYPLAN_OUTBOX`` (``--outbox``),
  ``SAFETYPLAN_PUBLIC_HOSTS`` (added to ``--public-host``);
- ``SAFETYPLAN_CRISIS_CENTRE_NAME`` / ``_PHONE`` for the journal note;
- the credentials of ``--auth`` (``SAFETYPLAN_BEARER_TOKEN[_FILE]``, ... :func:`fhir_safetyplan.client.auth_from_env`);
- for the local HAPI server ``SAFETYPLAN_HAPI_DIR``, ``JAVA_HOME``, ``SAFETYPLAN_HAPI_JAVA_OPTS``,
  ``XDG_CACHE_HOME``;
- ``SAFETYPLAN_DEBUG``: tracebacks of bugs instead of a one-line report.

Standard library only at import time: the CLI imports this module for every command.
"""

from __future__ import annotations

import argparse
import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from fhir_safetyplan import bundled, codes
from fhir_safetyplan.delivery.guard import host_list
from fhir_safetyplan.errors import ConfigError
from fhir_safetyplan.local_hapi import DEFAULT_JAVA_OPTS, Toolchain

if TYPE_CHECKING:
    from requests.auth import AuthBase

    from fhir_safetyplan.client import FhirClient
    from fhir_safetyplan.delivery.store import OutboxSpec
    from fhir_safetyplan.document import CrisisCentre

#: where plans wait when neither --outbox nor SAFETYPLAN_OUTBOX names a place
DEFAULT_OUTBOX = Path(".safetyplan") / "outbox.sqlite"


def crisis_centre(env: Mapping[str, str]) -> CrisisCentre | None:
    """The local crisis centre of ``SAFETYPLAN_CRISIS_CENTRE_NAME`` / ``_PHONE``; None when no name is set."""
    name = env.get("SAFETYPLAN_CRISIS_CENTRE_NAME", "").strip()
    if not name:
        return None
    from fhir_safetyplan.document import CrisisCentre  # pydantic and the content: only when configured

    return CrisisCentre(name, env.get("SAFETYPLAN_CRISIS_CENTRE_PHONE", "").strip() or None)


def public_hosts(env: Mapping[str, str]) -> tuple[str, ...]:
    """The extra public test servers of ``SAFETYPLAN_PUBLIC_HOSTS`` (comma or space separated)."""
    return host_list(env.get("SAFETYPLAN_PUBLIC_HOSTS", ""))


def canonical_base(env: Mapping[str, str], given: str | None = None) -> str:
    """``given`` (``--canonical-base``), else ``SAFETYPLAN_CANONICAL_BASE``, else the default; checked where
    it is used (:func:`fhir_safetyplan.codes.canonical_base`), so a command that needs none never fails on it."""
    return given or env.get("SAFETYPLAN_CANONICAL_BASE") or codes.DEFAULT_CANONICAL_BASE


def hapi_toolchain(env: Mapping[str, str]) -> Toolchain:
    """Where the local HAPI launcher and Java are: ``SAFETYPLAN_HAPI_DIR``, ``JAVA_HOME``,
    ``SAFETYPLAN_HAPI_JAVA_OPTS`` (split as a shell would; set but empty: no options) and ``XDG_CACHE_HOME``.

    Raises :class:`ConfigError` (exit 7) when ``SAFETYPLAN_HAPI_JAVA_OPTS`` cannot be split (an open quote)."""
    opts = env.get("SAFETYPLAN_HAPI_JAVA_OPTS")
    try:
        java_opts = tuple(shlex.split(opts)) if opts is not None else DEFAULT_JAVA_OPTS
    except ValueError as exc:  # the value is shown: JVM options are configuration, not secrets
        raise ConfigError(f"SAFETYPLAN_HAPI_JAVA_OPTS cannot be split into options ({exc}): {opts}") from None
    return Toolchain(
        project=Path(env["SAFETYPLAN_HAPI_DIR"]) if env.get("SAFETYPLAN_HAPI_DIR") else None,
        java_home=Path(env["JAVA_HOME"]) if env.get("JAVA_HOME") else None,
        java_opts=java_opts,
        cache=bundled.cache_dir(env),
    )


@dataclass(frozen=True)
class Settings:
    """Everything a command is configured with beyond its own arguments (argv > environment > default)."""

    #: the forms' canonical base (not yet checked: see :func:`canonical_base`)
    canonical_base: str = codes.DEFAULT_CANONICAL_BASE
    #: the outbox as given (``--outbox``, else ``SAFETYPLAN_OUTBOX``): a file path or a PostgreSQL URL, read only
    #: by :meth:`outbox_spec` when a command uses it (so a wrong one never stops a command that does not)
    outbox: str | Path = DEFAULT_OUTBOX
    #: public test servers beyond hapi.fhir.org: ``--public-host`` and ``SAFETYPLAN_PUBLIC_HOSTS``
    public_hosts: tuple[str, ...] = ()
    crisis_centre: CrisisCentre | None = None
    #: show tracebacks of bugs (``SAFETYPLAN_DEBUG``)
    debug: bool = False
    #: the environment, for what is read only when a command needs it: the credentials of ``--auth`` and the
    #: local HAPI toolchain (so a wrong value there never stops another command); never printed
    environment: Mapping[str, str] = field(default_factory=dict, repr=False)

    def toolchain(self) -> Toolchain:
        """The local HAPI server's launcher and Java (:func:`hapi_toolchain`)."""
        return hapi_toolchain(self.environment)

    def outbox_spec(self) -> OutboxSpec:
        """What :attr:`outbox` names (:func:`fhir_safetyplan.delivery.store.outbox_spec`; ConfigError, exit 7,
        for a URL scheme that is not PostgreSQL's)."""
        from fhir_safetyplan.delivery.store import outbox_spec

        return outbox_spec(self.outbox)

    def auth(self, kind: str) -> AuthBase | None:
        """The credentials of ``--auth KIND`` (ConfigError, exit 7, naming what is missing)."""
        from fhir_safetyplan.client import auth_from_env

        return auth_from_env(kind, self.environment)

    def client(self, server_url: str, auth: str | AuthBase | None = "none") -> FhirClient:
        """A client for ``server_url`` from the one factory (:class:`fhir_safetyplan.client.ClientFactory`),
        with ``auth`` an auth object or a kind (``--auth``) whose secrets come from :attr:`environment`."""
        from fhir_safetyplan.client import ClientFactory

        return ClientFactory(auth=self.auth(auth) if isinstance(auth, str) else auth)(server_url)


def from_environment(args: argparse.Namespace, env: Mapping[str, str]) -> Settings:
    """The settings of the command ``args`` (a command without an option uses the environment's value)."""
    given = getattr(args, "outbox", None)
    configured_outbox = env.get("SAFETYPLAN_OUTBOX", "").strip()
    return Settings(
        canonical_base=canonical_base(env, getattr(args, "canonical_base", None)),
        outbox=given if given is not None else (configured_outbox or DEFAULT_OUTBOX),
        public_hosts=(*(getattr(args, "public_host", None) or ()), *public_hosts(env)),
        crisis_centre=crisis_centre(env),
        debug=bool(env.get("SAFETYPLAN_DEBUG")),
        environment=env,
    )


def for_command(args: argparse.Namespace) -> Settings:
    """The settings of the command ``args`` from the process environment (the one place it is read)."""
    return from_environment(args, os.environ)


def settings_of(args: argparse.Namespace) -> Settings:
    """The settings :func:`fhir_safetyplan.cli.main` attached to ``args`` (built now if it did not run)."""
    found = getattr(args, "settings", None)
    return found if isinstance(found, Settings) else for_command(args)
