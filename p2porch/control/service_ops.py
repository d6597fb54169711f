"""Service lifecycle operations behind the API: create, list, inspect, ps, update, scale, remove.

Owns validating a requested spec (nothing partial is ever written: a spec is validated whole, then
committed in one command) and presenting services and tasks to users. Placement is the leader's
scheduling loop's job; this module only writes desired state.
"""

from __future__ import annotations

import math
import secrets
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import trio

from ..clock import SYSTEM_CLOCK, Clock
from ..errors import ConfigError, ConflictError, NotFoundError, P2POrchError
from ..leader.scheduling import keep_rebalance_request, plain_spec, service_spec
from ..membership.join_checks import (
    check_ingress_ports_free,
    check_published_ports,
    config_reserved_ports,
    ingress_ports_in_use,
)
from ..raft import commands as C
from ..raft.state import ClusterState, ServiceRecord, TaskRecord
from ..scheduler import ServiceSpec
from .secret_ops import file_ref_changes, resolve_file_refs

if TYPE_CHECKING:
    from ..membership.manager import ClusterManager
    from .logs import LogOps

SERVICE_ID_BYTES = 8


def validate_spec(data: Any) -> ServiceSpec:
    if not isinstance(data, dict):
        raise ConfigError("the service spec must be a JSON object", field="spec")
    return ServiceSpec.from_dict(data)


def expected_service_version(value: Any) -> int | None:
    """The ``expected_version`` of an update body: None (unconditional) or a positive integer."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(
            f"expected_version must be a service version (a positive integer), not {value!r}",
            field="expected_version",
        )
    return value


def merge_spec(current: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``current`` with top-level keys of ``changes`` replaced; the nested maps (health, restart, update,
    rollback, container) merge."""
    merged = dict(current)
    for key, value in changes.items():
        if (
            key in ("health", "restart", "update", "rollback", "container")
            and isinstance(value, dict)
            and isinstance(merged.get(key), dict)
        ):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def task_counts(state: ClusterState, service: ServiceRecord) -> tuple[int, int]:
    """(running tasks that should run, desired tasks) of a service."""
    tasks = [t for t in state.tasks_of_service(service.service_id) if t.desired_state == "running"]
    running = sum(1 for t in tasks if t.state == "running")
    global_mode = service.spec.get("mode") == "global"
    desired = len(tasks) if global_mode else int(service.spec.get("replicas", 0))
    return running, desired


def _node_name(state: ClusterState, node_id: str | None) -> str | None:
    """The name of a node that is in the cluster, else None."""
    node = state.nodes.get(node_id) if node_id else None
    return node.name if node else None


