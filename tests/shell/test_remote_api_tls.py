"""The remote API's TLS listener and token checks on loopback, with real hypercorn, real TLS and the
CLI's own client: 401 for a missing/wrong token (same body), 403 naming the role, 429 after the
failure burst, a streaming route behind the token, a certificate swapped live, and a client that pins
another CA refused."""

from __future__ import annotations

import datetime as dt
import os
import socket
from contextlib import asynccontextmanager

import httpx
import pytest
import trio

from p2porch.api.client import ApiClient
from p2porch.api.ratelimit import FailureLimiter
from p2porch.api.server import Endpoint
from p2porch.api.tls_server import TlsIdentity, serve_tls
from p2porch.control.remote_api import remote_app
from p2porch.errors import DaemonError, P2POrchError
from p2porch.vault.access import Role, new_token, verify_token
from p2porch.vault.cluster_ca import CA_SEED_BYTES, cluster_ca, issue_server_certificate

NOW = dt.datetime.now(dt.UTC)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def endless():
    async def items():
        for i in range(3):
            yield {"n": i}

    yield items()


def endpoints(calls: list[str]) -> list[Endpoint]:
    async def status(body, params):
        calls.append("status")
        return {"ok": True}

    async def scale(body, params):
        calls.append("scale")
        return {"scaled": params["service"]}

    async def events(body, params):
        return endless

    return [
        Endpoint("GET", "/status", status, "status"),
        Endpoint("POST", "/services/{service}/scale", scale, "scale"),
        Endpoint("GET", "/events", events, "events", streaming=True),
    ]


async def test_tokens_roles_limits_and_certificates_over_real_tls(tmp_path):
    ca = cluster_ca("0123456789abcdef", 0, os.urandom(CA_SEED_BYTES))
    other_ca = cluster_ca("0123456789abcdef", 1, os.urandom(CA_SEED_BYTES))
    identity = TlsIdentity(str(tmp_path / "tls"))
    issued = issue_server_certificate(ca, "n1", ["127.0.0.1"], NOW)
    identity.install(issued.cert_pem, issued.key_pem)
    assert oct(os.stat(identity.key_file).st_mode & 0o777) == "0o600"
    read, operate = new_token(), new_token()
    roles = {read.token_id: ("reader", Role.READ), operate.token_id: ("ops", Role.OPERATE)}
    digests = {read.token_id: read.digest, operate.token_id: operate.digest}

    def verify(text: str):
        token_id = verify_token(text, digests)
        return roles[token_id] if token_id else None

    calls: list[str] = []
    limiter = FailureLimiter(burst=5, per_s=0.5)
    app = remote_app(endpoints(calls), verify, limiter=limiter)
    addr = f"127.0.0.1:{free_port()}"
    host = f"tcp://{addr}"

    def client(token: str, ca_pem: str = ca.pem) -> ApiClient:
        return ApiClient(host, token=token, ca_pem=ca_pem, timeout_s=5)

    def raw(headers: dict[str, str], method: str = "GET", path: str = "/v1/status") -> httpx.Response:
        import ssl

        with httpx.Client(verify=ssl.create_default_context(cadata=ca.pem), timeout=5) as c:
            return c.request(method, f"https://{addr}{path}", headers=headers)

    async with trio.open_nursery() as nursery:
        await nursery.start(serve_tls, app, addr, identity)

        def checks() -> None:
            assert client(read.text).get("/status") == {"ok": True}
            assert [item["n"] for item in client(read.text).stream("/events")] == [0, 1, 2]
            assert client(operate.text).post("/services/web/scale", {"replicas": 2}) == {"scaled": "web"}
            with pytest.raises(P2POrchError, match="needs the operate role; token reader has read"):
                client(read.text).post("/services/web/scale", {"replicas": 2})
            assert calls == ["status", "scale"]  # the refused call never reached its handler
            forbidden = raw({"authorization": f"Bearer {read.text}"}, "POST", "/v1/services/web/scale")
            assert forbidden.status_code == 403 and forbidden.json()["field"] == "role"
            wrong = raw({"authorization": f"Bearer {new_token().text}"})
            missing = raw({})
            unknown_route = raw({}, "GET", "/v1/nope")
            for response in (wrong, missing, unknown_route):
                assert response.status_code == 401
                assert response.json() == {
                    "error": "Unauthorized",
                    "message": "a valid access token is required",
                    "field": None,
                }
            for _ in range(2):
                raw({"authorization": "Bearer garbage"})
            limited = raw({"authorization": f"Bearer {read.text}"})  # even a good token: source over limit
            assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
            assert limiter.failures == 5 and limiter.refused >= 1
            limiter._buckets.clear()  # let this source in again for the certificate checks
            with pytest.raises(DaemonError, match="does not verify against the CA in use"):
                client(read.text, other_ca.pem).get("/status")

        await trio.to_thread.run_sync(checks)
        renewed = issue_server_certificate(other_ca, "n1", ["127.0.0.1"], NOW)
        identity.install(renewed.cert_pem, renewed.key_pem)  # a new key epoch: swapped without a restart

        def after_swap() -> None:
            assert client(read.text, other_ca.pem).get("/status") == {"ok": True}
            with pytest.raises(DaemonError, match="does not verify"):
                client(read.text, ca.pem).get("/status")

        await trio.to_thread.run_sync(after_swap)
        nursery.cancel_scope.cancel()


async def test_a_listen_address_that_is_not_ours_is_retried_not_fatal(tmp_path, caplog, autojump_clock):
    from types import SimpleNamespace

    from p2porch.config import ApiConfig
    from p2porch.control.remote_api import RemoteApi

    ca = cluster_ca("0123456789abcdef", 0, os.urandom(CA_SEED_BYTES))
    issued = issue_server_certificate(ca, "n1", ["10.255.255.1"], NOW)
    (tmp_path / "c.pem").write_text(issued.cert_pem)
    (tmp_path / "k.pem").write_text(issued.key_pem)
    section = ApiConfig(addr="10.255.255.1:7949", cert=str(tmp_path / "c.pem"), key=str(tmp_path / "k.pem"))
    remote = RemoteApi(section, SimpleNamespace(local=None, store=None), str(tmp_path), "n1")  # type: ignore[arg-type]
    with trio.move_on_after(3.5):
        await remote.serve(remote_app([], lambda text: None))
    assert caplog.text.count("remote API cannot listen on 10.255.255.1:7949") >= 3
