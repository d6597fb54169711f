"""Docker's ``service inspect --format`` paths read from p2porch's service view (pure).

Users paste Docker's format strings (``{{.Spec.TaskTemplate.ContainerSpec.Env}}``,
``{{.Spec.Mode.Replicated.Replicas}}``): :func:`docker_path` answers the common paths of Docker's service
JSON with the values Docker gives, printed as Go prints them (``[A=1 B=2]``, ``map[k:v]``, a port
``{ tcp 80 8080 ingress}``, a time ``2026-12-05 09:00:00 +0000 UTC``; ``{{json ...}}`` gives Docker's
JSON). Where one of these paths also names a p2porch field (``.Spec.Labels``, ``.CreatedAt``), Docker's
meaning wins; every other path stays p2porch's own (goformat.py). The same for ``node inspect``, ``secret|
config|network inspect`` and ``info`` (``{{.Swarm.LocalNodeState}}``). Owns no state, never asks the daemon.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..model.container import default_publish_mode
from ..model.gotemplate import GoList, GoMap, NilPointer
from .docker_spec import task_template, update_config
from .docker_types import GoStruct, GoTime, GoUint, go_struct, string_map
from .util import UsageError


def _ports(view: dict[str, Any], served: bool = False) -> GoList:
    """Docker's ``Spec.EndpointSpec.Ports`` (as written: an assigned port is 0), or with ``served`` its
    ``Endpoint.Ports`` (the port the swarm assigned filled in)."""
    out = GoList("[]swarm.PortConfig")
    listed = view["endpoint_ports"] if served and "endpoint_ports" in view else view["spec"].get("publish")
    for port in listed or []:
        published = port.get("published")
        mode = port.get("mode") or default_publish_mode(published, port.get("host_ip", ""))
        out.append(
            go_struct(
                "swarm.PortConfig",
                ("Name", "Protocol", "TargetPort", "PublishedPort", "PublishMode"),
                Name="",
                Protocol=port.get("protocol", "tcp"),
                TargetPort=port["target"],
                PublishedPort=published or 0,
                PublishMode=mode,
            )
        )
    return out


def _replicas(view: dict[str, Any]) -> int:
    if view["spec"].get("mode") != "replicated":
        raise UsageError(
            f"--format: .Spec.Mode.Replicated: {view['name']} is a {view['spec'].get('mode')} service",
            field="--format",
        )
    return int(view["spec"]["replicas"])


def _mode(view: dict[str, Any]) -> GoStruct:
    """Docker's ``.Spec.Mode``: ``{"Replicated": {"Replicas": 3}}``, ``{"Global": {}}``, a job's mode by
    its name (``{"ReplicatedJob": {}}``: its counts are p2porch's own ``.Spec.Replicas``)."""
    mode = str(view["spec"].get("mode") or "replicated")
    name = "".join(part.capitalize() for part in mode.split("-"))
    inner = go_struct(f"*swarm.{name}Service" if "Job" not in name else f"*swarm.{name}")
    if mode == "replicated":
        inner["Replicas"] = GoUint(view["spec"].get("replicas") or 0)
    return go_struct("swarm.ServiceMode", {name}, **{name: inner})


def _endpoint_spec(view: dict[str, Any], go_type: str = "*swarm.EndpointSpec") -> GoStruct:
    ports = _ports(view)
    return go_struct(go_type, ("Mode", "Ports"), Mode=view["spec"].get("endpoint_mode") or "vip", Ports=ports)


#: swarmkit's messages for an update status p2porch recorded no reason for
_STATUS_MESSAGES = {
    "updating": "update in progress",
    "paused": "update paused",
    "completed": "update completed",
    "rollback_started": "rollback in progress",
    "rollback_paused": "rollback paused",
    "rollback_completed": "rollback completed",
}


def _update_status(view: dict[str, Any]) -> GoStruct | NilPointer:
    """Docker's ``.UpdateStatus`` (``.State``, ``.StartedAt``, ``.Message``: p2porch's reason), a nil
    pointer for a service never updated, as Docker's (``<nil>``; ``.UpdateStatus.State`` is Go's "nil
    pointer evaluating" error); p2porch keeps no ``CompletedAt``."""
    status = view.get("update_status")
    if not status:
        return NilPointer("*swarm.UpdateStatus")
    state = str(status["state"])
    message = status.get("reason") or _STATUS_MESSAGES.get(state, "")
    fields = {"State": state, "StartedAt": GoTime(status["started_at"]), "Message": message}
    return go_struct("*swarm.UpdateStatus", fields, **fields)


#: Docker's path (lowercase, no leading dot) -> its value from p2porch's service view (``.ID`` and
#: ``.Spec.Name`` need none: p2porch's view has them under the same names)
_PATHS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "version.index": lambda v: GoUint(v["version"]),
    "createdat": lambda v: GoTime(v["created_at"]),
    "updatedat": lambda v: GoTime(v["updated_at"]),
    "spec.labels": lambda v: string_map(v["spec"].get("service_labels")),
    "spec.mode": _mode,
    "spec.mode.replicated.replicas": _replicas,  # a global service's: an error saying so
    "spec.tasktemplate": task_template,  # .ContainerSpec.Env|Mounts|Secrets..., .Resources, .Placement...
    "spec.updateconfig": update_config,
    "spec.rollbackconfig": lambda v: update_config(v, "rollback"),
    "spec.endpointspec": _endpoint_spec,
    "endpoint.ports": lambda v: _ports(v, served=True),
    "endpoint.spec": lambda v: _endpoint_spec(v, "swarm.EndpointSpec"),  # the spec the endpoint applies
    "updatestatus": _update_status,
}