class ServiceOps:
    """The API's view of services; every write goes through the manager's Raft store."""

    def __init__(self, manager: ClusterManager, logs: LogOps, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.manager = manager
        self.log_ops = logs
        self.clock = clock

    def _state(self) -> ClusterState:
        return self.manager.snapshot()

    def check_ports(self, spec: ServiceSpec) -> ServiceSpec:
        """Refuse ports p2porch itself listens on and ingress ports another service serves (``--publish``)."""
        ingress = tuple((p.protocol, p.published or 0) for p in spec.ingress_ports)
        check_published_ports(spec.host_ports + ingress, config_reserved_ports(self.manager.config))
        check_ingress_ports_free(spec.name, ingress, ingress_ports_in_use(self._state()))
        return spec

    def find(self, ref: str) -> ServiceRecord:
        state = self._state()
        service = state.service_by_name(ref) or state.services.get(ref)
        if service is None:
            matches = (
                [s for s in state.services.values() if s.service_id.startswith(ref)] if len(ref) >= 4 else []
            )
            if len(matches) == 1:
                return matches[0]
            raise NotFoundError(f"no service {ref!r}", field="SERVICE")
        return service

    async def create(self, body: dict[str, Any]) -> dict[str, Any]:
        spec = resolve_file_refs(self._state(), self.check_ports(validate_spec(body)))
        if self._state().service_by_name(spec.name) is not None:
            raise ConflictError(f"a service named {spec.name!r} already exists", field="name")
        service_id = secrets.token_hex(SERVICE_ID_BYTES)
        await self.manager.write(C.create_service(self.clock.now(), service_id, spec.name, spec.to_dict()))
        return self.written_view(service_id, spec.name)

    async def update(self, ref: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Merge ``changes`` into the spec. With ``expected_version`` (compare-and-set) the update is
        refused with ConflictError unless the service is still at that version when it commits."""
        changes = dict(changes)
        expected = expected_service_version(changes.pop("expected_version", None))
        service = self.find(ref)
        if expected is not None and expected != service.version:
            raise ConflictError(
                f"service {service.name} is at version {service.version} on this node, not {expected}: "
                "it changed since you read it (or this node is behind); read it again and retry",
                field="expected_version",
            )
        if "name" in changes and changes["name"] != service.name:
            raise ConfigError("a service cannot be renamed", field="name")
        current = dict(service.spec)
        merged = merge_spec(current, file_ref_changes(service.to_dict()["spec"], changes))
        spec = resolve_file_refs(self._state(), self.check_ports(validate_spec(plain_spec(merged))))
        new = spec.to_dict()
        if spec.template_hash() != service_spec(current).template_hash():
            new["previous_spec"] = plain_spec(current)  # kept for `service rollback`
        elif "previous_spec" in current:
            new["previous_spec"] = current["previous_spec"]
        keep_rebalance_request(current, new)
        await self.manager.write(
            C.update_service(self.clock.now(), service.service_id, new, service_version=service.version)
        )
        return self.written_view(service.service_id, service.name)

    async def scale(self, ref: str, replicas: Any) -> dict[str, Any]:
        service = self.find(ref)
        if service.spec.get("mode") == "global":
            raise ConfigError(
                f"service {service.name} is global: it runs one task per eligible node", field="replicas"
            )
        return await self.update(ref, {"replicas": replicas})

    async def rollback(self, ref: str) -> dict[str, Any]:
        service = self.find(ref)
        previous = service.spec.get("previous_spec")
        if not previous:
            raise ConflictError(
                f"service {service.name} has no previous spec to roll back to", field="SERVICE"
            )
        spec = validate_spec(dict(previous)).to_dict()
        spec["previous_spec"] = plain_spec(dict(service.spec))
        keep_rebalance_request(service.spec, spec)
        await self.manager.write(
            C.update_service(self.clock.now(), service.service_id, spec, service_version=service.version)
        )
        return self.written_view(service.service_id, service.name)

    async def rebalance(self, ref: str) -> dict[str, Any]:
        """Ask the leader to spread the service's tasks over the nodes that can run them now.

        Moves are start-first, one at a time per service; the request clears itself once the service is
        balanced (``rebalance`` in the view says ``requested`` until then).
        """
        service = self.find(ref)
        if service.spec.get("mode") == "global":
            raise ConfigError(
                f"service {service.name} is global: it already runs one task per eligible node",
                field="SERVICE",
            )
        if service.spec.get("strategy") == "binpack":
            raise ConfigError(
                f"service {service.name} uses --strategy binpack: rebalancing spreads tasks, which "
                "binpack does not want",
                field="SERVICE",
            )
        spec = {**dict(service.spec), "rebalance_requested": self.clock.now()}
        await self.manager.write(
            C.update_service(self.clock.now(), service.service_id, spec, service_version=service.version)
        )
        return self.written_view(service.service_id, service.name)

    async def remove(self, ref: str) -> dict[str, Any]:
        service = self.find(ref)
        await self.manager.write(
            C.remove_service(self.clock.now(), service.service_id, service_version=service.version)
        )
        return {"removed": service.service_id, "name": service.name}

    def written_view(self, service_id: str, name: str) -> dict[str, Any]:
        """The view of a service this node just wrote. The write has committed, so it is never reported
        as failed: a service removed again right after it (a concurrent `service rm`) is answered with
        ``removed: true`` instead of "no service"."""
        service = self._state().services.get(service_id)
        if service is None:
            return {"id": service_id, "name": name, "version": None, "removed": True}
        return self.view(service)

    def list_all(self) -> list[dict[str, Any]]:
        state = self._state()
        return [self.view(s, state) for s in sorted(state.services.values(), key=lambda s: s.name)]

    def view(self, service: ServiceRecord, state: ClusterState | None = None) -> dict[str, Any]:
        state = state or self._state()
        running, desired = task_counts(state, service)
        pending = Counter(
            t.message
            for t in state.tasks_of_service(service.service_id)
            if t.desired_state == "running" and t.node_id is None and t.message
        )
        spec = plain_spec(dict(service.spec))
        return {
            "id": service.service_id,
            "name": service.name,
            "mode": spec.get("mode", "replicated"),
            "image": spec.get("image"),
            "running": running,
            "desired": desired,
            "version": service.version,
            "created_at": service.created_at,
            "updated_at": service.updated_at,
            "vip": service.vip,  # "" in dnsrr mode
            "spec": spec,
            "pending": [{"count": n, "explanation": why} for why, n in sorted(pending.items())],
            "update_paused": bool(service.spec.get("update_paused")),
            "rebalance": (
                "requested"
                if service.spec.get("rebalance_requested")
                else ("auto" if spec.get("rebalance") else "off")
            ),
            "moving": sum(
                1
                for t in state.tasks_of_service(service.service_id)
                if t.desired_state == "running" and t.move_to is not None
            ),
        }

    def tasks(self, ref: str, include_history: bool = True) -> list[dict[str, Any]]:
        state = self._state()
        service = self.find(ref)
        tasks = sorted(
            state.tasks_of_service(service.service_id),
            key=lambda t: (t.slot, t.desired_state != "running", -t.state_at),
        )
        return [
            self.task_view(t, state, service)
            for t in tasks
            if include_history or t.desired_state == "running"
        ]

    @staticmethod
    def task_view(task: TaskRecord, state: ClusterState, service: ServiceRecord) -> dict[str, Any]:
        return {
            "id": task.task_id,
            "name": f"{service.name}.{task.slot}",
            "slot": task.slot,
            "node": _node_name(state, task.node_id),
            "desired_state": task.desired_state,
            "state": task.state,
            "state_at": task.state_at,
            "error": task.error,
            "message": task.message,
            "container_id": task.container_id,
            "address": task.address,
            "health": task.health,
            "exit_code": task.exit_code,
            "move_to": _node_name(state, task.move_to) or task.move_to,
        }

    @asynccontextmanager
    async def logs(self, ref: str, *, follow: bool, tail: int | None) -> AsyncIterator[Any]:
        """Log lines of every task of a service, from every node that ran one, as they arrive.

        Items are ``{"task": "web.2.<id>", "node": "n2", "line": "..."}``; this node's tasks are read
        from its Docker engine, other nodes' through their join port (token handshake, encrypted).
        """
        state = self._state()
        service = self.find(ref)
        names = {
            t.task_id: f"{service.name}.{t.slot}.{t.task_id[:12]}"
            for t in state.tasks_of_service(service.service_id)
        }
        node_ids = sorted({t.node_id for t in state.tasks_of_service(service.service_id) if t.node_id})
        request = {"op": "logs", "service": service.name, "follow": follow, "tail": tail}
        send, receive = trio.open_memory_channel[dict[str, Any]](math.inf)

        async def pump(node_id: str) -> None:
            node = state.nodes.get(node_id)
            if node is None:
                return
            try:
                async with self.log_ops.node_logs(node, request) as items:
                    async for item in items:
                        task_id = str(item.get("task_id", ""))
                        send.send_nowait(
                            {
                                "task": names.get(task_id, task_id),
                                "node": node.name,
                                "line": str(item.get("line", "")),
                            }
                        )
            except P2POrchError as exc:
                send.send_nowait(
                    {"task": None, "node": node.name, "line": f"(logs unavailable: {exc.message})"}
                )

        async def produce() -> None:
            async with send, trio.open_nursery() as inner:
                for node_id in node_ids:
                    inner.start_soon(pump, node_id)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(produce)
            try:
                yield receive
            finally:
                nursery.cancel_scope.cancel()
