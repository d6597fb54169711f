"""The node's Docker bridge network for its lease (blocking shell, docker SDK).

Owns exactly one network (``spec.name``, labelled ``p2porch.subnet``): creates it with the lease's
subnet, gateway .1, a fixed bridge name, masquerade off and the overlay MTU; recreates it when it
differs (a new lease); removes it on leave. It never touches other networks or containers except
force-disconnecting containers still attached when its own network must go. Call it only from a worker
thread in trio code.
"""

from __future__ import annotations

from typing import Any

import docker
import docker.errors
import docker.types

from ..errors import OverlayError
from .plan import BridgeNetworkSpec


class DockerNetwork:
    """One Docker engine's p2porch bridge network (blocking)."""

    def __init__(self, docker_url: str | None = None, *, timeout_s: float = 60.0) -> None:
        self.docker_url = docker_url
        self.timeout_s = timeout_s

    def _client(self) -> Any:
        try:
            if self.docker_url:
                return docker.DockerClient(base_url=self.docker_url, timeout=int(self.timeout_s))
            return docker.from_env(timeout=int(self.timeout_s))
        except docker.errors.DockerException as exc:
            raise OverlayError(f"cannot reach the Docker engine: {exc}") from exc

    def ensure(self, spec: BridgeNetworkSpec) -> str:
        """Create or fix the network; returns "created", "recreated" or "unchanged"."""
        client = self._client()
        try:
            existing = _find(client, spec.name)
            if existing is not None and _matches(existing.attrs, spec):
                return "unchanged"
            if existing is not None:
                _remove(existing)
            ipam = docker.types.IPAMConfig(
                pool_configs=[docker.types.IPAMPool(subnet=spec.subnet, gateway=spec.gateway)]
            )
            client.networks.create(
                spec.name,
                driver="bridge",
                ipam=ipam,
                options=spec.options,
                labels=spec.labels,
                check_duplicate=True,
            )
            return "recreated" if existing is not None else "created"
        except docker.errors.DockerException as exc:
            raise OverlayError(f"docker network {spec.name}: {exc}") from exc
        finally:
            client.close()

    def inspect(self, name: str) -> dict[str, Any] | None:
        """The network's attributes (docker network inspect), or None."""
        client = self._client()
        try:
            found = _find(client, name)
            return None if found is None else dict(found.attrs)
        except docker.errors.DockerException as exc:
            raise OverlayError(f"docker network {name}: {exc}") from exc
        finally:
            client.close()

    def remove(self, name: str) -> bool:
        """Remove the network (force-disconnecting attached containers); True if it existed."""
        client = self._client()
        try:
            found = _find(client, name)
            if found is None:
                return False
            _remove(found)
            return True
        except docker.errors.DockerException as exc:
            raise OverlayError(f"docker network rm {name}: {exc}") from exc
        finally:
            client.close()


def _find(client: Any, name: str) -> Any:
    for network in client.networks.list(names=[name]):
        if network.name == name:
            network.reload()
            return network
    return None


def _remove(network: Any) -> None:
    for container_id in network.attrs.get("Containers") or {}:
        try:
            network.disconnect(container_id, force=True)
        except docker.errors.NotFound:
            pass
    network.remove()


def _matches(attrs: dict[str, Any], spec: BridgeNetworkSpec) -> bool:
    configs = ((attrs.get("IPAM") or {}).get("Config")) or []
    pools = {(c.get("Subnet"), c.get("Gateway")) for c in configs}
    options = attrs.get("Options") or {}
    return (
        attrs.get("Driver") == "bridge"
        and pools == {(spec.subnet, spec.gateway)}
        and all(options.get(k) == v for k, v in spec.options.items())
    )