def _answer(
    table: dict[str, Callable[[dict[str, Any]], Any]], view: dict[str, Any], path: str
) -> tuple[bool, Any]:
    """``(True, value)`` of ``path`` from ``table``'s longest prefix of it (the rest walked through the
    Docker struct that prefix gives, a name matching a field case-insensitively), else ``(False, None)``."""
    names = path.lstrip(".").split(".")
    for cut in range(len(names), 0, -1):
        reader = table.get(".".join(names[:cut]).lower())
        if reader is None:
            continue
        value = reader(view)
        for name in names[cut:]:
            keys = [k for k in value if str(k).lower() == name.lower()] if isinstance(value, dict) else []
            if not keys:
                return False, None
            value = value[keys[0]]
        return True, value
    return False, None


def docker_path(view: dict[str, Any], path: str) -> tuple[bool, Any]:
    """``(True, value)`` when ``path`` (``.Spec.Name``) is one of Docker's service paths mapped here,
    else ``(False, None)``: the caller reads p2porch's own view."""
    return _answer(_PATHS, view, path)


def _time(key: str) -> Callable[[dict[str, Any]], Any]:
    return lambda view: GoTime(view[key]) if view.get(key) else ""


#: Docker's ``secret|config inspect`` and ``network inspect`` paths that p2porch's views name otherwise
#: (``.ID``, ``.Name``, ``.Id``, ``.Driver``, ``.Internal``, ``.Labels`` need none)
_OBJECT_PATHS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "spec.name": lambda v: v["name"],
    "spec.labels": lambda v: v.get("labels") or {},
    "spec.templating.name": lambda v: v.get("template_driver") or "",
    "version.index": lambda v: v["version"],
    "createdat": _time("created_at"),
    "updatedat": _time("updated_at"),
    "created": _time("created_at"),
}


def object_path(view: dict[str, Any], path: str) -> tuple[bool, Any]:
    """As :func:`docker_path`, for a secret's, config's or network's view."""
    return _answer(_OBJECT_PATHS, view, path)


