"""Where the Docker Engine listens: ``DOCKER_HOST`` / ``--docker-host`` parsed into an endpoint (no I/O
until :meth:`Endpoint.connection` is called).

Supported: ``unix:///path`` (the default ``unix:///var/run/docker.sock``) and ``tcp://host[:port]``
(plain HTTP, or TLS when ``DOCKER_TLS_VERIFY`` or ``DOCKER_CERT_PATH`` is set, as the docker CLI does:
the client certificate, key and CA are ``cert.pem``, ``key.pem`` and ``ca.pem`` in ``DOCKER_CERT_PATH``,
default ``~/.docker``; the server certificate is verified only with ``DOCKER_TLS_VERIFY``). ``ssh://``
and ``npipe://`` are refused with an error that names the setting. It never reads the certificates
before a connection is made and never logs them.
"""

from __future__ import annotations

import http.client
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..errors import ConfigError
from ..unixconn import UnixHTTPConnection

DEFAULT_UNIX_SOCKET = "/var/run/docker.sock"
PLAIN_PORT = 2375
TLS_PORT = 2376


@dataclass(frozen=True)
class TlsSettings:
    """Client TLS of a tcp:// engine: certificate directory and whether the server is verified."""

    cert_path: str
    verify: bool

    def context(self) -> ssl.SSLContext:
        ca = os.path.join(self.cert_path, "ca.pem")
        if self.verify:
            context = ssl.create_default_context(cafile=ca if os.path.exists(ca) else None)
        else:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        cert, key = os.path.join(self.cert_path, "cert.pem"), os.path.join(self.cert_path, "key.pem")
        if os.path.exists(cert) and os.path.exists(key):
            context.load_cert_chain(cert, key)
        return context


@dataclass(frozen=True)
class Endpoint:
    """One engine address: a unix socket path, or a TCP host and port (with TLS settings or not)."""

    url: str
    socket_path: str = ""
    host: str = ""
    port: int = 0
    tls: TlsSettings | None = None

    def connection(self, timeout_s: float | None) -> http.client.HTTPConnection:
        """A new, unconnected HTTP connection to the engine (``timeout_s`` per socket operation)."""
        if self.socket_path:
            return UnixHTTPConnection(self.socket_path, timeout_s)
        if self.tls is not None:
            return http.client.HTTPSConnection(
                self.host, self.port, timeout=timeout_s, context=self.tls.context()
            )
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout_s)


def parse_endpoint(base_url: str | None, environ: Mapping[str, str] | None = None) -> Endpoint:
    """The endpoint of ``base_url``, or of ``DOCKER_HOST`` when it is None or empty; ConfigError (field
    ``DOCKER_HOST`` or ``node.docker_host``) for a scheme p2porch cannot use."""
    env = os.environ if environ is None else environ
    field = "node.docker_host" if base_url else "DOCKER_HOST"
    url = (base_url or env.get("DOCKER_HOST", "") or f"unix://{DEFAULT_UNIX_SOCKET}").strip()
    if url.startswith("/"):
        url = f"unix://{url}"
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "unix":
        path = (parts.netloc + parts.path) or DEFAULT_UNIX_SOCKET
        return Endpoint(url=url, socket_path=path)
    if scheme in ("tcp", "http", "https"):
        tls = _tls_from_env(env) if scheme != "http" else None
        if scheme == "https" and tls is None:
            tls = TlsSettings(_cert_path(env), verify=True)
        if not parts.hostname:
            raise ConfigError(f"{field}={url!r}: no host in the address", field=field)
        try:
            port = parts.port or (TLS_PORT if tls is not None else PLAIN_PORT)
        except ValueError as exc:
            raise ConfigError(f"{field}={url!r}: {exc}", field=field) from exc
        return Endpoint(url=url, host=parts.hostname, port=port, tls=tls)
    if scheme == "ssh":
        raise ConfigError(
            f"{field}={url!r}: ssh:// Docker hosts are not supported by p2porch; run the daemon on the "
            "engine's machine (unix:///var/run/docker.sock) or expose the engine on tcp:// with TLS "
            "(DOCKER_TLS_VERIFY=1, DOCKER_CERT_PATH)",
            field=field,
        )
    raise ConfigError(
        f"{field}={url!r}: unsupported scheme {scheme or '(none)'!r} (use unix:// or tcp://)", field=field
    )


def _cert_path(env: Mapping[str, str]) -> str:
    return env.get("DOCKER_CERT_PATH") or os.path.join(os.path.expanduser("~"), ".docker")


def _tls_from_env(env: Mapping[str, str]) -> TlsSettings | None:
    """TLS as the docker CLI and SDK read it: on with DOCKER_TLS_VERIFY (non-empty) or DOCKER_CERT_PATH."""
    verify = bool(env.get("DOCKER_TLS_VERIFY", ""))
    if not verify and not env.get("DOCKER_CERT_PATH"):
        return None
    return TlsSettings(_cert_path(env), verify=verify)
