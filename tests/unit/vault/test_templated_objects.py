"""Templated secrets and configs (``--template-driver golang``, Compose ``template_driver``): the driver is
the object's (CLI, API, Raft command, FSM record), and a node renders the value for each task when it
writes the task's file (member/task_files.py)."""

from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from p2porch.cli import main
from p2porch.cli import secret as cli_secret
from p2porch.cli import stack as cli_stack
from p2porch.control.secret_ops import SecretOps, secret_view
from p2porch.errors import ConfigError, ConflictError
from p2porch.member.task_files import TaskFacts, TaskFiles
from p2porch.membership.token import new_token
from p2porch.model import Task
from p2porch.model.filerefs import parse_file_ref
from p2porch.model.records import SecretRecord
from p2porch.model.templates import TemplateContext
from p2porch.raft import commands as C
from p2porch.raft.fsm import apply
from p2porch.raft.state import EMPTY_STATE, ClusterState
from p2porch.testing.memstore import MemoryManager
from p2porch.vault import digest_of, seal_value

AT = 1000.0
KEY = new_token().derive("secrets")


def put(state: ClusterState, kind: str, name: str, value: bytes, version: int = 1, driver: str = "") -> Any:
    sealed = seal_value(KEY, kind, f"id-{name}", version, value).blob
    command = C.PutSecret(
        at=AT,
        kind=kind,
        name=name,
        object_id=f"id-{name}",
        secret_version=version,
        sealed=sealed,
        digest=digest_of(KEY, value),
        size=len(value),
        template_driver=driver,
    )
    return apply(state, command.encode())


def initialised() -> ClusterState:
    return apply(EMPTY_STATE, C.InitCluster(at=AT, cluster_id="c" * 16).encode())[0]


def test_the_driver_travels_in_the_command_and_stays_with_the_record() -> None:
    state, result, _ = put(initialised(), "config", "app", b"{{.Task.Slot}}", driver="golang")
    record = state.secrets["config:app"]
    assert result["ok"] and record.template_driver == "golang"
    assert ClusterState.from_dict(state.to_dict()).secrets["config:app"].template_driver == "golang"
    assert secret_view(record)["template_driver"] == "golang"
    # a new version keeps the object's driver: one naming another is refused
    _, result, _ = put(state, "config", "app", b"x", version=2, driver="")
    assert isinstance(C.error_of(result), ConflictError) and "template driver golang" in str(result)
    state, result, _ = put(state, "config", "app", b"{{.Node.ID}}", version=2, driver="golang")
    assert result["ok"] and state.secrets["config:app"].current == 2


def test_an_object_without_a_driver_encodes_as_before() -> None:
    plain = C.PutSecret(
        at=AT, kind="secret", name="a", object_id="i", secret_version=1, sealed=b"s", digest="d", size=1
    )
    assert "template_driver" not in plain.body()
    assert "template_driver" not in SecretRecord("secret", "a", "i").to_dict()
    body = {**plain.body(), "template_driver": "jinja"}
    with pytest.raises(ConfigError, match="template_driver"):
        C.PutSecret.from_body(body, 1, at=AT)


class Manager:
    """``SecretOps``' view of the node's manager over the in-memory FSM."""

    def __init__(self) -> None:
        self.memory = MemoryManager()

    def require_store(self) -> Any:
        return self.memory

    async def write(self, command: bytes) -> object:
        return await self.memory.write(command)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def test_the_api_takes_golang_refuses_others_and_keeps_the_driver_on_update() -> None:
    manager = Manager()
    ops = SecretOps(manager, lambda: (0, KEY))  # type: ignore[arg-type]
    with pytest.raises(ConfigError) as refused:
        await ops.create("config", {"name": "c", "data": b64(b"x"), "template_driver": "jinja"})
    assert refused.value.field == "template_driver" and manager.memory.writes == 0
    view = await ops.create(
        "config", {"name": "c", "data": b64(b"{{.Task.Slot}}"), "template_driver": "golang"}
    )
    assert view["template_driver"] == "golang"
    with pytest.raises(ConfigError) as refused:  # a stack file that dropped the driver: said, not ignored
        await ops.update("config", "c", {"data": b64(b"y"), "template_driver": ""})
    assert (
        refused.value.field == "template_driver" and "set when the config is created" in refused.value.message
    )
    view = await ops.update("config", "c", {"data": b64(b"{{.Node.ID}}")})  # `config update` keeps it
    assert view["version"] == 2 and view["template_driver"] == "golang"


def test_the_cli_flag_refuses_an_unknown_driver_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "v").write_text("{{.Task.Slot}}")
    sent: list[Any] = []

    class Client:
        def post(self, path: str, body: Any) -> Any:
            sent.append((path, body))
            return {"id": "abc"}

    monkeypatch.setattr(cli_secret, "client_for", lambda args: Client())
    assert main(["config", "create", "--template-driver", "jinja", "c", str(tmp_path / "v")]) == 2
    assert capsys.readouterr().err.startswith("p2porch: error: --template-driver: unknown template driver")
    assert sent == []
    assert main(["config", "create", "--template-driver", "golang", "c", str(tmp_path / "v")]) == 0
    assert sent[0][1]["template_driver"] == "golang"
    assert main(["secret", "create", "s", str(tmp_path / "v")]) == 0
    assert "template_driver" not in sent[1][1]


