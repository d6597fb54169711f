"""Topology-aware answers: a service name answers the client's own site's tasks first (issue 20)."""

from __future__ import annotations

from p2porch.dns.zone import TaskEntry, ZoneData, compile_zone, near_tasks, to_labels

TASKS = [
    TaskEntry(1, "10.240.1.2", site="s1"),
    TaskEntry(2, "10.240.4.2", site="s2"),
    TaskEntry(3, "10.240.2.2", site="s1", healthy=False),
    TaskEntry(4, "10.240.5.2", site="s2"),
]


def answers(zone: ZoneData, name: str) -> set[str]:
    labels = to_labels(f"{name}.p2p")
    assert labels is not None
    return set(compile_zone(zone).names[labels].a)


def test_local_tasks_only_while_the_site_has_a_healthy_one():
    assert [t.slot for t in near_tasks(TASKS, "s2")] == [2, 4]
    assert [t.slot for t in near_tasks(TASKS, "s1")] == [1]
    assert [t.slot for t in near_tasks(TASKS[2:3], "s1")] == []  # only an unhealthy one: nothing


def test_fallback_to_every_site_without_a_local_task_or_a_site():
    assert [t.slot for t in near_tasks(TASKS, "s3")] == [1, 2, 4]
    assert [t.slot for t in near_tasks(TASKS, "")] == [1, 2, 4]
    assert [t.slot for t in near_tasks([TASKS[1]], "s1")] == [2]


def test_the_zone_answers_the_service_near_and_tasks_everywhere():
    zone = ZoneData(services={"web": TASKS}, local_site="s1")
    assert answers(zone, "web") == {"10.240.1.2"}
    assert answers(zone, "tasks.web") == {"10.240.1.2", "10.240.4.2", "10.240.5.2"}
    assert answers(zone, "4.web") == {"10.240.5.2"}
    assert ZoneData.from_dict(zone.to_dict()) == zone
