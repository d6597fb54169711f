"""``/metrics`` over the real API server (hypercorn on a unix socket) and ``p2porch metrics``."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from p2porch.api.client import ApiClient
from p2porch.api.server import Endpoint, serve_api
from p2porch.cli.main import main
from p2porch.control.metrics_view import metrics_route
from p2porch.errors import NotFoundError, P2POrchError
from p2porch.metrics import Metrics


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="p2mx-", dir="/tmp"))  # unix socket paths must stay short
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def find(body: dict[str, Any], params: dict[str, str]) -> Any:
    if params["name"] == "missing":
        raise NotFoundError("no such thing", field="name")
    return {"name": params["name"]}


def request_counts(text: str) -> dict[tuple[str, str, str], float]:
    return {
        (s.labels["route"], s.labels["method"], s.labels["code"]): s.value
        for f in text_string_to_metric_families(text)
        if f.name == "p2porch_api_requests"
        for s in f.samples
        if s.name == "p2porch_api_requests_total"
    }


async def test_requests_are_counted_by_route_template_and_code(socket_dir: Path, capsys) -> None:
    socket_path = str(socket_dir / "api.sock")
    metrics = Metrics()
    endpoints = [Endpoint("GET", "/things/{name}", find, "find a thing")]

    def on_response(route: str, method: str, code: int) -> None:
        metrics.api_requests.labels(route, method, str(code)).inc()

    def drive() -> tuple[str, int, str]:
        client = ApiClient(f"unix://{socket_path}", timeout_s=10)
        try:
            for name in ("a", "b", "c"):
                client.get(f"/things/{name}")
            with pytest.raises(P2POrchError):
                client.get("/things/missing")
            transport = httpx.HTTPTransport(uds=socket_path)
            with httpx.Client(transport=transport, base_url="http://p2porch") as raw:
                content_type = raw.get("/metrics").headers["content-type"]
        finally:
            client.close()
        code = main(["--host", f"unix://{socket_path}", "metrics", "--json"])
        return content_type, code, capsys.readouterr().out

    async with trio.open_nursery() as nursery:
        await nursery.start(
            lambda task_status: serve_api(
                endpoints,
                socket_path,
                extra_routes=[metrics_route(metrics)],
                on_response=on_response,
                task_status=task_status,
            )
        )
        content_type, code, out = await trio.to_thread.run_sync(drive)
        text = await trio.to_thread.run_sync(lambda: ApiClient(f"unix://{socket_path}").text("/metrics"))
        nursery.cancel_scope.cancel()

    assert content_type.startswith("text/plain") and "version=0.0.4" in content_type
    counts = request_counts(text)
    assert counts[("/v1/things/{name}", "GET", "200")] == 3  # one series per route, not per thing
    assert counts[("/v1/things/{name}", "GET", "404")] == 1
    assert code == 0
    samples = json.loads(out)
    assert {"name": "p2porch_api_requests_total", "type": "counter", "value": 3.0} | {
        "labels": {"route": "/v1/things/{name}", "method": "GET", "code": "200"}
    } in samples
