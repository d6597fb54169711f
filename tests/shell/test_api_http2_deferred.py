"""The daemon's API server with the HTTP/2 stack deferred (lazyimport.DAEMON_UNEXECUTED_MODULES): HTTP/1.1
requests never run it; an HTTP/2 client (prior knowledge, over the real unix socket and hypercorn) is
served, and only then is the stack run. The server is a separate process started as the daemon's entry
point starts (deferral first), so this test process's own imports hide nothing."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

SERVER = """
import sys
from p2porch.lazyimport import defer_daemon_modules
defer_daemon_modules()
import trio
from p2porch.api.server import Endpoint, serve_api

def ran(name):
    module = sys.modules.get(name)
    return module is not None and any(
        not k.startswith('__') and not isinstance(v, type(sys)) for k, v in vars(module).items()
    )

async def modules(body, params):
    return {"hpack": "hpack" in sys.modules, "h2.connection": ran("h2.connection")}

trio.run(serve_api, [Endpoint("GET", "/modules", modules, "what the server has run")], sys.argv[1])
"""


@pytest.fixture
def socket_path() -> Iterator[str]:
    directory = Path(tempfile.mkdtemp(prefix="p2h2-", dir="/tmp"))  # unix socket paths must stay short
    yield str(directory / "api.sock")
    shutil.rmtree(directory, ignore_errors=True)


def test_http11_leaves_the_http2_stack_unrun_and_an_http2_client_is_served(socket_path: str) -> None:
    server = subprocess.Popen([sys.executable, "-c", SERVER, socket_path])
    try:
        deadline = time.monotonic() + 30
        while not Path(socket_path).exists():
            assert server.poll() is None, "the API server exited"
            assert time.monotonic() < deadline, "the API server did not bind its socket"
            time.sleep(0.05)
        url = "http://p2porch/v1/modules"
        with httpx.Client(transport=httpx.HTTPTransport(uds=socket_path)) as http1:
            first = http1.get(url)
            again = http1.get(url)
        assert first.http_version == "HTTP/1.1" and first.status_code == 200
        assert first.json() == again.json() == {"hpack": False, "h2.connection": False}
        prior = httpx.HTTPTransport(uds=socket_path, http1=False, http2=True)  # HTTP/2 prior knowledge
        with httpx.Client(transport=prior) as http2:
            answer = http2.get(url)
        assert answer.http_version == "HTTP/2" and answer.status_code == 200
        assert answer.json() == {"hpack": True, "h2.connection": True}
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
