"""A spec committed before Go's template engine, with a ``{{`` in an environment value or a mount source
that is no Swarm template (a Compose application's ``{{ .Entry.Image }}``, which that version passed to
the container as written): the journal entry and the snapshot still load it as a valid service, and its
task gets the text as then (model/committed.py ``stored_spec``, templates.py ``stored_text``). Before,
today's check refused the stored spec: the service was recorded invalid and ran nothing until redeployed."""

from __future__ import annotations

from p2porch.agent.dockerspec import create_request
from p2porch.agent.model import template_error
from p2porch.member.views import agent_assignments
from p2porch.model import Node, Task, TaskState
from p2porch.raft import commands as C
from p2porch.raft.fsm import apply
from p2porch.raft.state import EMPTY_STATE, ClusterState
from p2porch.wire import pack

#: a spec as the version before Go's engine wrote it (``to_dict``'s layout): its values as the file gave them
OLD_SPEC = {
    "name": "diun",
    "image": "busybox",
    "env": {
        "DIUN_TEMPLATE": "{{ .Entry.Image }} is out",  # diun's own template: passed as written then
        "MIXED": "{{.Node.Hostname}}-{{.Foo}}",  # the old placeholder expanded, the unknown one kept
        "SWARM": "{{.Task.Slot}}",
        "WATCHTOWER": "{{range .}}{{.Message}}{{println}}{{end}}",
    },
    "mounts": [{"type": "bind", "source": "/srv/{{.Service.Name}}/{{ .Env }}", "target": "/data"}],
    "sidecars": [{"name": "side", "image": "busybox", "env": {"TPL": "{{ .Entry.Image }}"}}],
}
EXPANDED = {
    "DIUN_TEMPLATE": "{{ .Entry.Image }} is out",
    "MIXED": "n1-{{.Foo}}",
    "SWARM": "1",
    "WATCHTOWER": "{{range .}}{{.Message}}{{println}}{{end}}",
}


def ok(state: ClusterState, command: bytes) -> ClusterState:
    new, result, _ = apply(state, command)
    assert result["ok"], result
    return new


def old_cluster() -> ClusterState:
    """The journal as the old version wrote it: the spec's values raw in the create entry."""
    s = ok(EMPTY_STATE, C.InitCluster(at=1.0, cluster_id="c").encode())
    node = Node("id1", "n1", "10.0.0.1", 7947, 7946, role="voter", cpu_nanos=10**9, memory_bytes=2**30)  # type: ignore[arg-type]
    s = ok(s, C.AddNode(at=1.0, node=node).encode())
    s = ok(s, pack({"t": "create_service", "v": 1, "b": {"at": 2.0, "service_id": "s1", "spec": OLD_SPEC}}))
    task = Task("t1", "s1", 1, "id1", state=TaskState.ASSIGNED)
    return ok(s, C.PutTasks(at=3.0, items=(C.TaskPut(task, task_version=0),)).encode())


def _task_env(state: ClusterState) -> dict[str, str]:
    (assignment,) = agent_assignments(state, "id1", "n1", "p2porch")
    assert template_error(assignment) == ""
    _, body = create_request(assignment)
    assert [m["Source"] for m in body["HostConfig"]["Mounts"]] == ["/srv/diun/{{ .Env }}"]
    return {k: v for k, v in (e.split("=", 1) for e in body["Env"]) if k in EXPANDED}


def test_an_old_journal_entry_keeps_its_application_templates_as_text() -> None:
    state = old_cluster()
    service = state.services["s1"]
    assert service.invalid == "" and service.spec.image == "busybox"  # before: invalid, a placeholder
    assert dict(service.spec.env)["SWARM"] == "{{.Task.Slot}}"  # a Swarm template stays one
    assert _task_env(state) == EXPANDED
    assert dict(service.spec.sidecars[0].env)["TPL"] == '{{"{{"}} .Entry.Image }}'


def test_an_old_snapshot_loads_the_same_and_is_written_back_in_todays_form() -> None:
    dumped = old_cluster().to_dict()
    (stored,) = dumped["services"]
    stored["spec"] = dict(OLD_SPEC)  # the snapshot as the old version wrote it
    loaded = ClusterState.from_dict(dumped)
    assert loaded.services["s1"].invalid == ""
    assert _task_env(loaded) == EXPANDED
    again = loaded.to_dict()
    assert ClusterState.from_dict(again) == loaded  # today's form reads back unchanged
    assert again["services"][0]["spec"]["env"]["DIUN_TEMPLATE"] == '{{"{{"}} .Entry.Image }} is out'