def test_a_stack_deploy_creates_and_updates_with_the_files_driver(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    compose = tmp_path / "docker-compose.yml"
    compose.write_text(
        "services:\n  web:\n    image: busybox\n    configs: [page, plain]\n"
        "configs:\n  page:\n    content: '{{.Task.Slot}}'\n    template_driver: golang\n"
        "  plain:\n    content: x\n"
    )
    posts: dict[str, Any] = {}
    plain_driver = ""

    class Api:
        def get(self, path: str, **_: Any) -> Any:
            if path == "/objects/config":
                return [{"name": "shop-plain", "services": [], "template_driver": plain_driver}]
            if path.startswith("/objects/"):
                return []
            return {"name": path.split("/")[2], "version": None}

        def post(self, path: str, body: Any) -> Any:
            posts[path] = body
            if path.startswith("/stacks/"):
                return {"stack": "shop", "services": [{"name": "shop_web", "action": "created", "id": "x"}]}
            return {"name": "n", "version": 1, "unchanged": True}

    monkeypatch.setattr(cli_stack, "client_for", lambda args: Api())
    assert main(["stack", "deploy", "-d", "-c", str(compose), "shop"]) == 0
    assert posts["/objects/config"]["template_driver"] == "golang"  # shop-page created
    assert posts["/objects/config/shop-plain/update"]["template_driver"] == ""
    # an existing object made with another driver: refused by its field before anything is written
    posts.clear()
    plain_driver = "golang"
    assert main(["stack", "deploy", "-d", "-c", str(compose), "shop"]) == 2
    assert "configs.plain.template_driver: config 'shop-plain' exists with template driver golang" in (
        capsys.readouterr().err
    )
    assert posts == {}


def tmpfs_root(name: str) -> str:
    if not os.path.isdir("/dev/shm"):
        pytest.skip("needs /dev/shm (a tmpfs)")
    return os.path.join("/dev/shm", f"p2porch-test-{name}-{os.getpid()}")


def test_a_task_gets_its_templated_files_rendered_for_it() -> None:
    state = initialised()
    state = put(state, "secret", "pw", b"hunter2")[0]
    page = b'slot {{.Task.Slot}} on {{.Node.Hostname}}, {{env "MODE"}}, pw={{secret "pw"}}\n'
    state = put(state, "config", "page", page, driver="golang")[0]
    state = put(state, "config", "raw", b"{{.Task.Slot}}")[0]  # no driver: as written
    me = (os.getuid(), os.getgid())
    refs = [
        ("secret", parse_file_ref(f"src=pw,version=1,uid={me[0]},gid={me[1]}", kind="secret", fieldname="s")),
        (
            "config",
            parse_file_ref(
                f"src=page,target=/page,version=1,uid={me[0]},gid={me[1]}", kind="config", fieldname="c"
            ),
        ),
        (
            "config",
            parse_file_ref(
                f"src=raw,target=/raw,version=1,uid={me[0]},gid={me[1]}", kind="config", fieldname="c"
            ),
        ),
    ]
    facts = TaskFacts(TemplateContext("s1", "web", "n7", "host-7", "t1", 4), {"MODE": "prod"})
    root = tmpfs_root("templated")
    try:
        mounts, error = TaskFiles(root, {0: KEY}).prepare(
            state, Task("t1", "s1", 4, node_id="n7"), refs, facts
        )
        assert error == ""
        files = {m.target: Path(m.source).read_bytes() for m in mounts}
        assert files == {
            "/run/secrets/pw": b"hunter2",
            "/page": b"slot 4 on host-7, prod, pw=hunter2\n",
            "/raw": b"{{.Task.Slot}}",
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_a_template_swarm_would_fail_fails_the_task_without_a_file_or_its_text() -> None:
    state = initialised()
    state = put(state, "secret", "tpl", b'password=topsecret {{secret "missing"}}', driver="golang")[0]
    ref = parse_file_ref("src=tpl,version=1", kind="secret", fieldname="s")
    root = tmpfs_root("template-error")
    try:
        facts = TaskFacts(TemplateContext("s1", "web", "n7", "host-7", "t1", 1), {})
        files = TaskFiles(root, {0: KEY})
        mounts, error = files.prepare(state, Task("t1", "s1", 1), [("secret", ref)], facts)
        assert mounts == () and (
            "secret 'tpl' (template_driver golang): line 1, column 21: error calling secret: secret target "
            "'missing' not found" in error
        )
        assert "topsecret" not in error and not os.path.exists(os.path.join(root, "t1"))
        _, error = files.prepare(state, Task("t1", "s1", 1), [("secret", ref)])  # no facts: none invented
        assert error == "secret 'tpl' is templated: no task facts were given to render it"
    finally:
        shutil.rmtree(root, ignore_errors=True)
