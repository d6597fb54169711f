"""Every registered error crosses the real API server and client as itself (unix socket, hypercorn)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from p2porch.api.client import ApiClient
from p2porch.api.server import Endpoint, serve_api
from p2porch.errors import REGISTRY, NotLeaderError, P2POrchError, Unschedulable


def make_error(name: str) -> P2POrchError:
    cls = REGISTRY[name]
    if cls is NotLeaderError:
        return NotLeaderError("not the leader", leader="10.0.0.7:7946")
    if cls is Unschedulable:
        return Unschedulable("3 nodes: 2 insufficient memory, 1 drained")
    return cls(f"{name} happened", field=f"field-of-{name}")


async def raise_named(body: dict[str, Any], params: dict[str, str]) -> Any:
    raise make_error(params["name"])


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="p2mo-api-", dir="/tmp"))  # unix socket paths must stay short
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_the_registry_has_every_error_class() -> None:
    def subclasses(cls: type) -> set[type]:
        return {cls}.union(*(subclasses(s) for s in cls.__subclasses__()))

    # every error class p2porch.errors defines (others, e.g. the CLI's UsageError, never cross the API)
    defined = {c for c in subclasses(P2POrchError) if c.__module__ == "p2porch.errors"}
    assert set(REGISTRY.values()) == defined
    assert len(REGISTRY) >= 14 and REGISTRY["NotLeaderError"].http_status == 503


async def test_every_registered_error_round_trips(socket_dir: Path) -> None:
    socket_path = str(socket_dir / "api.sock")
    endpoints = [Endpoint("GET", "/raise/{name}", raise_named, "raise an error")]

    def call_all() -> dict[str, tuple[P2POrchError, int]]:
        seen: dict[str, tuple[P2POrchError, int]] = {}
        client = ApiClient(f"unix://{socket_path}", timeout_s=10)
        try:
            for name in REGISTRY:
                status, _ = client._send("GET", f"/v1/raise/{name}")
                try:
                    client.get(f"/raise/{name}")
                except P2POrchError as exc:
                    seen[name] = (exc, status)
        finally:
            client.close()
        return seen

    async with trio.open_nursery() as nursery:
        await nursery.start(serve_api, endpoints, socket_path)
        seen = await trio.to_thread.run_sync(call_all)
        nursery.cancel_scope.cancel()

    assert set(seen) == set(REGISTRY)
    for name, (exc, status) in seen.items():
        sent = make_error(name)
        assert type(exc) is REGISTRY[name], (name, exc)
        assert status == REGISTRY[name].http_status
        assert (exc.message, exc.field) == (sent.message, sent.field)
    leader_error = seen["NotLeaderError"][0]
    assert isinstance(leader_error, NotLeaderError) and leader_error.leader == "10.0.0.7:7946"
    assert seen["Unschedulable"][0].message == "3 nodes: 2 insufficient memory, 1 drained"
