"""What the autoscaler loop derives from committed state: policy, usage as percent of limits, rolling,
the committed last step (pure)."""

from __future__ import annotations

from dataclasses import replace

from p2porch.control.events import describe_change
from p2porch.leader.autoscale import Decision
from p2porch.leader.autoscale_inputs import (
    is_rolling,
    last_scale_at,
    limits_of,
    policy_of,
    scale_command,
    service_usage,
)
from p2porch.model import Node, NodeRole, ServiceSpec, Task
from p2porch.raft import commands as C
from p2porch.raft import fsm
from p2porch.raft.state import ClusterState

AUTO = {"min": 1, "max": 5, "cpu_percent": 50, "memory_percent": 80}


def spec(**extra) -> ServiceSpec:
    data = {"name": "web", "image": "busybox", "replicas": 2, "autoscale": AUTO, **extra}
    return ServiceSpec.from_dict(data)


def state_with(tasks: list[Task], s: ServiceSpec) -> ClusterState:
    state = ClusterState()
    state, _, _ = fsm.apply(state, C.InitCluster(at=0.0, cluster_id="c").encode())
    for n in ("n1", "n2"):
        node = Node(node_id=n, name=n, addr="10.0.0.1", raft_port=7947, gossip_port=7946, role=NodeRole.VOTER)
        state, _, _ = fsm.apply(state, C.AddNode(at=0.0, node=node).encode())
    state, _, _ = fsm.apply(state, C.CreateService(at=0.0, service_id="s1", spec=s).encode())
    items = tuple(C.TaskPut(t, task_version=0) for t in tasks)
    state, result, _ = fsm.apply(state, C.PutTasks(at=0.0, items=items).encode())
    assert len(state.tasks) == len(tasks), result
    return state


def task(n: int, *, state: str = "running", template: str = "", node: str = "n1") -> Task:
    return Task(f"t{n}", "s1", n, node_id=node, state=state, template_hash=template)  # type: ignore[arg-type]


def test_limits_prefer_the_limit_then_the_reservation() -> None:
    assert limits_of(spec(limit_cpu_nanos=500_000_000, reserve_cpu_nanos=100_000_000)) == (0.5, None)
    assert limits_of(spec(reserve_cpu_nanos=250_000_000, limit_memory_bytes=1 << 20)) == (0.25, 1 << 20)
    assert policy_of(spec()).cpu_percent == 50
    assert policy_of(ServiceSpec.from_dict({"name": "w", "image": "b"})) is None


def test_service_usage_is_the_mean_percent_of_limit_over_tasks_with_a_full_window() -> None:
    s = spec(limit_cpu_nanos=500_000_000, limit_memory_bytes=100)
    st = state_with([task(1), task(2, node="n2"), task(3, state="starting")], s)
    reports = {
        "n1": {
            "window_s": 30,
            "tasks": [{"task_id": "t1", "full": True, "cpu_cores": 0.5, "memory_bytes": 50}],
        },
        "n2": {
            "window_s": 30,
            "tasks": [{"task_id": "t2", "full": True, "cpu_cores": 0.25, "memory_bytes": 30}],
        },
    }
    usage = service_usage(st, "s1", s, reports)
    assert usage is not None
    assert (usage.tasks_running, usage.tasks_reporting, usage.window_s) == (2, 2, 30)
    assert usage.cpu_percent == 75.0 and usage.memory_percent == 40.0
    # a node that does not answer, or a task without a full window, is missing data
    partial = service_usage(st, "s1", s, {"n1": reports["n1"], "n2": None})
    assert partial is not None and partial.tasks_reporting == 1
    young = {
        "n1": reports["n1"],
        "n2": {"window_s": 30, "tasks": [{**reports["n2"]["tasks"][0], "full": False}]},
    }
    assert service_usage(st, "s1", s, young).tasks_reporting == 1
    # no limit and no reservation: no percent, so the recommender holds on missing data
    assert service_usage(st, "s1", spec(), reports).cpu_percent is None


def test_rolling_while_a_task_has_an_older_template() -> None:
    s = spec()
    assert not is_rolling(state_with([task(1, template=s.template_hash())], s), "s1", s)
    assert is_rolling(state_with([task(1, template=s.template_hash()), task(2, template="old")], s), "s1", s)


def test_a_step_is_stored_with_replicas_survives_a_user_update_and_is_an_event() -> None:
    s = spec()
    st = state_with([], s)
    service = st.services["s1"]
    assert last_scale_at(service) == 0.0
    decision = Decision(100.0, 2, 4, 4, "cpu 95 % of limit over 30 s, target 50 %", {"cpu_percent": 95.0})
    command = scale_command(service, decision)
    assert command.spec.replicas == 4 and command.service_version == service.version
    after, result, changes = fsm.apply(st, command.encode())
    assert "error" not in result, result
    assert last_scale_at(after.services["s1"]) == 100.0 and after.services["s1"].spec.replicas == 4
    (change,) = [c for c in changes if c.kind == "service"]
    event = describe_change(change, service, after, 100.0)
    assert event is not None and event["action"] == "autoscaled"
    assert event["text"] == "2 -> 4: cpu 95 % of limit over 30 s, target 50 %"
    assert event["inputs"] == {"cpu_percent": 95.0}
    # a stale version is refused (another leader or a user got there first): nothing applied twice
    again, result, _ = fsm.apply(after, command.encode())
    assert "error" in result and again.services["s1"].version == after.services["s1"].version
    # a user's update keeps the record (the delays do not restart), and is an ordinary update event
    svc = after.services["s1"]
    user = C.UpdateService.of(svc, at=101.0, spec=replace(svc.spec, image="x"))
    later, _, changes = fsm.apply(after, user.encode())
    assert later.services["s1"].autoscale_last == svc.autoscale_last
    (change,) = [c for c in changes if c.kind == "service"]
    assert describe_change(change, svc, later, 101.0)["action"] == "updated"
    # the record survives a snapshot round trip
    from p2porch.model import Service

    assert Service.from_dict(later.services["s1"].to_dict()) == later.services["s1"]


