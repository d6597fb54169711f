"""The control API's route tables for the cluster, its nodes and its services (shell).

Each table maps HTTP routes to one operation of :mod:`p2porch.control` (or of the membership
lifecycle for init/join/leave/recover); request bodies are checked here before they reach an
operation. Stacks have their own table (:func:`p2porch.control.stack_ops.stack_endpoints`).
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from ..api.server import Endpoint
from ..errors import ConfigError, ConflictError
from ..membership.join_checks import check_api_body
from ..model.group import MAIN_NAME
from .event_stream import open_event_stream

if TYPE_CHECKING:
    from ..membership.manager import ClusterManager
    from .node_ops import NodeOps
    from .service_ops import ServiceOps

__all__ = ["cluster_endpoints", "node_body", "service_endpoints"]


def node_body(body: dict[str, Any]) -> dict[str, Any]:
    """Validate the node options of an init/join request (labels as a map of strings)."""
    labels = body.get("labels")
    if labels is not None and (
        not isinstance(labels, dict)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items())
    ):
        raise ConfigError("labels must be a map of strings", field="labels")
    for key in ("name", "advertise_addr", "listen_addr", "token", "peer", "domain", "cluster_cidr"):
        if body.get(key) is not None and not isinstance(body[key], str):
            raise ConfigError(f"{key} must be a string", field=key)
    check_api_body(body)
    return body


def cluster_endpoints(cluster: ClusterManager, nodes: NodeOps, services: ServiceOps) -> list[Endpoint]:
    """Membership lifecycle, join token, nodes (and the tasks on one), this node's overlay and the event
    stream."""

    async def token(body: dict[str, Any], params: dict[str, str]) -> Any:
        return await nodes.token(bool(body.get("rotate")))

    async def events(body: dict[str, Any], params: dict[str, str]) -> Any:
        store = cluster.require_store()
        since, until = _epoch(body.get("since"), "--since"), _epoch(body.get("until"), "--until")
        if since is not None and until is not None and until < since:
            raise ConfigError(f"--until: {until} is before --since {since}", field="--until")
        feed = cluster.board.event_feed
        if feed is None:  # the member services are (re)starting
            raise ConflictError("this node's events service is not running yet; try again", field="events")
        return partial(open_event_stream, feed, store, cluster.clock, since, until)

    async def network(body: dict[str, Any], params: dict[str, str]) -> Any:
        return nodes.network()

    async def node_list(body: dict[str, Any], params: dict[str, str]) -> Any:
        return nodes.nodes()

    async def node_inspect(body: dict[str, Any], params: dict[str, str]) -> Any:
        node = nodes.find_node(params["node"])
        store = cluster.require_store()
        return nodes.node_view(node, store.snapshot(), store.status().leader)

    async def node_update(body: dict[str, Any], params: dict[str, str]) -> Any:
        return await nodes.update_node(params["node"], body)

    async def node_tasks(body: dict[str, Any], params: dict[str, str]) -> Any:
        node = nodes.find_node(params["node"])
        return services.tasks_on_node(node.node_id, str(body.get("all", "true")).lower() != "false")

    async def node_rm(body: dict[str, Any], params: dict[str, str]) -> Any:
        return await nodes.remove_node(params["node"], bool(body.get("force")))

    return [
        Endpoint("POST", "/cluster/init", lambda b, p: cluster.init(node_body(b)), "Create a cluster"),
        Endpoint("POST", "/cluster/join", lambda b, p: cluster.join(node_body(b)), "Join a cluster"),
        Endpoint("POST", "/cluster/leave", lambda b, p: cluster.leave(b), "Leave the cluster"),
        Endpoint(
            "POST",
            "/cluster/recover",
            lambda b, p: cluster.recover(b),
            "After quorum loss: restart the cluster from this node's state as its only voter",
        ),
        Endpoint(
            "POST",
            "/cluster/rotate-keys",
            lambda b, p: cluster.rotate_keys(),
            "New cluster keys for every current member (a removed node cannot follow)",
        ),
        Endpoint("GET", "/token", token, "The current join token"),
        Endpoint("POST", "/token", token, 'Rotate the join token with {"rotate": true}'),
        Endpoint("GET", "/nodes", node_list, "List the cluster's nodes"),
        Endpoint("GET", "/nodes/{node}", node_inspect, "Inspect one node"),
        Endpoint("GET", "/nodes/{node}/tasks", node_tasks, "The tasks assigned to one node (node ps)"),
        Endpoint("DELETE", "/nodes/{node}", node_rm, "Remove a node that left or is down"),
        Endpoint("POST", "/nodes/{node}/update", node_update, "Change availability or labels"),
        Endpoint("GET", "/network", network, "This node's overlay: lease, VTEP, programmed peers"),
        Endpoint("GET", "/events", events, "Stream cluster events (JSON lines)", streaming=True),
    ]


def _epoch(value: Any, flag: str) -> float | None:
    """A time of a request (logs and events ``since``, events ``until``): epoch seconds (the CLI turns
    ``--since 10m`` or a date into them); a bad one names ``flag``."""
    if value in (None, ""):
        return None
    try:
        moment = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{flag}: {value!r} is not a time in epoch seconds", field=flag) from None
    if not 0 <= moment < 1e11:  # also refuses nan and inf
        raise ConfigError(f"{flag}: {value!r} is not a time in epoch seconds", field=flag)
    return moment


def service_endpoints(ops: ServiceOps) -> list[Endpoint]:
    """Create, list, inspect, update, scale, roll back, rebalance, remove services; stream their logs."""

    async def create(body: dict[str, Any], params: dict[str, str]) -> Any:
        return await ops.create(body)

    async def listing(body: dict[str, Any], params: dict[str, str]) -> Any:
        return ops.list_all()

    async def inspect(body: dict[str, Any], params: dict[str, str]) -> Any:
        return ops.view(ops.find(params["service"]))

    async def tasks(body: dict[str, Any], params: dict[str, str]) -> Any:
        return ops.tasks(params["service"], include_history=str(body.get("all", "true")).lower() != "false")

    async def update(body: dict[str, Any], params: dict[str, str]) -> Any:
        return await ops.update(params["service"], body)

    async def scale(body: dict[str, Any], params: dict[str, str]) -> Any:
        return await ops.scale(params["service"], body.get("replicas"))

    async def rollback(body: dict[str, Any], params: dict[str, str]) -> Any:
        return await ops.rollback(params["service"])

    async def rebalance(body: dict[str, Any], params: dict[str, str]) -> Any:
        return await ops.rebalance(params["service"])

    async def remove(body: dict[str, Any], params: dict[str, str]) -> Any:
        return await ops.remove(params["service"])

    async def logs(body: dict[str, Any], params: dict[str, str]) -> Any:
        tail = body.get("tail")
        text = str(tail)
        if tail is not None and not (text.isascii() and text.isdigit() and len(text) <= 18):
            raise ConfigError("--tail must be a number of lines", field="--tail")  # not ², nor 5000 digits
        follow = str(body.get("follow", "false")).lower() in ("1", "true", "yes")
        # an unknown service (or task: `service logs TASK`) is an error before the stream
        service, task_id = ops.service_or_task(params["service"])
        container = str(body.get("container") or "")
        group = [MAIN_NAME, *(c.name for c in (*service.spec.sidecars, *service.spec.init_containers))]
        if container and container not in group:
            raise ConfigError(
                f"--container: {service.name} has no container {container!r} (its group: {', '.join(group)})",
                field="--container",
            )
        return partial(
            ops.logs,
            task_id or service.service_id,
            follow=follow,
            tail=int(tail) if tail is not None else None,
            container=container,
            since=_epoch(body.get("since"), "--since"),
            timestamps=str(body.get("timestamps", "false")).lower() in ("1", "true", "yes"),
        )

    return [
        Endpoint("POST", "/services", create, "Create a service from a spec"),
        Endpoint("GET", "/services", listing, "List services with running/desired counts"),
        Endpoint("GET", "/services/{service}", inspect, "Inspect a service"),
        Endpoint("GET", "/services/{service}/tasks", tasks, "A service's tasks (service ps)"),
        Endpoint("POST", "/services/{service}/update", update, "Change some fields of a service's spec"),
        Endpoint("POST", "/services/{service}/scale", scale, "Set a replicated service's replicas"),
        Endpoint("POST", "/services/{service}/rollback", rollback, "Go back to the previous spec"),
        Endpoint("POST", "/services/{service}/rebalance", rebalance, "Spread tasks onto nodes that joined"),
        Endpoint("DELETE", "/services/{service}", remove, "Remove a service and its tasks"),
        Endpoint(
            "GET",
            "/services/{service}/logs",
            logs,
            "Stream the logs of every task (JSON lines)",
            streaming=True,
        ),
    ]
