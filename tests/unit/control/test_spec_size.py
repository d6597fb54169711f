"""A service spec's size limit (raft/spec_size.py) at its boundary, over the real FSM in memory: a spec of
exactly MAX_SPEC_BYTES encoded is created, updated to another of that size and rolled back (each
update's Raft command carries it and the spec before it); one byte more is refused at create, at update
and in a stack, naming the field and the limit, with nothing written. Before: a 9 MiB spec was created
and every later update was refused by the FSM ("command of N bytes exceeds 16777216")."""

from __future__ import annotations

import httpx
import pytest

from p2porch.api.server import build_app
from p2porch.control.routes import service_endpoints
from p2porch.control.stack_ops import StackOps
from p2porch.errors import ConfigError
from p2porch.model import ServiceSpec
from p2porch.raft.spec_size import MAX_SPEC_BYTES, check_spec_size, spec_bytes
from p2porch.stack import load_stack
from p2porch.wire import MAX_FRAME_BYTES


def command_of(name: str, size: int, fill: str = "x") -> list[str]:
    """One argument that makes the spec ``{name, image, command}`` exactly ``size`` bytes encoded."""
    probe = fill * 100_000  # past 65,535: msgpack's str header is 5 bytes whatever the length
    base = spec_bytes(ServiceSpec.from_dict({"name": name, "image": "busybox", "command": [probe]}))
    return [fill * (len(probe) + size - base)]


def spec_of(name: str, size: int, fill: str = "x") -> dict[str, object]:
    spec = {"name": name, "image": "busybox", "command": command_of(name, size, fill)}
    assert spec_bytes(ServiceSpec.from_dict(spec)) == size
    return spec


def test_two_specs_at_the_limit_leave_room_in_one_raft_entry():
    assert 2 * MAX_SPEC_BYTES + 1024 * 1024 <= MAX_FRAME_BYTES
    check_spec_size(ServiceSpec.from_dict(spec_of("web", MAX_SPEC_BYTES)))
    with pytest.raises(ConfigError) as refused:
        check_spec_size(ServiceSpec.from_dict(spec_of("web", MAX_SPEC_BYTES + 1)))
    assert refused.value.field == "command"
    assert refused.value.message.startswith(
        f"the service spec is {MAX_SPEC_BYTES + 1} bytes encoded, more than the limit of 7340032 (7 MiB)"
    )


async def test_a_spec_at_the_limit_is_created_updated_and_rolled_back(ops, manager):
    await ops.create(spec_of("web", MAX_SPEC_BYTES))
    await ops.update("web", {"command": command_of("web", MAX_SPEC_BYTES, "y")})  # both specs: ~14 MiB
    service = ops.find("web")
    assert service.spec.command[0][0] == "y" and service.previous_spec is not None
    assert service.previous_spec.command[0][0] == "x"
    await ops.rollback("web")
    assert ops.find("web").spec.command[0][0] == "x"
    with pytest.raises(ConfigError, match="7340042 bytes encoded"):  # a limit: `replicas: 3` adds 10 bytes
        await ops.scale("web", 3)
    await ops.update("web", {"command": command_of("web", MAX_SPEC_BYTES - 10)})
    await ops.scale("web", 3)
    assert manager.commands == ["create_service"] + ["update_service"] * 4


async def test_one_byte_past_the_limit_is_a_400_naming_the_field_at_create_and_update(ops, manager):
    transport = httpx.ASGITransport(app=build_app(service_endpoints(ops)))
    async with httpx.AsyncClient(transport=transport, base_url="http://p2porch/v1") as client:
        response = await client.post("/services", json=spec_of("web", MAX_SPEC_BYTES + 1))
        error = response.json()
        assert response.status_code == 400 and error["field"] == "command", error
        assert "more than the limit of 7340032 (7 MiB)" in error["message"] and manager.writes == 0
        assert (await client.post("/services", json={"name": "web", "image": "busybox"})).status_code == 200
        over = {"command": command_of("web", MAX_SPEC_BYTES + 1)}
        response = await client.post("/services/web/update", json=over)
        assert response.status_code == 400 and response.json()["field"] == "command", response.json()
    assert manager.writes == 1 and ops.find("web").spec.command == ()


async def test_a_stack_service_past_the_limit_is_refused_by_its_compose_key(ops, manager):
    # a Compose file is at most 4 MiB: an anchor of 1 MiB used 8 times makes an 8 MiB command
    mib = "x" * (1024 * 1024)
    aliases = ", ".join(["*big"] * 8)
    text = f"x-big: &big {mib}\nservices:\n  web:\n    image: busybox\n    command: [{aliases}]\n"
    with pytest.raises(ConfigError, match="more than the limit of 7340032") as refused:
        await StackOps(ops).apply(load_stack("st", text, lambda path: ""))
    assert refused.value.field == "services.web" and manager.writes == 0


async def test_a_stack_update_is_measured_as_it_stores_the_spec_the_file_whole(ops, manager):
    """The plan measures a service's spec as the update stores it. A redeploy replaces the whole spec
    (review r52d, 3: docker stack deploy sends the whole ServiceSpec), so a ``service update`` of its log
    options, which the file does not have, goes: a file under the limit deploys. Before, the deploy merged
    the file into the stored spec, kept those options and refused the stack as too large."""
    await StackOps(ops).apply(load_stack("st", "services:\n  web:\n    image: busybox\n", lambda path: ""))
    await ops.update("st-web", {"container": {"log_opts": {"k": "v" * (1536 * 1024)}}})
    mib = "x" * (1024 * 1024)
    aliases = ", ".join(["*big"] * 6)  # a 6 MiB command: the file's spec is under the limit
    text = (
        f"x-big: &big {mib}\nservices:\n  api:\n    image: busybox\n"
        f"  web:\n    image: busybox\n    command: [{aliases}]\n"
    )
    definition = load_stack("st", text, lambda path: "")
    check_spec_size(ServiceSpec.from_dict(definition.by_name()["st-web"].spec))
    await StackOps(ops).apply(definition)
    stored = ops.find("st-web").spec
    assert len(stored.command) == 6 and stored.container.log_opts == ()