def test_usage_over_a_limit_counts_as_the_limit_so_100_percent_of_a_50_target_doubles() -> None:
    """h52a: one task limited to 0.2 CPU, burning, read 100.02 % of its limit over the window (CPU time
    accounted at the window's edges); ceil(1 x 100.02 / 50) = 3, so the event said ``1 -> 3: cpu 100 %
    of limit ..., target 50 %``. A task cannot use more than its limit: it counts as 100 %, so 1 -> 2.
    Of a reservation (no limit) usage above it is real and kept."""
    from p2porch.leader.autoscale import recommend

    limited = spec(limit_cpu_nanos=200_000_000, limit_memory_bytes=100)
    st = state_with([task(1)], limited)
    reports = {
        "n1": {
            "window_s": 30,
            "tasks": [{"task_id": "t1", "full": True, "cpu_cores": 0.20004, "memory_bytes": 101}],
        }
    }
    usage = service_usage(st, "s1", limited, reports)
    assert usage is not None and (usage.cpu_percent, usage.memory_percent) == (100.0, 100.0)
    policy = policy_of(limited)
    assert policy is not None
    decision = recommend(policy, 1, usage, (), 100.0, last_scale_at=0.0, observing_since=0.0)
    assert decision.desired == 2, decision.reason
    reserved = spec(reserve_cpu_nanos=200_000_000)
    over = service_usage(state_with([task(1)], reserved), "s1", reserved, reports)
    assert over is not None and over.cpu_percent is not None and over.cpu_percent > 100.0


def test_a_group_counts_up_to_its_members_limits_and_without_cap_when_one_has_none() -> None:
    """r52g: a task group's usage is the sum of its containers; it was capped at the main container's
    limit alone, so a main limited to 0.2 CPU beside a sidecar, 0.35 CPU in all, read 100 % (1 -> 2 at
    a 50 % target) where its load needs 175 % (1 -> 4). The cap is the sum of the main's and every
    sidecar's limits; a sidecar without a limit leaves the usage uncapped."""
    from p2porch.leader.autoscale import recommend

    side = {"name": "log", "image": "busybox", "limit_cpu_nanos": 200_000_000, "limit_memory_bytes": 100}
    group = spec(limit_cpu_nanos=200_000_000, limit_memory_bytes=100, sidecars=[side])
    row = {"task_id": "t1", "full": True, "cpu_cores": 0.35, "memory_bytes": 150}
    reports = {"n1": {"window_s": 30, "tasks": [row]}}
    usage = service_usage(state_with([task(1)], group), "s1", group, reports)
    assert usage is not None and (usage.cpu_percent, usage.memory_percent) == (175.0, 150.0)
    policy = policy_of(group)
    assert policy is not None
    decision = recommend(policy, 1, usage, (), 100.0, last_scale_at=0.0, observing_since=0.0)
    assert decision.desired == 4, decision.reason
    # over the group's limits, it counts as their sum
    over = {"n1": {"window_s": 30, "tasks": [{**row, "cpu_cores": 0.41, "memory_bytes": 201}]}}
    capped = service_usage(state_with([task(1)], group), "s1", group, over)
    assert capped is not None and (capped.cpu_percent, capped.memory_percent) == (200.0, 200.0)
    # a sidecar without a limit: nothing caps the task's usage
    free = spec(limit_cpu_nanos=200_000_000, sidecars=[{"name": "log", "image": "busybox"}])
    loose = service_usage(state_with([task(1)], free), "s1", free, over)
    assert loose is not None and loose.cpu_percent is not None and loose.cpu_percent > 200.0
    from p2porch.leader.autoscale_inputs import usage_caps

    assert (usage_caps(group), usage_caps(free)) == ((0.4, 200), (None, None))


def test_the_autoscale_text_names_the_reservation_when_the_percent_is_of_it() -> None:
    """r52g: a task with a reservation and no limit said "cpu 250 % of limit"; it is of the reservation."""
    from p2porch.leader.autoscale import recommend

    reserved = spec(reserve_cpu_nanos=200_000_000, autoscale={"min": 1, "max": 5, "cpu_percent": 50})
    reports = {"n1": {"window_s": 30, "tasks": [{"task_id": "t1", "full": True, "cpu_cores": 0.5}]}}
    usage = service_usage(state_with([task(1)], reserved), "s1", reserved, reports)
    policy = policy_of(reserved)
    assert usage is not None and policy is not None
    decision = recommend(policy, 1, usage, (), 100.0, last_scale_at=0.0, observing_since=0.0)
    assert decision.reason == "cpu 250 % of reservation over 30 s, target 50 %", decision.reason