def _ipam(view: dict[str, Any]) -> GoStruct:
    """Docker's ``.IPAM``: a config per node's leased block and its gateway (every network shares them:
    addresses come from the cluster CIDR, each node leasing a block)."""
    configs = GoList(
        "[]network.IPAMConfig",
        (
            go_struct(
                "network.IPAMConfig",
                ("Subnet", "IPRange", "Gateway", "AuxAddress"),
                Subnet=s["subnet"],
                IPRange="",
                Gateway=s["gateway"],
                AuxAddress=string_map({}),
            )
            for s in view.get("subnets") or []
        ),
    )
    return go_struct("network.IPAM", Driver="default", Options=string_map({}), Config=configs)


def _containers(view: dict[str, Any]) -> GoMap:
    """Docker's ``.Containers``: the network's running tasks by container id (``Name`` the container's,
    ``IPv4Address`` with its node's block's prefix); every node's, where Docker's shows this node's."""
    prefixes = {s["node"]: s["subnet"].partition("/")[2] for s in view.get("subnets") or []}
    out = GoMap("map[string]network.EndpointResource")
    for t in view.get("tasks") or []:
        prefix = prefixes.get(t["node"])
        out[t.get("container_id") or t.get("task_id") or t["task"]] = go_struct(
            "network.EndpointResource",
            Name=f"{t['task']}.{str(t.get('task_id') or '')[:8]}".rstrip("."),
            EndpointID="",
            MacAddress="",
            IPv4Address=f"{t['address']}/{prefix}" if prefix else t["address"],
            IPv6Address="",
        )
    return out


def _peers(view: dict[str, Any]) -> GoList:
    """Docker's ``.Peers``: the nodes with a task on the network (``Name`` the node's, ``IP`` its address)."""
    nodes = {t["node"]: t.get("node_address") or "" for t in view.get("tasks") or []}
    return GoList(
        "[]network.PeerInfo",
        (go_struct("network.PeerInfo", Name=n, IP=ip) for n, ip in sorted(nodes.items())),
    )


#: Docker's ``network inspect`` paths beside the objects' (``.IPAM.Config``, ``.Containers``, ``.Peers``)
_NETWORK_PATHS: dict[str, Callable[[dict[str, Any]], Any]] = _OBJECT_PATHS | {
    "ipam": _ipam,
    "containers": _containers,
    "peers": _peers,
    "enableipv4": lambda v: True,
    "enableipv6": lambda v: False,
    "ingress": lambda v: False,
    "configonly": lambda v: False,
    "options": lambda v: string_map({}),
    "labels": lambda v: string_map(v.get("labels")),
}


def network_path(view: dict[str, Any], path: str) -> tuple[bool, Any]:
    """As :func:`docker_path`, for a network's view (``{{range .IPAM.Config}}{{.Subnet}}{{end}}``)."""
    return _answer(_NETWORK_PATHS, view, path)


def _voter(view: dict[str, Any]) -> bool:
    return view.get("raft_role") in ("leader", "voter")


#: Docker's ``node inspect`` paths from p2porch's node view (a Raft voter is Docker's manager)
_NODE_PATHS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "spec.availability": lambda v: v["availability"],
    "spec.role": lambda v: "manager" if _voter(v) else "worker",
    "spec.labels": lambda v: v.get("labels") or {},
    "description.hostname": lambda v: v["name"],
    "description.engine.engineversion": lambda v: v.get("engine_version") or "",
    "description.platform": lambda v: go_struct(
        "swarm.Platform",
        Architecture=(v.get("platform") or {}).get("architecture") or "",
        OS=(v.get("platform") or {}).get("os") or "linux",
    ),
    "description.resources.nanocpus": lambda v: v.get("cpu_nanos") or 0,
    "description.resources.memorybytes": lambda v: v.get("memory_bytes") or 0,
    "status.state": lambda v: v["status"],
    "status.addr": lambda v: v["address"],
    "managerstatus.leader": lambda v: v.get("raft_role") == "leader",
    "managerstatus.reachability": lambda v: (
        ("unreachable" if v["status"] == "down" else "reachable") if _voter(v) else ""
    ),
    "managerstatus.addr": lambda v: (
        f"{v['address']}:{(v.get('ports') or {}).get('raft', '')}" if _voter(v) else ""
    ),
    "createdat": _time("joined_at"),
}


