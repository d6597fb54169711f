"""A job's view (``service ls``/``inspect``, and ``stack deploy``'s wait on a job dependency) counts a slot
as failed only when the scheduler, on the clock's time, gives it up: before, the view counted at the
service's ``updated_at``, where a restart ``window`` still held restarts the scheduler no longer counts."""

from __future__ import annotations

import random
from dataclasses import dataclass
from types import SimpleNamespace

from p2porch.control.service_ops import ServiceOps
from p2porch.model import Node, RestartPolicy, Service, ServiceSpec, Task
from p2porch.model.records import JobStatus
from p2porch.raft.state import EMPTY_STATE
from p2porch.scheduler import Orchestrator
from p2porch.stack.rollout import dependency_failed


@dataclass(frozen=True)
class At:
    t: float

    def now(self) -> float:
        return self.t

    def monotonic(self) -> float:
        return self.t


SPEC = ServiceSpec(
    name="migrate",
    image="busybox:1",
    mode="replicated-job",
    replicas=1,
    restart=RestartPolicy(condition="on-failure", max_attempts=2, window_s=5.0, delay_s=10.0),
)
SERVICE = Service("s1", SPEC, updated_at=100.0, job=JobStatus(iteration=1))
# the slot's third run failed at 121 after restarts at 110 and 120; its desired state is still running
FAILED = Task(
    "t3", "s1", 1, "n1", state="failed", state_at=121.0, created_at=120.0, job_iteration=1,
    restart_history=(110.0, 120.0),
)  # fmt: skip
NODES = {"n1": Node("n1", "n1")}


def test_a_slot_the_scheduler_still_restarts_is_not_failed_in_the_view() -> None:
    reconciled = Orchestrator(random.Random(1)).reconcile([SERVICE], [FAILED], list(NODES.values()), 125.0)
    assert not [a for a in reconciled.shutdowns if "no more restart" in a.reason]  # the scheduler waits
    state = EMPTY_STATE.evolve(services={"s1": SERVICE}, nodes=NODES, tasks={"t3": FAILED})
    view = ServiceOps(SimpleNamespace(), logs=None, clock=At(125.0)).view(SERVICE, state)  # type: ignore[arg-type]
    assert view["job"]["failed"] == 0 and not view["job"]["finished"]
    row = {"service": "migrate", "name": "migrate.1", "slot": 1, "state": "failed", "message": "",
           "up_to_date": True, "job_iteration": 1, "state_at": 121.0}  # fmt: skip
    assert dependency_failed("migrate", "service_completed_successfully", [row], view["job"]) == ""


def test_a_slot_counts_as_failed_while_its_window_holds_max_attempts_at_now() -> None:
    quick = Task(
        "t3", "s1", 1, "n1", state="failed", state_at=121.0, created_at=120.0, job_iteration=1,
        restart_history=(118.0, 120.0),
    )  # fmt: skip
    state = EMPTY_STATE.evolve(services={"s1": SERVICE}, nodes=NODES, tasks={"t3": quick})
    view = ServiceOps(SimpleNamespace(), logs=None, clock=At(122.0)).view(SERVICE, state)  # type: ignore[arg-type]
    assert view["job"]["failed"] == 1 and view["job"]["finished"]
