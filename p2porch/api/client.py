"""Client for the control API (shell); the CLI's only way to reach a daemon.

``unix:///path.sock`` (or a bare path) talks to a local daemon's root-only socket, with the standard
library's HTTP client (:mod:`p2porch.api.unix_http`: a command's start-up does not pay httpx's imports);
``tcp://HOST:PORT`` talks HTTPS to a daemon's remote API with httpx, verifying its certificate against
``ca_pem`` (the cluster CA from ``p2porch cluster ca``; the system's trust store when none is given) and
sending ``token`` as a bearer token. Never prints or logs the token."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from .. import API_VERSION
from ..errors import ConfigError, DaemonError, DaemonUnreachable, P2POrchError, error_from_dict
from .unix_http import UnixHttp


def versioned(path: str) -> str:
    """``/v1`` + ``path``, percent-encoded: a name typed with a space, ``?``, ``#`` or ``%`` is that name
    (``service rm 'web?x'`` removed ``web``: the rest was taken for a query string)."""
    return quote(f"/{API_VERSION}{path}", safe="/")


#: Connecting to the unix socket failed this way: nothing listens there, nothing was sent. Not a
#: PermissionError: a daemon may well listen on its root-only socket (``_denied``).
NOT_LISTENING = (FileNotFoundError, ConnectionRefusedError)


def socket_path_from_host(host: str) -> str:
    """``unix:///run/x.sock`` or ``/run/x.sock`` -> ``/run/x.sock``; anything else is a ConfigError."""
    if host.startswith("unix://"):
        host = host[len("unix://") :]
    if not host.startswith("/"):
        hosts_entry = "://" not in host and host.count(":") == 1  # Docker's `service create --host NAME:IP`
        hint = " (an /etc/hosts entry of a service's tasks is --add-host HOST:IP)" if hosts_entry else ""
        raise ConfigError(
            f"--host {host!r}: use unix:///absolute/path.sock or tcp://HOST:PORT{hint}", field="--host"
        )
    return host


def _port_digits(text: str) -> bool:
    """``text`` is a port's ASCII digits (``str.isdigit`` alone admits ``²``, which ``int`` refuses)."""
    return text.isascii() and text.isdigit() and len(text) <= 5


def tcp_address(host: str) -> str | None:
    """``tcp://HOST:PORT`` -> ``HOST:PORT``; None for a unix socket; a ConfigError if malformed."""
    if not host.startswith("tcp://"):
        return None
    addr = host[len("tcp://") :].rstrip("/")
    name, sep, port = addr.rpartition(":")
    if not sep or not name or not _port_digits(port) or not 0 < int(port) < 65536:
        raise ConfigError(f"--host {host!r}: expected tcp://HOST:PORT", field="--host")
    return addr


