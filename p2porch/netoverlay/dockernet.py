"""The node's Docker bridge network for its lease (blocking shell, p2porch's Engine API client).

Owns exactly one network (``spec.name``, labelled ``p2porch.subnet``): creates it with the lease's
subnet, gateway .1, a fixed bridge name, masquerade off and the overlay MTU; recreates it when it
differs (a new lease); removes it on leave. It never touches other networks or containers except
force-disconnecting containers still attached when its own network must go. Call it only from a worker
thread in trio code.
"""

from __future__ import annotations

from typing import Any

from ..engine.client import EngineClient, EngineError, NotFound
from ..errors import OverlayError
from .plan import BridgeNetworkSpec


class DockerNetwork:
    """One Docker engine's p2porch bridge network (blocking)."""

    def __init__(self, docker_url: str | None = None, *, timeout_s: float = 60.0) -> None:
        self.docker_url = docker_url
        self.timeout_s = timeout_s
        self._engine: EngineClient | None = None

    def _client(self) -> EngineClient:
        if self._engine is None:
            try:
                self._engine = EngineClient.connect(self.docker_url, timeout_s=self.timeout_s)
            except EngineError as exc:
                raise OverlayError(f"cannot reach the Docker engine: {exc}") from exc
        return self._engine

    def ensure(self, spec: BridgeNetworkSpec) -> str:
        """Create or fix the network; returns "created", "recreated" or "unchanged"."""
        client = self._client()
        try:
            existing = _find(client, spec.name)
            if existing is not None and _matches(existing, spec):
                return "unchanged"
            if existing is not None:
                _remove(client, existing)
            client.create_network(
                {
                    "Name": spec.name,
                    "Driver": "bridge",
                    "CheckDuplicate": True,
                    "IPAM": {
                        "Driver": "default",
                        "Config": [{"Subnet": spec.subnet, "Gateway": spec.gateway}],
                    },
                    "Options": dict(spec.options),
                    "Labels": dict(spec.labels),
                }
            )
            return "recreated" if existing is not None else "created"
        except EngineError as exc:
            raise OverlayError(f"docker network {spec.name}: {exc}") from exc

    def inspect(self, name: str) -> dict[str, Any] | None:
        """The network's attributes (docker network inspect), or None."""
        client = self._client()
        try:
            return _find(client, name)
        except EngineError as exc:
            raise OverlayError(f"docker network {name}: {exc}") from exc

    def remove(self, name: str) -> bool:
        """Remove the network (force-disconnecting attached containers); True if it existed."""
        client = self._client()
        try:
            found = _find(client, name)
            if found is None:
                return False
            _remove(client, found)
            return True
        except EngineError as exc:
            raise OverlayError(f"docker network rm {name}: {exc}") from exc


def _find(client: EngineClient, name: str) -> dict[str, Any] | None:
    """The full inspect document of the network named exactly ``name`` (the name filter also matches
    names that contain it), or None."""
    for network in client.networks({"name": [name]}):
        if network.get("Name") == name:
            try:
                return client.inspect_network(str(network["Id"]))
            except NotFound:
                return None
    return None


def _remove(client: EngineClient, network: dict[str, Any]) -> None:
    network_id = str(network["Id"])
    for container_id in network.get("Containers") or {}:
        try:
            client.disconnect_network(network_id, container_id, force=True)
        except NotFound:
            pass
    client.remove_network(network_id)


def _matches(attrs: dict[str, Any], spec: BridgeNetworkSpec) -> bool:
    configs = ((attrs.get("IPAM") or {}).get("Config")) or []
    pools = {(c.get("Subnet"), c.get("Gateway")) for c in configs}
    options = attrs.get("Options") or {}
    return (
        attrs.get("Driver") == "bridge"
        and pools == {(spec.subnet, spec.gateway)}
        and all(options.get(k) == v for k, v in spec.options.items())
    )