def node_path(view: dict[str, Any], path: str) -> tuple[bool, Any]:
    """As :func:`docker_path`, for a node's view (``{{.Status.State}}``, ``{{.Spec.Role}}``,
    ``{{.Description.Hostname}}``, ``{{.ManagerStatus.Leader}}``)."""
    return _answer(_NODE_PATHS, view, path)


def _cluster(view: dict[str, Any]) -> dict[str, Any]:
    return view.get("cluster") or {}


#: Docker's ``info --format`` paths scripts read (``{{.Swarm.LocalNodeState}}``: ``active`` in a cluster,
#: else ``inactive``; a Raft voter is Docker's manager) from p2porch's status view
_INFO_PATHS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "swarm.localnodestate": lambda v: "active" if _cluster(v).get("ready") else "inactive",
    "swarm.nodeid": lambda v: _cluster(v).get("node_id") or "",
    "swarm.nodeaddr": lambda v: (v.get("node") or {}).get("advertise_addr") or "",
    "swarm.controlavailable": lambda v: _cluster(v).get("raft_role") == "voter",
    "swarm.cluster.id": lambda v: _cluster(v).get("cluster_id") or "",
    "swarm.nodes": lambda v: int(_cluster(v).get("nodes") or 0),
    "swarm.managers": lambda v: len(_cluster(v).get("voters") or []),
    "serverversion": lambda v: (v.get("daemon") or {}).get("version") or "",
    "name": lambda v: (v.get("node") or {}).get("name") or "",
}


def info_path(view: dict[str, Any], path: str) -> tuple[bool, Any]:
    """As :func:`docker_path`, for ``info``'s status view (``{{.Swarm.LocalNodeState}}``,
    ``{{.Swarm.NodeID}}``, ``{{.Swarm.ControlAvailable}}``, ``{{.ServerVersion}}``)."""
    return _answer(_INFO_PATHS, view, path)


#: the key naming an event's object, by event type (a task's is ``task``: ``web.2``)
_EVENT_NAMES = {
    "service": "service",
    "task": "task",
    "node": "node",
    "network": "network",
    "leader": "leader",
}


def _event_actor(event: dict[str, Any]) -> GoStruct:
    """Docker's ``.Actor`` of a p2porch event: ``ID`` the object's id (its name where the event has
    none: a leader, an access token), ``Attributes`` its name and the event's other scalar fields."""
    kind = str(event.get("type") or "")
    name = event.get(_EVENT_NAMES.get(kind, "name"))
    actor_id = event.get(f"{kind}_id") or name or ""
    shown = {k: v for k, v in event.items() if k not in ("at", "type", "action") and isinstance(v, str | int)}
    attributes = {"name": name, **shown} if name is not None else shown
    return go_struct("events.Actor", ID=str(actor_id), Attributes=string_map(attributes))


def _event_action(event: dict[str, Any]) -> str:
    return str(event.get("action") or event.get("state") or "")


#: Docker's ``events --format`` paths (``{{.Actor.ID}}``, ``{{.Actor.Attributes.name}}``, the legacy
#: ``{{.Status}}`` and ``{{.ID}}``, ``{{.Scope}}``, ``{{.Time}}``) from p2porch's event
_EVENT_PATHS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "actor": _event_actor,
    "action": _event_action,
    "status": _event_action,
    "id": lambda e: _event_actor(e)["ID"],
    "scope": lambda e: "swarm",
    "from": lambda e: "",  # events.Message's deprecated From: a swarm event's is empty
    "time": lambda e: int(e.get("at") or 0),
    "timenano": lambda e: int(float(e.get("at") or 0) * 1e9),
}


def event_path(event: dict[str, Any], path: str) -> tuple[bool, Any]:
    """As :func:`docker_path`, for a cluster event (``events --format '{{.Actor.ID}} {{.Action}}'``)."""
    return _answer(_EVENT_PATHS, event, path)
