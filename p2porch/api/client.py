"""Client for the control API over a unix socket (shell); the CLI's only way to reach a daemon."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx

from .. import API_VERSION
from ..errors import ConfigError, DaemonError, P2POrchError, error_from_dict


def socket_path_from_host(host: str) -> str:
    """``unix:///run/x.sock`` or ``/run/x.sock`` -> ``/run/x.sock``; anything else is a ConfigError."""
    if host.startswith("unix://"):
        host = host[len("unix://") :]
    if not host.startswith("/"):
        raise ConfigError(
            f"--host {host!r}: only unix:///absolute/path sockets are supported", field="--host"
        )
    return host


class ApiClient:
    """Synchronous JSON client for one daemon's control socket."""

    def __init__(self, host: str, *, timeout_s: float = 30.0) -> None:
        self.socket_path = socket_path_from_host(host)
        self._client = httpx.Client(
            transport=httpx.HTTPTransport(uds=self.socket_path), base_url="http://p2porch", timeout=timeout_s
        )

    def close(self) -> None:
        self._client.close()

    def get(self, path: str, **params: Any) -> Any:
        return self._request("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self._request("POST", path, json=body or {})

    def delete(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self._request("DELETE", path, json=body or {})

    def stream(self, path: str, **params: Any) -> Iterator[Any]:
        """GET a streaming (JSON lines) endpoint; yields one decoded item per line as it arrives."""
        try:
            with self._client.stream(
                "GET",
                f"/{API_VERSION}{path}",
                timeout=None,
                params={k: v for k, v in params.items() if v is not None},
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    data = response.json()
                    raise _error_from(data if isinstance(data, dict) else {"message": str(data)})
                for line in response.iter_lines():
                    if line.strip():
                        yield json.loads(line)
        except (httpx.ConnectError, FileNotFoundError, ConnectionRefusedError) as exc:
            raise DaemonError(
                f"cannot reach the p2porch daemon at unix://{self.socket_path} ({exc})"
            ) from exc

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._client.request(method, f"/{API_VERSION}{path}", **kwargs)
        except (httpx.ConnectError, FileNotFoundError, ConnectionRefusedError) as exc:
            raise DaemonError(
                f"cannot reach the p2porch daemon at unix://{self.socket_path} ({exc}); is it running? "
                "Start one with `p2porch daemon` or `p2porch init`, or point --host/P2PORCH_HOST at it"
            ) from exc
        except httpx.TimeoutException as exc:
            raise DaemonError(
                f"the p2porch daemon at unix://{self.socket_path} did not answer in time"
            ) from exc
        try:
            data = response.json()
        except ValueError:
            data = {"error": "P2POrchError", "message": response.text}
        if response.status_code >= 400:
            raise _error_from(data if isinstance(data, dict) else {"message": str(data)})
        return data


def _error_from(data: dict[str, Any]) -> P2POrchError:
    """The registered error an API error body stands for (see p2porch.errors.REGISTRY)."""
    return error_from_dict(data)
