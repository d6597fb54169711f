"""Remote API benchmark: what TLS and token checks cost per request, against the unix socket.

In one process on loopback (no root, no cluster), the same trivial route served three ways with the
daemon's own code: ``unix`` (``api.server.serve_api``, the baseline), ``tls`` (``api.tls_server`` +
``control.remote_api.remote_app``: TLS 1.3, bearer token, role check) and the refusals ``tls_401``
(a wrong token; counted by the failure limiter, raised so the bench is not throttled). Measured with
the CLI's own client (``api.client.ApiClient``): ``reuse`` = requests over one kept-alive connection,
``fresh`` = a new client (new connection and TLS handshake) per request, as each CLI command does.
Prints one JSON object with medians and ratios to the baseline. Usage: python bench/remote_api.py [--n 300]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import socket
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import trio  # noqa: E402

from p2porch.api.client import ApiClient  # noqa: E402
from p2porch.api.ratelimit import FailureLimiter  # noqa: E402
from p2porch.api.server import Endpoint, serve_api  # noqa: E402
from p2porch.api.tls_server import TlsIdentity, serve_tls  # noqa: E402
from p2porch.control.remote_api import remote_app  # noqa: E402
from p2porch.errors import P2POrchError  # noqa: E402
from p2porch.vault.access import Role, new_token, verify_token  # noqa: E402
from p2porch.vault.cluster_ca import CA_SEED_BYTES, cluster_ca, issue_server_certificate  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def median_us(fn, n: int) -> float:
    samples = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        fn()
        samples.append((time.perf_counter_ns() - t0) / 1000)
    return round(statistics.median(samples), 1)


def measure(n: int, unix_host: str, tcp_host: str, ca_pem: str, token: str) -> dict:
    out: dict = {}
    unix = ApiClient(unix_host)
    tls = ApiClient(tcp_host, token=token, ca_pem=ca_pem)
    wrong = ApiClient(tcp_host, token=new_token().text, ca_pem=ca_pem)

    def refused() -> None:
        try:
            wrong.get("/version")
        except P2POrchError:
            return
        raise AssertionError("a wrong token was accepted")

    out["reuse_us"] = {
        "unix": median_us(lambda: unix.get("/version"), n),
        "tls": median_us(lambda: tls.get("/version"), n),
        "tls_401": median_us(refused, n),
    }
    out["fresh_us"] = {
        "unix": median_us(lambda: ApiClient(unix_host).get("/version"), n),
        "tls": median_us(lambda: ApiClient(tcp_host, token=token, ca_pem=ca_pem).get("/version"), n),
    }
    for kind in ("reuse_us", "fresh_us"):
        out[kind]["tls_vs_unix"] = round(out[kind]["tls"] / out[kind]["unix"], 2)
    return out


async def run(n: int) -> dict:
    work = tempfile.mkdtemp(prefix="p2porch-bench-api-")
    ca = cluster_ca("0123456789abcdef", 0, os.urandom(CA_SEED_BYTES))
    identity = TlsIdentity(os.path.join(work, "tls"))
    issued = issue_server_certificate(ca, "bench", ["127.0.0.1"], dt.datetime.now(dt.UTC))
    identity.install(issued.cert_pem, issued.key_pem)
    token = new_token()

    def verify(text: str):
        return ("bench", Role.ADMIN) if verify_token(text, {token.token_id: token.digest}) else None

    async def version(body, params):
        return {"version": "bench"}

    endpoints = [Endpoint("GET", "/version", version, "version")]
    limiter = FailureLimiter(burst=10**9, per_s=10**9)
    sock = os.path.join(work, "api.sock")
    addr = f"127.0.0.1:{free_port()}"
    async with trio.open_nursery() as nursery:
        await nursery.start(serve_api, endpoints, sock)
        await nursery.start(serve_tls, remote_app(endpoints, verify, limiter=limiter), addr, identity)
        result = await trio.to_thread.run_sync(
            measure, n, f"unix://{sock}", f"tcp://{addr}", ca.pem, token.text
        )
        nursery.cancel_scope.cancel()
    result["failures_counted"] = limiter.failures
    result["n"] = n
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300, help="requests per case (default 300)")
    args = parser.parse_args()
    print(json.dumps(trio.run(run, args.n), indent=2))


if __name__ == "__main__":
    main()
