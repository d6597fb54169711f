"""The sandbox formation's API client: plain HTTP over the node's unix socket, no TLS context built."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from p2porch.sandbox import cluster
from p2porch.sandbox.sandbox import SandboxNode


def test_client_loads_no_ca_bundle(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Loading the CA bundle costs ~25-42 ms of CPU per client, once per join of a formation."""

    def no_bundle(*args: object, **kwargs: object) -> ssl.SSLContext:
        raise AssertionError("a verifying TLS context (the CA bundle) was built for a unix-socket client")

    monkeypatch.setattr(ssl, "create_default_context", no_bundle)
    node = SandboxNode(
        name="n1", netns="ns", address="10.0.0.2", host_veth="veth", run_dir=str(tmp_path), data_dir=""
    )
    with cluster._client(node, 1.0) as client:
        assert str(client.base_url) == "http://p2porch/v1/"
