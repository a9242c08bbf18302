"""Where the service listens: the socket is bound before uvicorn starts, and uvicorn serves on it.

``safetyplan serve`` and ``safetyplan preview`` bind their address themselves (:func:`bind`), so an address that
cannot be had (a port another process holds, a privileged port, a host name this machine does not have) is one
clear configuration error (exit 7) before anything starts, instead of uvicorn's start-up failure after the app
has started (its exit 3 would read as "rejected by the server"). Binding first also leaves no gap between
checking a port and taking it, and ``--port 0`` gets a free port from the system. :func:`run` hands the bound
socket to uvicorn.
"""

from __future__ import annotations

import errno
import logging
import socket
from typing import Any

from fhir_safetyplan.errors import ConfigError

__all__ = ["bind", "run"]

log = logging.getLogger("fhir_safetyplan.service")

_WHY = {
    errno.EADDRINUSE: "the address is already in use (another process listens there); choose another --port",
    errno.EACCES: "not allowed (ports below 1024 need privileges); choose a port from 1024 up",
    errno.EADDRNOTAVAIL: "this machine has no such address; give one of its own addresses as --host",
}


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host``:``port`` (0: a free port); ConfigError naming the address if not."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        # As uvicorn does: a port in TIME_WAIT after a stopped server can be bound again at once.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except (OSError, OverflowError) as exc:
        sock.close()
        why = _WHY.get(getattr(exc, "errno", None) or -1) or getattr(exc, "strerror", None) or str(exc)
        raise ConfigError(f"Cannot listen on {host} port {port}: {why}.") from None
    sock.set_inheritable(True)
    return sock


def run(app: Any, sock: socket.socket, **options: Any) -> bool:
    """Serve ``app`` with uvicorn on ``sock`` until stopped (Ctrl-C, SIGTERM); False when it did not start."""
    import uvicorn

    host, port = sock.getsockname()[:2]
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, **options))
    # uvicorn says where it listens only when it binds the address itself
    log.info("listening on http://%s:%d (Ctrl-C stops it)", f"[{host}]" if ":" in host else host, port)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    return bool(server.started)