class ApiClient:
    """Synchronous JSON client for one daemon: its unix socket, or its TLS API with a token."""

    def __init__(
        self,
        host: str,
        *,
        timeout_s: float = 30.0,
        token: str | None = None,
        ca_pem: str | None = None,
        stale: bool = False,
    ) -> None:
        addr = tcp_address(host)
        self.stale = stale  # every GET asks for the daemon's own copy (``--stale``; docs/raft.md "Reads")
        self._unix: UnixHttp | None = None
        self._client: Any = None  # httpx.Client, for a tcp:// host only
        if addr is None:
            self.socket_path = socket_path_from_host(host)
            self.where = f"unix://{self.socket_path}"
            self._unix = UnixHttp(self.socket_path, timeout_s)
            return
        if not token:
            raise ConfigError(
                f"{host} needs an access token: --token-file FILE, $P2PORCH_API_TOKEN or a context",
                field="--token-file",
            )
        import ssl

        import httpx

        self.socket_path = ""
        self.where = f"https://{addr}"
        context = ssl.create_default_context(cadata=ca_pem) if ca_pem else ssl.create_default_context()
        self._client = httpx.Client(
            base_url=self.where,
            verify=context,
            timeout=timeout_s,
            headers={"authorization": f"Bearer {token}"},
        )

    def close(self) -> None:
        if self._unix is not None:
            self._unix.close()
        if self._client is not None:
            self._client.close()

    def get(self, path: str, **params: Any) -> Any:
        """GET ``path``; ``stale="true"`` (or a client made with ``stale``) reads the daemon's own copy
        at once instead of waiting for its read barrier."""
        if self.stale:
            params.setdefault("stale", "true")
        return self._request("GET", path, params={k: v for k, v in params.items() if v is not None})

    def text(self, path: str) -> str:
        """GET a route outside /v1 that answers plain text (``/metrics``)."""
        status, raw = self._send("GET", path)
        if status >= 400:
            raise _error_from(_decoded(raw))
        return raw.decode("utf-8", errors="replace")

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self._request("POST", path, json=body or {})

    def post_read(self, path: str, body: dict[str, Any] | None = None) -> Any:
        """POST a read sent as POST (a stack's dry-run plan): ``stale`` as for :meth:`get`."""
        params = {"stale": "true"} if self.stale else None
        return self._request("POST", path, params=params, json=body or {})

    def delete(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self._request("DELETE", path, json=body or {})

    def stream(self, path: str, **params: Any) -> Iterator[Any]:
        """GET a streaming (JSON lines) endpoint; yields one decoded item per line as it arrives."""
        target = versioned(path)
        query = {k: v for k, v in params.items() if v is not None}
        if self._unix is None:
            yield from self._stream_tcp(target, query)
            return
        try:
            with self._unix.stream(target, query) as response:
                if response.status >= 400:
                    raise _error_from(_decoded(response.read()))
                for line in response:
                    if line.strip():
                        yield json.loads(line)
        except NOT_LISTENING as exc:
            raise self._unreachable(exc) from exc
        except PermissionError as exc:
            raise self._denied(exc) from exc
        except (http.client.HTTPException, OSError) as exc:  # e.g. the daemon stopped mid-stream
            raise DaemonError(f"the p2porch daemon at {self.where} broke off the stream ({exc!r})") from exc

    def _stream_tcp(self, target: str, query: dict[str, Any]) -> Iterator[Any]:
        import httpx

        try:
            with self._client.stream("GET", target, timeout=None, params=query) as response:
                if response.status_code >= 400:
                    response.read()
                    raise _error_from(_decoded(response.content))
                for line in response.iter_lines():
                    if line.strip():
                        yield json.loads(line)
        except (httpx.ConnectError, FileNotFoundError, ConnectionRefusedError) as exc:
            raise self._unreachable(exc) from exc
        except httpx.TransportError as exc:  # e.g. the daemon stopped mid-stream
            raise DaemonError(f"the p2porch daemon at {self.where} broke off the stream ({exc!r})") from exc

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        status, raw = self._send(method, versioned(path), kwargs.get("params"), kwargs.get("json"))
        data = _decoded(raw)
        if status >= 400:
            raise _error_from(data if isinstance(data, dict) else {"message": str(data)})
        return data

    def _send(
        self, method: str, target: str, params: dict[str, Any] | None = None, body: Any = None
    ) -> tuple[int, bytes]:
        """One request: (HTTP status, body bytes); errors of the transport as DaemonErrors."""
        if self._unix is not None:
            try:
                return self._unix.request(method, target, params=params, body=body)
            except NOT_LISTENING as exc:
                raise self._unreachable(exc) from exc
            except PermissionError as exc:
                raise self._denied(exc) from exc
            except TimeoutError as exc:
                raise DaemonError(f"the p2porch daemon at {self.where} did not answer in time") from exc
            except (http.client.HTTPException, OSError) as exc:
                raise DaemonError(
                    f"the p2porch daemon at {self.where} broke off the answer ({exc!r})"
                ) from exc
        import httpx

        try:
            response = self._client.request(method, target, params=params, json=body)
        except (httpx.ConnectError, FileNotFoundError, ConnectionRefusedError) as exc:
            raise self._unreachable(exc) from exc
        except httpx.TimeoutException as exc:
            raise DaemonError(f"the p2porch daemon at {self.where} did not answer in time") from exc
        except httpx.TransportError as exc:  # the connection dropped midway, as OSError on the socket
            raise DaemonError(f"the p2porch daemon at {self.where} broke off the answer ({exc!r})") from exc
        return response.status_code, response.content

    def _denied(self, exc: Exception) -> DaemonError:
        """Connecting was refused by the socket's file mode (0600, root's): reached, not unreachable."""
        return DaemonError(
            f"no permission to use the p2porch daemon's socket {self.where} ({exc}); it is root-only"
        )

    def _unreachable(self, exc: Exception) -> DaemonError:
        if "CERTIFICATE_VERIFY_FAILED" in str(exc):
            return DaemonError(
                f"the TLS certificate of {self.where} does not verify against the CA in use ({exc}). The "
                "cluster CA changes with `cluster rotate-keys` and `node rm`: fetch the current one with "
                "`p2porch cluster ca` on a member and update your context (--tls-ca / context update)"
            )
        if self.socket_path:
            return DaemonUnreachable(
                f"cannot reach the p2porch daemon at {self.where} ({exc}); is it running? "
                "Start one with `p2porch daemon` or `p2porch init`, or point --host/P2PORCH_HOST at it"
            )
        return DaemonError(f"cannot reach the p2porch daemon at {self.where} ({exc})")


def _decoded(raw: bytes) -> Any:
    """A response body as JSON, or (not JSON) an error body carrying its text."""
    try:
        return json.loads(raw)
    except ValueError:
        return {"error": "P2POrchError", "message": raw.decode("utf-8", errors="replace")}


def _error_from(data: Any) -> P2POrchError:
    """The registered error an API error body stands for (see p2porch.errors.REGISTRY)."""
    return error_from_dict(data if isinstance(data, dict) else {"message": str(data)})
