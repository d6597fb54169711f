"""Label and environment limits (model/metadata_limits.py) on every write that brings them, over the real
FSM in memory: services (create, update, stack deploy), networks (create, a stack's), secrets and configs.
Each refusal is a ConfigError (400, the CLI's exit 2) naming the field and the limit, with nothing
written; a service stored with bigger values (before the limits) still loads and can still be updated in
its other fields."""

from __future__ import annotations

import base64

import httpx
import pytest

from p2porch.api.server import build_app
from p2porch.control.network_ops import NetworkOps
from p2porch.control.routes import service_endpoints
from p2porch.control.secret_ops import SecretOps
from p2porch.control.service_ops import ServiceOps
from p2porch.control.stack_ops import StackOps
from p2porch.errors import ConfigError
from p2porch.model import ServiceSpec, metadata_limits
from p2porch.model.metadata_limits import (
    MAX_ENV_BYTES,
    MAX_ENV_ENTRY_BYTES,
    MAX_LABEL_KEY_BYTES,
    MAX_LABELS,
    MAX_LABELS_BYTES,
    check_env,
    check_labels,
)
from p2porch.raft import commands as C
from p2porch.stack import load_stack
from p2porch.testing.memstore import MemoryManager

TEN_MB = "x" * (10 * 1000 * 1000)
MANY = {f"k{i}": "" for i in range(200_000)}


