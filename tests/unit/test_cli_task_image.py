"""Docker's ``service ps --format '{{.Image}}'``: each task's own image (an old task of the spec before
the last update shows that spec's image), which the parse-time template check refused before it existed."""

from __future__ import annotations

import dataclasses
from typing import Any

from p2porch.cli import service_read as cli_service_read
from p2porch.cli.main import main
from p2porch.control.task_specs import task_image
from p2porch.model import Service, ServiceSpec, Task

V1 = ServiceSpec(name="web", image="app:1", replicas=2)
V2 = dataclasses.replace(V1, image="app:2")
V3 = dataclasses.replace(V1, image="app:3")


def task_of(spec: ServiceSpec, slot: int) -> Task:
    return Task(f"t{slot}", "s1", slot, template_hash=spec.template_hash())


def test_a_tasks_image_is_the_one_of_the_spec_it_was_made_from() -> None:
    service = Service("s1", V2, previous_spec=V1)
    assert task_image(task_of(V2, 1), service) == "app:2"
    assert task_image(task_of(V1, 2), service) == "app:1"  # an old task during the rollout
    assert task_image(task_of(V3, 3), service) == ""  # a spec older than the previous one
    assert task_image(task_of(V1, 1), Service("s1", V1)) == "app:1"


class TasksApi:
    def get(self, path: str, **_: Any) -> Any:
        if path.endswith("/usage"):
            return {}
        if path == "/services/web":
            return {"spec": {"name": "web", "image": "app:2"}}
        task = {"node": "n1", "desired_state": "running", "state": "running", "state_at": 0.0, "error": ""}
        return [
            {**task, "id": "a1", "name": "web.1", "slot": 1, "message": "", "image": "app:2"},
            {**task, "id": "b2", "name": "web.2", "slot": 2, "message": "", "image": "app:1"},
        ]


def test_service_ps_format_takes_the_tasks_image(monkeypatch, capsys) -> None:
    monkeypatch.setattr(cli_service_read, "client_for", lambda args: TasksApi())
    assert main(["service", "ps", "web", "--format", "{{.Name}} {{.Image}}"]) == 0
    assert capsys.readouterr().out.splitlines() == ["web.1 app:2", "web.2 app:1"]


def test_a_table_format_names_the_tasks_image_in_its_header(monkeypatch, capsys) -> None:
    """``table {{.Name}}\\t{{.Image}}``: the header row is rendered from the field names too, the extra
    field's included (it was refused at render time while the rows rendered)."""
    monkeypatch.setattr(cli_service_read, "client_for", lambda args: TasksApi())
    assert main(["service", "ps", "web", "--format", "table {{.Name}}\\t{{.Image}}"]) == 0
    assert capsys.readouterr().out.splitlines() == ["NAME      IMAGE", "web.1     app:2", "web.2     app:1"]
