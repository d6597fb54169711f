"""A service update sent again at its base, on real Raft processes: after another user's update through
another node it is refused "update out of sequence" (never merged into it); after a leader change the
update, sent again when its answer was lost, is written once and then taken as done (model/
update_sequence.py, cli/sent_again.py; unit tests: tests/unit/control/test_update_out_of_sequence.py).

3 voters on loopback, each ``p2porch.testing.control_member`` (the Raft store, the daemon's leader loop
and the service API on a unix socket, as the CLI reaches a daemon); the requests are the API's, through
the CLI's own client, to followers (their writes are forwarded to the leader as a daemon's are).
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from p2porch.api.client import ApiClient
from p2porch.errors import ConflictError, P2POrchError, ProposalTimeout
from p2porch.model.update_sequence import OUT_OF_SEQUENCE, spec_digest
from p2porch.testing.raftprocs import LocalCluster, NodeProc

pytestmark = pytest.mark.integration

IMAGE = "p2porch/busybox:{}"
UPDATE = "/services/web/update"


@pytest.fixture
def cluster() -> Iterator[LocalCluster]:
    root = Path(tempfile.mkdtemp(prefix="p51d-"))  # short: the API sockets' paths (108 bytes at most)

    def args(node: NodeProc) -> list[str]:
        return ["--api-socket", str(root / f"{node.name}.sock")]

    try:
        with contextlib.closing(
            LocalCluster(root / "c", voters=3, module="p2porch.testing.control_member", node_args=args)
        ) as c:
            c.start_all()
            yield c
    finally:
        shutil.rmtree(root, ignore_errors=True)


def api(cluster: LocalCluster, node: NodeProc) -> ApiClient:
    return ApiClient(f"unix://{cluster.root.parent / f'{node.name}.sock'}")


def eventually(
    read: Callable[[], Any], want: Callable[[Any], bool], what: str, timeout_s: float = 20.0
) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            value = read()
            if want(value):
                return value
        except P2POrchError:
            value = None
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: last {value!r}")
        time.sleep(0.1)


def image_on(client: ApiClient, tag: str) -> dict[str, Any]:
    return eventually(
        lambda: client.get("/services/web"), lambda v: v["spec"]["image"] == IMAGE.format(tag), f"image {tag}"
    )


def test_an_update_sent_again_at_its_base_is_refused_after_another_write_and_done_once_after_a_leader_change(
    cluster: LocalCluster,
) -> None:
    leader = cluster.leader()
    assert leader.call(op="init", timeout_s=10.0)["ok"]
    a, b = (api(cluster, n) for n in cluster.nodes if n is not leader)
    a.post("/services", {"name": "web", "image": IMAGE.format(1), "replicas": 0})
    base = spec_digest(image_on(a, "1")["spec"])
    image_on(b, "1")

    # another user's update through the other follower commits first
    b.post(UPDATE, {"image": IMAGE.format(3)})
    image_on(a, "3")
    with pytest.raises(ConflictError) as refused:  # this one, sent again at its base: not merged
        a.post(UPDATE, {"image": IMAGE.format(2), "base_spec": base})
    assert refused.value.message.startswith(OUT_OF_SEQUENCE) and refused.value.field == "base_spec"
    assert image_on(b, "3")["spec"]["image"] == IMAGE.format(3)

    # the leader goes; the update through a follower is answered or lost (then sent again at its base)
    body = {"image": IMAGE.format(4), "base_spec": spec_digest(a.get("/services/web")["spec"])}
    cluster.kill(leader)
    try:
        answer = a.post(UPDATE, body)
    except ProposalTimeout as lost:
        assert lost.base_spec == body["base_spec"]
        answer = a.post(UPDATE, body)
    assert answer["spec"]["image"] == IMAGE.format(4)
    image_on(b, "4")
    again = a.post(UPDATE, body)  # the same update once more (its answer lost): nothing is written
    assert again["changed"] == [] and again["spec"] == answer["spec"]
    assert b.get("/services/web")["spec"] == answer["spec"]
