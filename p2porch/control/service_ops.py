"""Service lifecycle operations behind the API: create, list, inspect, ps, update, scale, remove.

Owns validating a requested spec (nothing partial is ever written: a spec is validated whole, then
committed in one command) and presenting services and tasks to users. Placement is the leader's
scheduling loop's job; this module only writes desired state.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import trio

from ..clock import SYSTEM_CLOCK, Clock
from ..errors import ConfigError, ConflictError, NotAllowedError, NotFoundError, P2POrchError, no_such
from ..leader.job_state import updated_job
from ..membership.join_checks import (
    check_ingress_ports_free,
    check_published_ports,
    config_reserved_ports,
    host_mode_ports_in_use,
    ingress_ports_in_use,
)
from ..model import DesiredState, Service, ServiceSpec, Task, rollback_point
from ..model.group import MAIN_NAME
from ..model.health_rules import check_off_checks, off_check_kept
from ..model.job_defaults import with_job_defaults
from ..model.jobspec import global_scale_refusal
from ..model.metadata_limits import check_spec
from ..model.netrefs import host_network_defaults, on_host_network
from ..model.spec import check_endpoint_ports, check_mode_kept, check_update_allowed
from ..model.update_sequence import (
    base_digest,
    decide,
    moved_by_the_cluster,
    out_of_sequence,
    outcome_unknown_at,
    previous_digest,
    spec_digest,
)
from ..raft import command_gate
from ..raft import commands as C
from ..raft.published_ports import check_chosen_ports, endpoint_ports
from ..raft.spec_size import check_spec_size
from ..raft.state import ClusterState
from ..scheduler.jobs import shown_desired_state
from .fresh_read import redone_on_newer_record
from .secret_ops import Follow, kept_refs, resolve_file_refs
from .service_names import service_by_swarm_name
from .service_progress import failing_view, job_view, task_counts
from .spec_merge import updated_spec_dict as updated_spec_dict  # stack_ops takes it from here
from .task_liveness import stale_message
from .task_specs import task_host_ports, task_image
from .unused_removals import unused_removals

if TYPE_CHECKING:
    from ..membership.manager import ClusterManager
    from .logs import LogOps

SERVICE_ID_BYTES = 8
LOG_BUFFER_LINES = 1024  # log lines held for one `service logs` reader before its nodes' streams wait


def validate_spec(data: Any, endpoint_given: bool = True) -> ServiceSpec:
    """``data`` as a ServiceSpec, with what the host network leaves unsaid (``host_network_defaults``)."""
    if not isinstance(data, dict):
        raise ConfigError("the service spec must be a JSON object", field="spec")
    return host_network_defaults(ServiceSpec.from_dict(data), endpoint_given)


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
        """Refuse ports p2porch itself listens on, and a port number another service publishes where either
        is an ingress port (``--publish``), and an ingress port on a dnsrr service (Swarm's rule)."""
        check_endpoint_ports(spec)
        ingress = tuple((p.protocol, p.published) for p in spec.ingress_ports if p.published is not None)
        check_published_ports(spec.host_ports + ingress, config_reserved_ports(self.manager.config))
        state = self._state()
        services = state.services.values()
        own = state.service_by_name(spec.name)
        check_chosen_ports(services, own.service_id if own is not None else "", spec)  # Swarm's wording
        check_ingress_ports_free(
            spec.name,
            ingress,
            ingress_ports_in_use(services),
            spec.host_ports,
            host_mode_ports_in_use(services),
        )
        return spec

    def find(self, ref: str) -> Service:
        state = self._state()
        service = state.service_by_name(ref) or state.services.get(ref) or service_by_swarm_name(state, ref)
        if service is None:
            matches = (
                [s for s in state.services.values() if s.service_id.startswith(ref)] if len(ref) >= 4 else []
            )
            if len(matches) == 1:
                return matches[0]
            raise no_such("service", ref, field="SERVICE")
        return service

    def service_or_task(self, ref: str) -> tuple[Service, str]:
        """``ref``'s service and "", or, for a task id or unique prefix (>= 4), its service and task id."""
        try:
            return self.find(ref), ""
        except NotFoundError as exc:
            state = self._state()
            tasks = [t for t in state.tasks.values() if len(ref) >= 4 and t.task_id.startswith(ref)]
            service = state.services.get(tasks[0].service_id) if len(tasks) == 1 else None
            if service is None and exc.message == no_such("service", ref).message:  # Docker's logs words
                raise no_such("task or service", ref, field="SERVICE") from None
            if service is None:  # a Swarm name two stack members share: that error
                raise
            return service, tasks[0].task_id

    async def create(self, body: dict[str, Any]) -> dict[str, Any]:
        spec = with_job_defaults(validate_spec(body, "endpoint_mode" in body))  # dnsrr on host unless given
        spec = resolve_file_refs(self._state(), self.check_ports(spec))
        check_spec(spec)
        check_off_checks(spec)  # a health check off with settings (model/health_rules.py)
        check_spec_size(spec)  # nothing is created that an update could not carry
        command_gate.admit_spec(spec, None, self.manager.require_store().command_readers)
        if self._state().service_by_name(spec.name) is not None:
            raise ConflictError(f"a service named {spec.name!r} already exists", field="name")
        service_id = secrets.token_hex(SERVICE_ID_BYTES)
        create = C.CreateService(at=self.clock.now(), service_id=service_id, spec=spec)
        await self.manager.write(create.encode())
        return self.written_view(service_id, spec.name)

    async def update(
        self, ref: str, changes: dict[str, Any], follow: Follow = (), *, whole: bool = False
    ) -> dict[str, Any]:
        """Merge ``changes`` into the spec (``follow``: kept_refs). With ``expected_version`` (compare-and-
        set) the update is refused with ConflictError unless the service is at that version at its commit.
        Its base is ``base_spec`` (the digest of the spec the caller read) or the spec read here first:
        redone on a newer record, it is refused "update out of sequence" once another write changed the
        spec, never merged into it, unless only the cluster's own work moved it (the autoscaler, a
        secret roll: model/update_sequence.py). A resend the spec already carries answers ``already``.
        ``whole`` (a stack deploy): ``changes`` replaces the spec (spec_merge.updated_spec_dict)."""
        read = self.find(ref)
        bases = {"base_spec": spec_digest(read.spec.to_dict()), "base_previous": previous_digest(read)}
        return await self._update(
            ref, {**bases, **changes}, follow, None if "base_spec" in changes else read.version, whole
        )

    def _merged(
        self, current: ServiceSpec, changes: dict[str, Any], follow: Follow, force: bool, whole: bool
    ) -> ServiceSpec:
        """``changes`` merged into ``current`` (``whole``: replacing it), validated, its references and
        ports resolved."""
        given = "endpoint_mode" in changes or on_host_network(current.networks)  # else dnsrr on host
        checked = self.check_ports(validate_spec(updated_spec_dict(current, changes, whole), given))
        spec = resolve_file_refs(self._state(), checked, kept=kept_refs(current, changes, follow))
        if force and not spec.is_job:  # as Docker's ForceUpdate: a new template, so every task rolls
            spec = dataclasses.replace(spec, force_update=current.force_update + 1)
        return off_check_kept(current, spec) if whole else spec

    def _written_already(
        self, service: Service, base: str, update: tuple[dict[str, Any], Follow, bool, bool]
    ) -> bool:
        """Whether the service's last write is this update at ``base`` (a retry whose first send committed;
        before validating: a --secret-add sent again would name its target twice)."""
        before = service.previous_spec
        if before is None or spec_digest(before.to_dict()) != base:
            return False
        try:
            return self._merged(before, *update).to_dict() == service.spec.to_dict()
        except P2POrchError:
            return False

    @redone_on_newer_record("service_version")
    async def _update(
        self, ref: str, changes: dict[str, Any], follow: Follow, read_at: int | None, whole: bool = False
    ) -> dict[str, Any]:
        """``read_at``: the record version the base was read at; None: a resend (the caller's base)."""
        changes = dict(changes)
        base = base_digest(changes.pop("base_spec"))
        previous = changes.pop("base_previous", None)
        expected = expected_service_version(changes.pop("expected_version", None))
        force = changes.pop("force", False)
        if not isinstance(force, bool):
            raise ConfigError("force must be true or false", field="force")
        service = self.find(ref)
        if expected is not None and expected != service.version:
            raise ConflictError(
                f"service {service.name} is at version {service.version} on this node, not {expected}: "
                "it changed since you read it (or this node is behind); read it again and retry",
                field="expected_version",
            )
        if "name" in changes and changes["name"] != service.name:
            raise ConfigError("a service cannot be renamed", field="name")
        previous = None if previous is None else base_digest(previous, "base_previous")
        current = spec_digest(service.spec.to_dict())
        already = {"already": True} if read_at is None else {}  # its first send committed (a resend)
        if current != base and self._written_already(service, base, (changes, follow, force, whole)):
            return {**self.view(service), "changed": [], **already}
        if current != base and moved_by_the_cluster(service, base, previous, read_at):
            base = current  # only the autoscaler or a secret roll moved it: merged into that spec
        elif previous is not None and previous != previous_digest(service):
            base = ""  # the spec left its base and came back (a rollback since it was read): not written
        if isinstance(changes.get("mode"), str):  # before the merged spec's checks: a job's max_concurrent
            check_mode_kept(service.name, service.spec, changes["mode"])
        changes, skip = unused_removals(self._state(), service.spec.to_dict(), changes)
        spec = self._merged(service.spec, changes, follow, force, whole)
        check_spec(spec, service.spec)  # only what the update makes worse
        check_off_checks(spec, service.spec)
        check_spec_size(spec)
        check_update_allowed(service.name, service.spec, spec)  # the mode as the FSM: before the job
        command_gate.admit_spec(spec, service.spec, self.manager.require_store().command_readers)
        now = self.clock.now()
        change = rollback_point.updated(service, spec, now)  # any change keeps a rollback point
        if decide(base, current, change.changed or force) == "refuse":
            raise ConflictError(out_of_sequence(service.name), field="base_spec")
        if not change.changed and not force and not service.update_paused:  # nothing written
            return {
                **self.view(service),
                "changed": [],
                "ignored": skip,
                **(already if base != current else {}),
            }
        job = updated_job(service, change.spec, now, force=force)
        update = C.UpdateService.of(
            service,
            at=now,
            spec=change.spec,
            previous_spec=change.previous_spec,
            update_paused=False,
            job=job,
            rollout=change.rollout,
        )
        with outcome_unknown_at(base, previous_digest(service)):  # a retry sends these (cli/sent_again.py)
            await self.manager.write(update.encode())
        fields = list(change.fields)
        if spec.is_job and (job.iteration or 0) > service.job_iteration:  # --force, any change of a plain job
            fields.append("execution")  # a new execution was written (scale and --env-add run it again)
        elif not fields:  # the spec is the same, but the paused update was resumed
            fields.append("resumed")
        return {**self.written_view(service.service_id, service.name), "changed": fields, "ignored": skip}

    async def scale(self, ref: str, replicas: Any) -> dict[str, Any]:
        """Set ``replicas``; at that count nothing is written (``already_at``) but a paused update resumed,
        except for a job without a schedule: as Swarm's, its scale always runs a new execution."""
        service = self.find(ref)
        if service.spec.mode in ("global", "global-job"):
            raise NotAllowedError(global_scale_refusal(service.name, service.spec.mode), field="replicas")
        same = type(replicas) is int and replicas == service.spec.replicas
        if same and service.spec.is_job and service.spec.schedule is None:  # as Swarm: it runs again
            return await self.update(ref, {"replicas": replicas, "force": True})
        if same and not service.update_paused:
            return {**self.view(service), "changed": [], "already_at": replicas}
        return await self.update(ref, {"replicas": replicas})

    async def rollback(self, ref: str) -> dict[str, Any]:
        """Roll back to the rollback point read: redone on a newer record only while the spec and the
        point are the ones first read (another user's update meanwhile is refused, not undone)."""
        read = self.find(ref)
        return await self._rollback(ref, (read.spec, read.previous_spec))

    @redone_on_newer_record("service_version")
    async def _rollback(self, ref: str, read: tuple[ServiceSpec, ServiceSpec | None]) -> dict[str, Any]:
        service = self.find(ref)
        if (service.spec, service.previous_spec) != read:
            raise ConflictError(
                f"service {service.name} changed since you read it: another update committed, so the "
                "rollback would undo it; inspect the service and roll back again if you still want to",
                field="SERVICE",
            )
        if service.spec.is_job:
            raise NotAllowedError(
                f"{service.name} is a job: a job is not rolled back (update it, or re-run it with --force)",
                field="SERVICE",
            )
        # rolled out with the rollback config of the spec being left
        change = rollback_point.rolled_back(
            service, self.clock.now(), "manual rollback", service.spec.rollback
        )
        if change is None:
            raise ConflictError(
                f"service {service.name} does not have a previous spec to roll back to: it was never "
                "updated (every update that changes it keeps one), or its last update was rolled back "
                "automatically (as Swarm's, that clears it)",
                field="SERVICE",
            )
        # the point may use a field a member that joined since does not read (its FSM would refuse it)
        command_gate.admit_spec(change.spec, service.spec, self.manager.require_store().command_readers)
        update = C.UpdateService.of(
            service,
            at=self.clock.now(),
            spec=change.spec,
            previous_spec=change.previous_spec,
            update_paused=False,
            rollout=change.rollout,
        )
        await self.manager.write(update.encode())
        return {**self.written_view(service.service_id, service.name), "changed": list(change.fields)}

    @redone_on_newer_record("service_version")
    async def rebalance(self, ref: str) -> dict[str, Any]:
        """Ask the leader to spread the service's tasks over the nodes that can run them now. Moves are
        start-first, one at a time per service; the request clears itself once the service is balanced
        (``rebalance`` in the view says ``requested`` until then)."""
        service = self.find(ref)
        if service.spec.is_job:
            raise ConfigError(f"{service.name} is a job: its tasks run to completion", field="SERVICE")
        if service.spec.mode == "global":
            raise ConfigError(
                f"service {service.name} is global: it already runs one task per eligible node",
                field="SERVICE",
            )
        if service.spec.strategy == "binpack":
            raise ConfigError(
                f"service {service.name} uses --strategy binpack: rebalancing spreads tasks, which "
                "binpack does not want",
                field="SERVICE",
            )
        now = self.clock.now()
        await self.manager.write(C.UpdateService.of(service, at=now, rebalance_requested=now).encode())
        return self.written_view(service.service_id, service.name)

    @redone_on_newer_record("service_version")
    async def remove(self, ref: str) -> dict[str, Any]:
        service = self.find(ref)
        remove = C.RemoveService(
            at=self.clock.now(), service_id=service.service_id, service_version=service.version
        )
        await self.manager.write(remove.encode())
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

    def view(self, service: Service, state: ClusterState | None = None) -> dict[str, Any]:
        state = state or self._state()
        tasks = list(state.tasks_of_service(service.service_id))  # one walk of the state for the view
        now = self.clock.now()
        running, desired = task_counts(state, service, tasks, now)
        pending = Counter(
            t.message
            for t in tasks
            if t.desired_state == DesiredState.RUNNING and t.node_id is None and t.message
        )
        spec = service.spec.to_dict()
        return {
            "id": service.service_id,
            "name": service.name,
            "mode": service.spec.mode,
            "image": service.spec.image,
            "running": running,
            "desired": desired,
            "version": service.version,
            "created_at": service.created_at,
            "updated_at": service.updated_at,
            "vip": service.vip,  # "" in dnsrr mode
            "spec": spec,
            "spec_digest": spec_digest(spec),  # opaque: an update's base_spec (model/update_sequence.py)
            "endpoint_ports": endpoint_ports(service),  # with the ports the FSM assigned
            "pending": [{"count": n, "explanation": why} for why, n in sorted(pending.items())],
            "failing": failing_view(service, tasks, running, desired),
            "update_paused": service.update_paused,
            "update_status": None
            if service.rollout is None or service.spec.is_job
            else service.rollout.status(),
            "rebalance": (
                "requested" if service.rebalance_requested else ("auto" if service.spec.rebalance else "off")
            ),
            "moving": sum(
                1
                for t in state.tasks_of_service(service.service_id)
                if t.desired_state == DesiredState.RUNNING and t.move_to is not None
            ),
            "job": job_view(state, service, now),
        }

    def tasks(self, ref: str, include_history: bool = True) -> list[dict[str, Any]]:
        state = self._state()
        service = self.find(ref)
        tasks = sorted(
            state.tasks_of_service(service.service_id),
            key=lambda t: (t.slot, t.desired_state != DesiredState.RUNNING, -t.state_at),
        )
        current = service.spec.template_hash()
        return [
            self.task_view(t, state, service, current)
            for t in tasks
            if include_history or t.desired_state == DesiredState.RUNNING
        ]

    def tasks_on_node(self, node_id: str, include_history: bool = True) -> list[dict[str, Any]]:
        """Every task of a service assigned to the node (``node ps``), by service name and slot."""
        state = self._state()
        out = []
        for t in state.tasks_on_node(node_id):
            service = state.services.get(t.service_id)
            if service is not None and (include_history or t.desired_state == DesiredState.RUNNING):
                out.append(self.task_view(t, state, service))
        return sorted(out, key=lambda v: (v["name"].rpartition(".")[0], v["slot"], -v["state_at"]))

    @staticmethod
    def task_view(
        task: Task, state: ClusterState, service: Service, template: str | None = None
    ) -> dict[str, Any]:
        """A task as the API shows it; ``up_to_date``: built from the service's current spec (the
        progress of create/update waits on it); ``last_report``: its node does not report it now (down,
        or its engine unreachable: task_liveness.py), so ``service ls`` does not count it as running and
        ``message`` says so."""
        template = service.spec.template_hash() if template is None else template
        stale = stale_message(task, state.nodes.get(task.node_id) if task.node_id else None)
        return {
            "up_to_date": task.template_hash == template,
            "id": task.task_id,
            "name": f"{service.name}.{task.slot}",
            "slot": task.slot,
            "node": _node_name(state, task.node_id),
            "node_id": task.node_id,  # service ps --filter node=ID (Docker takes a node's id or name)
            "image": task_image(task, service),
            "ports": task_host_ports(task, service),
            "desired_state": shown_desired_state(task) if service.spec.is_job else task.desired_state,
            "state": task.state,
            "state_at": task.state_at,
            "started_at": task.started_at,
            "error": task.error,
            # a task still meant to run on a node that does not report it (down, or its engine
            # unreachable): its state is only that node's last report, not counted as running
            "message": stale or task.message,
            "last_report": bool(stale),
            "container_id": task.container_id,
            "address": task.address,
            "health": task.health,
            "exit_code": task.exit_code,
            "move_to": _node_name(state, task.move_to) or task.move_to,
            "job_iteration": task.job_iteration,
            "service_labels": dict(service.spec.service_labels),  # node ps --filter label=K[=V], as Docker's
        }

    @asynccontextmanager
    async def logs(
        self,
        ref: str,
        *,
        follow: bool,
        tail: int | None,
        container: str = "",
        since: float | None = None,
        timestamps: bool = False,
    ) -> AsyncIterator[Any]:
        """Log lines of every task of a service, from every node that ran one, as they arrive; ``ref`` may
        also be a task id (or a unique prefix of at least 4 characters, as ``service ps`` shows it): that
        task's lines alone, as ``docker service logs TASK``.

        Items are ``{"task": "web.2.<id>", "node": "n2", "line": "..."}``; this node's tasks are read
        from its Docker engine, other nodes' through their join port (token handshake, encrypted).
        ``container`` names one container of a task group (its sidecar or init container; "" = the main);
        ``since`` (epoch seconds) and ``timestamps`` go to each node's engine."""
        state = self._state()
        service, only = self.service_or_task(ref)
        tasks = [t for t in state.tasks_of_service(service.service_id) if only in ("", t.task_id)]
        names = {t.task_id: f"{service.name}.{t.slot}.{t.task_id[:12]}" for t in tasks}
        node_ids = sorted({t.node_id for t in tasks if t.node_id})
        request = {"op": "logs", "service": service.name, "follow": follow, "tail": tail}
        if only:  # that task's node reads that task's container alone (an older node sends them all)
            request["task_id"] = only
        if container and container != MAIN_NAME:
            request["container"] = container
        if since is not None:
            request["since"] = since
        if timestamps:
            request["timestamps"] = True
        # bounded: a reader that stops reading (a suspended `logs -f`, a client that never reads) holds
        # LOG_BUFFER_LINES here and back-pressures every node's stream, never the daemon's memory
        send, receive = trio.open_memory_channel[dict[str, Any]](LOG_BUFFER_LINES)

        async def pump(node_id: str) -> None:
            node = state.nodes.get(node_id)
            if node is None:
                return
            try:
                async with self.log_ops.node_logs(node, request) as items:
                    async for item in items:
                        task_id = str(item.get("task_id", ""))
                        if only and task_id != only:
                            continue
                        await send.send(
                            {
                                "task": names.get(task_id, task_id),
                                "node": node.name,
                                "line": str(item.get("line", "")),
                            }
                        )
            except P2POrchError as exc:
                await send.send(
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
