"""`service ls` and `status` say why a service runs fewer tasks than desired when its tasks fail (an image
the engine cannot pull): the latest error of the current spec's failed tasks, pointing to `service ps`."""

from __future__ import annotations

from p2porch.cli.cluster import render_status
from p2porch.cli.service_rows import service_row
from p2porch.model import Node, Task
from p2porch.raft import commands as C
from p2porch.testing.memstore import MemoryManager

PULL_ERROR = (
    'Get "https://registry-1.docker.io/v2/": dial tcp: lookup registry-1.docker.io on 10.255.255.53:53: '
    "read udp 10.39.0.1:59163->10.255.255.53:53: i/o timeout"
)


async def put(manager: MemoryManager, *tasks: Task) -> None:
    await manager.write(C.PutTasks(at=3.0, items=tuple(C.TaskPut(t, task_version=0) for t in tasks)).encode())


async def test_a_service_whose_tasks_fail_says_why_in_ls_and_status(ops, manager):
    created = await ops.create({"name": "ghost", "image": "nosuch/image:1.0"})
    sid = created["id"]
    current = manager.state.services[sid].spec.template_hash()
    await put(
        manager,
        Task("old", sid, 1, None, "shutdown", "failed", 5.0, error="older spec", template_hash="x"),
        Task("f1", sid, 1, None, "shutdown", "failed", 10.0, error="first", template_hash=current),
        Task("f2", sid, 1, None, "shutdown", "failed", 20.0, error=PULL_ERROR, template_hash=current),
        Task("now", sid, 1, None, "running", "starting", 21.0, template_hash=current),
    )
    (view,) = ops.list_all()
    assert view["failing"] == {"count": 2, "error": PULL_ERROR}  # the current spec's, latest first
    row = service_row(view)
    assert row[3] == "0/1"
    assert row[6].startswith('2 failed: Get "https://registry-1.docker.io/v2/": dial tcp')
    assert row[6].endswith("... (service ps ghost)") and len(row[6]) < 120  # ps shows the whole error
    status = render_status(
        {
            "node": {"name": "n1", "advertise_addr": "10.39.0.1"},
            "daemon": {"pid": 1, "version": "0", "uptime_s": 1},
            "cluster": {"cluster_id": "c", "has_quorum": True, "voters": []},
            "services": [view],
        }
    )
    assert "service:  ghost 0/1  2 failed: Get" in status and "(service ps ghost)" in status


async def test_nothing_is_said_while_nothing_is_missing_or_nothing_failed(ops, manager):
    created = await ops.create({"name": "web", "image": "busybox"})
    sid = created["id"]
    current = manager.state.services[sid].spec.template_hash()
    await put(manager, Task("t1", sid, 1, None, "running", "starting", 1.0, template_hash=current))
    (view,) = ops.list_all()
    assert view["failing"] is None and service_row(view)[6] == ""  # pulling: no error known yet
    # running counts only on a node that reports it (task_liveness.py): t2 is on a ready node
    await manager.write(C.AddNode(at=1.0, node=Node("a", "n1", "10.0.0.1", 7947, 7946)).encode())
    await put(
        manager,
        Task("f1", sid, 1, None, "shutdown", "failed", 2.0, error="boom", template_hash=current),
        Task("t2", sid, 1, "a", "running", "running", 3.0, template_hash=current),
    )
    (view,) = ops.list_all()
    assert (view["running"], view["failing"]) == (1, None)  # 1/1 now: the past failure is not news


async def test_tasks_stopped_for_failing_their_health_check_are_said_as_failed(ops, manager):
    """The h49 walk: a service whose tasks kept failing their health check showed `0/1` in `service ls`
    with nothing said (its tasks end `shutdown`, stopped `unhealthy`, not `failed`)."""
    created = await ops.create({"name": "sick", "image": "busybox"})
    sid = created["id"]
    current = manager.state.services[sid].spec.template_hash()
    await put(
        manager,
        Task("u1", sid, 1, None, "shutdown", "shutdown", 10.0, message="unhealthy", template_hash=current),
        Task(
            "old", sid, 1, None, "shutdown", "shutdown", 11.0, message="rolling update", template_hash=current
        ),
        Task("now", sid, 1, None, "running", "starting", 12.0, template_hash=current),
    )
    (view,) = ops.list_all()
    assert view["failing"] == {"count": 1, "error": "unhealthy"}
    assert service_row(view)[6] == "1 failed: unhealthy (service ps sick)"
