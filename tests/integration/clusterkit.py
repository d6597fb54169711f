"""Shared helpers of the sandbox cluster tests: run the CLI in a host, call its API, wait for a condition."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx

from p2porch.sandbox.sandbox import Sandbox, SandboxNode

P2PORCH = [sys.executable, "-m", "p2porch"]
IMAGE = "p2porch/busybox:latest"
RETRYABLE: tuple[type[BaseException], ...] = (httpx.HTTPError, OSError, KeyError, ValueError)


def cli(sb: Sandbox, node: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    """``p2porch ARGS`` inside a sandbox host (its P2PORCH_HOST and DOCKER_HOST are set)."""
    return sb.exec(node, [*P2PORCH, *args], capture=True)


def cli_json(sb: Sandbox, node: str, *args: str) -> Any:
    """``p2porch --json ARGS`` (the flag goes first: after IMAGE it would become part of CMD)."""
    result = cli(sb, node, "--json", *args)
    assert result.returncode == 0, result.stderr.decode()
    return json.loads(result.stdout)


def api(node: SandboxNode) -> httpx.Client:
    """A client for a host's control API; paths are relative to /v1."""
    return httpx.Client(
        transport=httpx.HTTPTransport(uds=node.p2porch_socket), base_url="http://p2porch/v1", timeout=15
    )


def api_get(node: SandboxNode, path: str, **params: str) -> Any:
    with api(node) as client:
        response = client.get(path, params=params)
        response.raise_for_status()
        return response.json()


def wait_for(
    predicate: Callable[[], Any],
    timeout_s: float = 60.0,
    what: str = "condition",
    interval_s: float = 0.2,
    retry_on: tuple[type[BaseException], ...] = (),
) -> Any:
    """Poll ``predicate`` until it returns something truthy; errors in RETRYABLE (+ ``retry_on``) retry."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except RETRYABLE + retry_on as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(interval_s)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")