def test_labels_up_to_the_limits_pass_and_one_past_each_is_refused():
    check_labels({f"k{i}": "v" for i in range(MAX_LABELS)}, "labels")
    check_labels({"k" * MAX_LABEL_KEY_BYTES: "v" * (MAX_LABELS_BYTES - MAX_LABEL_KEY_BYTES)}, "labels")
    cases = [
        ({f"k{i}": "v" for i in range(MAX_LABELS + 1)}, f"1025 labels, more than the limit of {MAX_LABELS}"),
        ({"k" * (MAX_LABEL_KEY_BYTES + 1): ""}, f"254 bytes, more than the limit of {MAX_LABEL_KEY_BYTES}"),
        ({"k": "v" * MAX_LABELS_BYTES}, f"262145 bytes in all, more than the limit of {MAX_LABELS_BYTES}"),
        ({"k": "é" * (MAX_LABELS_BYTES // 2)}, "bytes in all"),  # counted in UTF-8 bytes, not characters
        ({"k": "\ud800" * 100_000}, "bytes in all"),  # a lone surrogate (JSON can carry one): no 500
    ]
    for labels, message in cases:
        with pytest.raises(ConfigError) as refused:
            check_labels(labels, "labels")
        assert refused.value.field == "labels" and message in refused.value.message, refused.value.message


def test_env_up_to_the_limits_passes_and_one_past_each_is_refused():
    check_env([("K", "v" * (MAX_ENV_ENTRY_BYTES - 3))], "env")
    with pytest.raises(ConfigError, match="131073 bytes, more than the limit of 131072 \\(128 KiB\\)"):
        check_env([("K", "v" * (MAX_ENV_ENTRY_BYTES - 2))], "env")
    nine = [(f"K{i}", "v" * 120_000) for i in range(9)]
    with pytest.raises(ConfigError, match=f"more than the limit of {MAX_ENV_BYTES} \\(1 MiB\\)") as refused:
        check_env(nine, "env")
    assert refused.value.field == "env"


@pytest.fixture
def manager() -> MemoryManager:
    return MemoryManager()


@pytest.fixture
def services(manager) -> ServiceOps:
    return ServiceOps(manager, logs=None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "value", "limit"),
    [
        ("labels", {"big": TEN_MB}, "262144 (256 KiB)"),
        ("service_labels", MANY, "limit of 1024"),
        ("env", [f"BIG={TEN_MB}"], "131072 (128 KiB)"),
        ("mounts", [{"type": "volume", "target": "/d", "volume_labels": MANY}], "limit of 1024"),
    ],
)
async def test_a_service_past_a_limit_is_a_400_naming_the_field(services, manager, field, value, limit):
    """Before: accepted (bounded only by the 16 MiB body and the Raft entry)."""
    transport = httpx.ASGITransport(app=build_app(service_endpoints(services)))
    async with httpx.AsyncClient(transport=transport, base_url="http://p2porch/v1") as client:
        response = await client.post("/services", json={"name": "web", "image": "busybox", field: value})
    error = response.json()
    assert response.status_code == 400 and error["field"].startswith(field), error
    assert limit in error["message"] and manager.writes == 0


async def test_stored_bigger_values_still_load_and_other_fields_still_change(services, manager):
    # (an update carries the spec and the one it replaces in one Raft entry: 2 MB of env, not 10)
    env = [f"BIG={'x' * 2_000_000}"]
    big = ServiceSpec.from_dict({"name": "old", "image": "busybox", "labels": MANY, "env": env})
    manager._apply(C.CreateService(at=0.0, service_id="s1", spec=big).encode())  # written before the limits
    assert len(services.find("old").spec.labels) == 200_000
    await services.update("old", {"replicas": 3})  # the labels and env are kept, not checked again
    assert services.find("old").spec.replicas == 3
    with pytest.raises(ConfigError) as refused:  # but a change to them is checked
        await services.update("old", {"labels": {**MANY, "more": "x"}})
    assert refused.value.field == "labels"


async def test_a_stack_past_a_limit_is_refused_by_its_compose_key_before_any_write(services, manager):
    big = "x" * 300_000
    cases = {
        "services.web.deploy.labels": f"services:\n  web:\n    image: busybox\n    deploy:\n      labels:\n"
        f"        big: {big}\n",
        "networks.n.labels": "services:\n  web:\n    image: busybox\n    networks: [n]\n"
        f"networks:\n  n:\n    labels:\n      big: {big}\n",
        # a sidecar's environment (before: not checked)
        "services.web.x-p2porch-sidecars[0].environment": "services:\n  web:\n    image: busybox\n"
        "    x-p2porch-sidecars:\n      - name: log\n        image: busybox\n"
        f"        env:\n          BIG: {big}\n",
    }
    for field, text in cases.items():
        with pytest.raises(ConfigError) as refused:
            await StackOps(services).apply(load_stack("st", text, lambda path: ""))
        assert refused.value.field == field and manager.writes == 0


async def test_networks_secrets_and_configs_past_a_limit_are_refused(manager):
    with pytest.raises(ConfigError, match="labels: 200000 labels") as refused:
        await NetworkOps(manager).create({"name": "back", "labels": MANY})  # type: ignore[arg-type]
    assert refused.value.field == "labels"

    class Manager:
        def require_store(self):
            return manager

        async def write(self, command: bytes) -> object:
            return await manager.write(command)

    secrets = SecretOps(Manager(), lambda: (0, b"k" * 32))  # type: ignore[arg-type]
    for kind in ("secret", "config"):
        data = base64.b64encode(b"v").decode()
        with pytest.raises(ConfigError, match="more than the limit of 262144") as refused:
            await secrets.create(kind, {"name": "s", "data": data, "labels": {"big": TEN_MB}})
        assert refused.value.field == "labels"
    assert manager.writes == 0


BIG_VALUE = "x" * MAX_ENV_ENTRY_BYTES  # one variable past the 128 KiB entry limit


@pytest.mark.parametrize("kind", ["sidecars", "init_containers"])
async def test_a_group_containers_env_and_volume_labels_are_checked(services, manager, kind):
    """Before: a sidecar's or init container's 300,000-byte variable passed (and failed at exec with E2BIG),
    and so did a service env and a sidecar env that together pass 1 MiB (the sidecar gets both)."""
    member = {"name": "log", "image": "busybox", "env": {"BIG": "x" * 300_000}}
    with pytest.raises(ConfigError, match="128 KiB") as refused:
        await services.create({"name": "web", "image": "busybox", kind: [member]})
    assert refused.value.field == f"{kind}[0].env"
    half = {f"K{i}": "x" * 100_000 for i in range(6)}  # 600 KB each, each under the limit alone
    member = {"name": "log", "image": "busybox", "env": {f"S{i}": "y" * 100_000 for i in range(6)}}
    with pytest.raises(ConfigError, match="1 MiB") as refused:
        await services.create({"name": "web", "image": "busybox", "env": half, kind: [member]})
    assert refused.value.field == f"{kind}[0].env"
    mount = {"type": "volume", "source": "d", "target": "/d", "volume_labels": MANY}
    member = {"name": "log", "image": "busybox", "mounts": [mount]}
    with pytest.raises(ConfigError, match="limit of 1024") as refused:
        await services.create({"name": "web", "image": "busybox", kind: [member]})
    assert refused.value.field == f"{kind}[0].mounts[0].volume_labels" and manager.writes == 0
    # a sidecar's variable overrides the service's of the same name: counted once, as the container gets it
    same = {"name": "log", "image": "busybox", "env": {f"K{i}": "z" for i in range(6)}}
    await services.create({"name": "web", "image": "busybox", "env": half, kind: [same]})


def stored(manager, **fields) -> None:
    """A service written before the limits (or with values a later limit refuses)."""
    spec = ServiceSpec.from_dict({"name": "old", "image": "busybox", **fields})
    manager._apply(C.CreateService(at=0.0, service_id="s1", spec=spec).encode())


async def test_an_update_is_refused_only_for_what_it_makes_worse(services, manager):
    """Before: any change to the labels or env re-checked the whole map, so a label added beside a
    stored 300-byte key (or a variable beside a stored 128 KiB+ one) was refused."""
    long_key = "k" * 300
    sidecar = {"name": "log", "image": "busybox", "env": {"SBIG": BIG_VALUE}}
    stored(manager, labels={long_key: "v"}, env={"BIG": BIG_VALUE}, sidecars=[sidecar])
    await services.update("old", {"labels": {long_key: "v", "x": "y"}})  # `--label-add x=y`
    await services.update("old", {"env": {"BIG": BIG_VALUE, "X": "y"}})  # `--env-add X=y`
    await services.update("old", {"sidecars": [{**sidecar, "env": {"SBIG": BIG_VALUE, "Y": "z"}}]})
    assert dict(services.find("old").spec.labels) == {long_key: "v", "x": "y"}
    refusals = [
        ({"labels": {long_key: "v", "k" * 254: ""}}, "labels", "254 bytes"),  # a new long key
        ({"env": {"BIG": BIG_VALUE + "y", "X": "y"}}, "env", "128 KiB"),  # the big variable changed
        ({"env": {"BIG": BIG_VALUE, "X": "y", "NEW": BIG_VALUE}}, "env", "128 KiB"),  # a new one
    ]
    for changes, field, message in refusals:
        with pytest.raises(ConfigError, match=message) as refused:
            await services.update("old", changes)
        assert refused.value.field == field
    # a count or total past its limit: refused only when the update makes it grow
    many = {f"k{i}": "" for i in range(MAX_LABELS + 10)}
    manager._apply(C.RemoveService(at=0.0, service_id="s1").encode())
    stored(manager, labels=many)
    await services.update("old", {"labels": {k: v for k, v in list(many.items())[:-1]}})  # shrinks: fine
    with pytest.raises(ConfigError, match="limit of 1024"):
        await services.update("old", {"labels": {**many, "more": ""}})


async def test_a_stack_redeploy_changing_another_label_keeps_a_stored_long_key(
    services, manager, monkeypatch
):
    long_key = "k" * 300
    text = f"services:\n  web:\n    image: busybox\n    labels:\n      {long_key}: v\n      a: '1'\n"
    with monkeypatch.context() as before_the_limits:
        before_the_limits.setattr(metadata_limits, "MAX_LABEL_KEY_BYTES", 1000)
        await StackOps(services).apply(load_stack("st", text, lambda path: ""))
    await StackOps(services).apply(load_stack("st", text.replace("a: '1'", "a: '2'"), lambda path: ""))
    (web,) = manager.state.services.values()
    assert dict(web.spec.labels)["a"] == "2" and long_key in dict(web.spec.labels)
    with pytest.raises(ConfigError) as refused:  # but a new long key is refused by its Compose key
        await StackOps(services).apply(load_stack("st", text + f"      {'n' * 300}: v\n", lambda path: ""))
    assert refused.value.field == "services.web.labels"
