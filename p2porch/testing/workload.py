"""Concurrent clients on service specs through the control API of different nodes (shell, tests only).

Owns the workload of a history test: client threads that create, read, update, compare-and-set and
delete services (``--replicas 0``: nothing runs) through the unix-socket API of a node picked at random
for every operation, and record each operation in a :class:`HistoryRecorder`. A service name is a key;
its value is the label ``h`` (a unique write id); every ``big_every``-th write also carries a label of
``big_bytes`` so its Raft entry exceeds 64 KiB. Two kinds of keys: a few registers written by everyone
(all five operations) and unique names created once (a set: lost creates are easy to count). Reads are
linearizable (each passes the node's read barrier, ``control/read_barrier.py``), so they are recorded as
such: a read that starts after a write was acknowledged must see it or a later value; a refused read
(503) is an ``info`` read, which constrains nothing. It never decides whether a history is correct
(``history.check_history`` does).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from ..sandbox.sandbox import SandboxNode
from .history import HistoryRecorder

IMAGE = "p2porch/busybox:latest"
REFUSED = (400, 404, 409)  # definite refusals: nothing was applied


def client(node: SandboxNode, timeout_s: float) -> httpx.Client:
    """A client of a node's control API; paths are relative to /v1 (plain HTTP over a unix socket: no CA
    bundle loaded, which cost 40-80 ms of CPU per client on a loaded machine)."""
    return httpx.Client(
        transport=httpx.HTTPTransport(uds=node.p2porch_socket, verify=False),
        base_url="http://p2porch/v1",
        timeout=timeout_s,
    )


@dataclass(frozen=True)
class Keys:
    """The names one run uses: ``registers`` shared keys and a prefix for unique creates."""

    prefix: str
    registers: int

    def register(self, i: int) -> str:
        return f"{self.prefix}-r{i}"

    def unique(self, client_id: int, n: int) -> str:
        return f"{self.prefix}-s{client_id}-{n}"

    def ours(self, name: str) -> bool:
        return name.startswith(f"{self.prefix}-")


def value_of(view: dict[str, Any]) -> tuple[str | None, int | None]:
    """(label ``h``, version) of a service view from the API."""
    labels = (view.get("spec") or {}).get("labels") or {}
    return labels.get("h"), view.get("version")


class Client(threading.Thread):
    """One client: a seeded loop of operations until ``stop`` is set, each recorded in ``history``."""

    def __init__(
        self,
        client_id: int,
        nodes: Sequence[SandboxNode],
        keys: Keys,
        history: HistoryRecorder,
        stop: threading.Event,
        *,
        seed: int,
        big_every: int = 4,
        big_bytes: int = 70_000,
        timeout_s: float = 8.0,
    ) -> None:
        super().__init__(name=f"client-{client_id}", daemon=True)
        self.client_id = client_id
        self.nodes = list(nodes)
        self.keys = keys
        self.history = history
        self.stop_event = stop
        self.rng = random.Random(seed * 1000 + client_id)
        self.big_every = big_every
        self.padding = "x" * big_bytes
        self.timeout_s = timeout_s
        self.writes = 0
        self.unique_created = 0
        self.process = f"c{client_id}"
        self._clients: dict[str, httpx.Client] = {}

    # --- plumbing
    def _api(self, node: SandboxNode) -> httpx.Client:
        if node.name not in self._clients:
            self._clients[node.name] = client(node, self.timeout_s)
        return self._clients[node.name]

    def _drop(self, node: SandboxNode) -> None:
        old = self._clients.pop(node.name, None)
        if old is not None:
            old.close()

    def _labels(self) -> dict[str, str]:
        self.writes += 1
        value = f"{self.process}-{self.writes}"
        labels = {"h": value}
        if self.writes % self.big_every == 0:
            labels["pad"] = self.padding
        return labels

    def _call(self, index: int, node: SandboxNode, method: str, path: str, body: Any = None) -> Any:
        """One request; records fail for refusals and info for anything else that is not a 200."""
        try:
            response = self._api(node).request(method, path, json=body)
        except (httpx.HTTPError, OSError) as exc:
            self._drop(node)
            self.history.info(index, f"{type(exc).__name__}: {exc}")
            return None
        if response.status_code == 200:
            return response.json()
        if response.status_code in REFUSED:
            self.history.fail(index, f"{response.status_code} {response.text[:160]}")
        else:
            self.history.info(index, f"{response.status_code} {response.text[:160]}")
        return None

    # --- operations
    def read(self, node: SandboxNode, key: str) -> tuple[str | None, int | None] | None:
        index = self.history.invoke(self.process, "read", key, node=node.name)
        try:
            response = self._api(node).get(f"/services/{key}")
        except (httpx.HTTPError, OSError) as exc:
            self._drop(node)
            self.history.info(index, f"{type(exc).__name__}: {exc}")
            return None
        if response.status_code == 404:
            self.history.ok(index, None)
            return None, None
        if response.status_code != 200:
            self.history.info(index, f"{response.status_code} {response.text[:160]}")
            return None
        value, version = value_of(response.json())
        self.history.ok(index, value, version=version)
        return value, version

    def create(self, node: SandboxNode, key: str) -> bool:
        labels = self._labels()
        index = self.history.invoke(self.process, "create", key, labels["h"], node=node.name)
        spec = {"name": key, "image": IMAGE, "replicas": 0, "labels": labels}
        if self._call(index, node, "POST", "/services", spec) is None:
            return False
        self.history.ok(index)
        return True

    def update(self, node: SandboxNode, key: str) -> None:
        labels = self._labels()
        index = self.history.invoke(self.process, "update", key, labels["h"], node=node.name)
        if self._call(index, node, "POST", f"/services/{key}/update", {"labels": labels}) is not None:
            self.history.ok(index)

    def cas(self, node: SandboxNode, key: str) -> None:
        """Read (value, version) on one node, then compare-and-set through another."""
        seen = self.read(self.rng.choice(self.nodes), key)
        if seen is None or seen[0] is None or seen[1] is None:
            return
        expected, version = seen
        labels = self._labels()
        index = self.history.invoke(self.process, "cas", key, labels["h"], expected=expected, node=node.name)
        body = {"labels": labels, "expected_version": version}
        if self._call(index, node, "POST", f"/services/{key}/update", body) is not None:
            self.history.ok(index)

    def delete(self, node: SandboxNode, key: str) -> None:
        index = self.history.invoke(self.process, "delete", key, node=node.name)
        if self._call(index, node, "DELETE", f"/services/{key}") is not None:
            self.history.ok(index)

    def one(self) -> None:
        node = self.rng.choice(self.nodes)
        key = self.keys.register(self.rng.randrange(self.keys.registers))
        roll = self.rng.random()
        if roll < 0.25:
            self.unique_created += 1
            self.create(node, self.keys.unique(self.client_id, self.unique_created))
        elif roll < 0.45:
            self.read(node, key)
        elif roll < 0.65:
            self.update(node, key)
        elif roll < 0.82:
            self.cas(node, key)
        elif roll < 0.90:
            self.delete(node, key)
        else:
            self.create(node, key)

    def run(self) -> None:
        try:
            while not self.stop_event.is_set():
                self.one()
        finally:
            for c in self._clients.values():
                c.close()


def service_values(
    node: SandboxNode, keys: Keys, timeout_s: float = 10.0
) -> dict[str, tuple[str | None, int]]:
    """``{name: (label h, version)}`` of this run's services as one node holds them: its own copy
    (``stale=true``: convergence measures what each node applied, not what its read barrier waits for)."""
    with client(node, timeout_s) as api:
        response = api.get("/services", params={"stale": "true"})
        response.raise_for_status()
        rows = response.json()
    out = {}
    for row in rows:
        if keys.ours(row["name"]):
            value, version = value_of(row)
            out[row["name"]] = (value, int(version or 0))
    return out
