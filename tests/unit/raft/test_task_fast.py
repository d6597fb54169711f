"""The one-pass task and report decoders accept exactly what the checked ones accept, as the same records.

Random records (seeded) go through msgpack as a command carries them; then each field is corrupted in
turn (wrong type, bool for a number, negative, unknown enum value, None, missing). For every input the
fast path either declines (None) or returns what the checked decoder returns, and it never accepts an
input the checked decoder refuses; the FSM applies garbage as an error result, never an exception.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Any

import msgpack
import pytest

from p2porch.errors import ConfigError
from p2porch.model import DesiredState, RestartPolicy, Task, TaskHealth, TaskState
from p2porch.model.records import _plain
from p2porch.raft import commands as C
from p2porch.raft.fields import TaskStatusReport, checked_task, task_from_wire
from p2porch.raft.fsm import apply_batch, encode_batch
from p2porch.raft.state import EMPTY_STATE
from p2porch.raft.task_fast import evolve_task, report_fields, task_from_plain

BAD_VALUES: list[Any] = [None, True, False, -1, 1.5, "", "bogus", [], {}, ["x"], [True], 2**64 - 1]


def random_task(rng: random.Random) -> Task:
    return Task(
        task_id=f"{rng.getrandbits(96):024x}",
        service_id=f"s{rng.randrange(50)}",
        slot=rng.randrange(0, 200),
        node_id=rng.choice([None, "n1", "n22"]),
        desired_state=rng.choice(list(DesiredState)),
        state=rng.choice(list(TaskState)),
        state_at=rng.choice([0.0, rng.random() * 1e9]),
        error=rng.choice(["", "exit 1"]),
        container_id=rng.choice(["", "c" * 64]),
        address=rng.choice(["", "10.0.0.7"]),
        message=rng.choice(["", "no node fits"]),
        version=rng.randrange(1000),
        spec_version=rng.randrange(10),
        template_hash=rng.choice(["", "abcdef0123456789"]),
        created_at=rng.random() * 1e9,
        started_at=rng.choice([0.0, 5.0]),
        health=rng.choice(list(TaskHealth)),
        exit_code=rng.choice([None, 0, 137, -1]),
        restart_history=tuple(rng.random() for _ in range(rng.randrange(3))),
        stop_grace_s=rng.choice([0.0, 10.0, 2.5]),
        move_to=rng.choice([None, "n3"]),
        move_at=rng.choice([0.0, 7.0]),
        job_iteration=rng.choice([0, 0, 3]),
        restart_policy=rng.choice([None, RestartPolicy(), RestartPolicy("on-failure", 1.5, 9.0, 3, 60.0)]),
    )


def wire(value: Any) -> Any:
    """``value`` as a voter reads it: through msgpack, as a command carries it."""
    return msgpack.unpackb(msgpack.packb(value), raw=False, strict_map_key=False)


def outcome(decode: Any, value: Any) -> Any:
    try:
        return decode(value)
    except ConfigError as exc:
        return ("refused", exc.field)


def variants(plain: dict[str, Any], rng: random.Random) -> list[Any]:
    """``plain`` with each field corrupted (and removed), some ints as floats, and non-map inputs."""
    out: list[Any] = [None, [], "task", 7]
    for name in plain:
        out.append({k: v for k, v in plain.items() if k != name})
        for bad in rng.sample(BAD_VALUES, 4):
            out.append({**plain, name: bad})
        if type(plain[name]) is int:
            out.append({**plain, name: float(plain[name])})
        if type(plain[name]) is float:
            out.append({**plain, name: int(plain[name])})
    out.append({**plain, "unknown": 1})
    return out


@pytest.mark.parametrize("seed", range(30))
def test_the_fast_task_decoder_equals_the_checked_one(seed: int) -> None:
    rng = random.Random(seed)
    task = random_task(rng)
    plain = wire(task.to_dict())
    assert task_from_plain(plain) == checked_task(plain) == dataclasses.replace(task, version=0)
    for value in map(wire, variants(plain, rng)):
        fast = task_from_plain(value)
        checked = outcome(checked_task, value)
        assert fast is None or fast == checked, value  # declines, or decodes the same record
        assert outcome(task_from_wire, value) == checked


@pytest.mark.parametrize("seed", range(30))
def test_the_fast_report_decoder_equals_the_checked_one(seed: int) -> None:
    rng = random.Random(seed)
    report = {"task_id": f"t{seed}", "state": rng.choice(list(TaskState)).value, "state_at": rng.random()}
    for name in rng.sample(["error", "container_id", "address", "message", "health", "exit_code"], 3):
        report[name] = {
            "health": rng.choice(list(TaskHealth)).value,
            "exit_code": rng.choice([None, 0, 3]),
        }.get(name, "text")
    plain = wire(report)
    assert TaskStatusReport(**(report_fields(plain) or {})) == TaskStatusReport.checked(plain, 0)
    for value in map(wire, variants(plain, rng)):
        fast = report_fields(value)
        checked = outcome(lambda v: TaskStatusReport.checked(v, 0), value)
        assert fast is None or TaskStatusReport(**fast) == checked, value
        assert outcome(lambda v: TaskStatusReport.from_wire(v, 0), value) == checked


def test_evolve_task_is_replace() -> None:
    rng = random.Random(5)
    for _ in range(50):
        task = random_task(rng)
        changes = {"version": rng.randrange(9), "state": rng.choice(list(TaskState)), "message": "m"}
        assert evolve_task(task, changes) == dataclasses.replace(task, **changes)


def test_task_to_dict_keeps_its_plain_form() -> None:
    """The fast ``to_dict`` gives what the generic field walk gave (journal and snapshot bytes)."""
    rng = random.Random(9)
    for _ in range(50):
        task = random_task(rng)
        generic = {f.name: _plain(getattr(task, f.name)) for f in dataclasses.fields(task)}
        if not task.job_iteration:
            del generic["job_iteration"]
        if task.restart_policy is None:  # only tasks written since tasks carry it have one
            del generic["restart_policy"]
        else:
            default = RestartPolicy().to_dict()  # sparse: what differs from the default policy
            generic["restart_policy"] = {
                k: v for k, v in task.restart_policy.to_dict().items() if v != default[k]
            }
        assert task.to_dict() == generic and list(task.to_dict()) == list(generic)
        assert msgpack.packb(task.to_dict()) == msgpack.packb(generic)


def test_garbage_in_a_batch_is_refused_never_raised() -> None:
    rng = random.Random(11)
    state = EMPTY_STATE
    good = C.Noop(at=1.0, tag="ok").encode()
    for _ in range(300):
        task = wire(random_task(rng).to_dict())
        task[rng.choice(list(task))] = rng.choice(BAD_VALUES)
        body = {"at": 1.0, "items": [{"op": "put", "task": task, "task_version": rng.choice([None, 0, "x"])}]}
        report = {"task_id": rng.choice(["", "t", 3]), "state": rng.choice(["running", "nope", 1])}
        commands = [
            msgpack.packb({"t": "put_tasks", "v": 1, "b": body}),
            msgpack.packb(
                {"t": "report_task_states", "v": 1, "b": {"at": 1.0, "node_id": "n", "reports": [report]}}
            ),
            bytes(rng.getrandbits(8) for _ in range(rng.randrange(40))),
            good,
        ]
        new, results, _ = apply_batch(state, encode_batch(commands))
        assert new is state or new.version == state.version + 1
        assert len(results) == 4 and results[3]["ok"]
