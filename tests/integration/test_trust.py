"""Keys and tokens on the sandbox: the token is not the cluster key, joiners are checked against their
connection, `cluster rotate-keys` reaches every member, and `node rm` revokes the removed node's keys."""

from __future__ import annotations

import json
import os
import sys
import time

import pytest
from clusterkit import cli, cli_json, wait_for

from p2porch.sandbox.sandbox import Sandbox, SandboxNode

SUBNET = "10.65.0"
REMOVED = "this node was removed from the cluster; run p2porch join"

# Run inside a sandbox host: a member request keyed with the cluster key found in a cluster.json.
LEAKED_KEY_PROBE = """
import json, sys, trio
from p2porch.membership.join_service import request_join
from p2porch.membership.localstate import load
local = load(sys.argv[1])
async def main():
    try:
        request = {"op": sys.argv[3], "node_id": local.node_id}
        reply = await request_join(sys.argv[2], 7948, local.keys, request, timeout_s=5, member=True)
        print(json.dumps({"reply": reply}, default=str))
    except Exception as exc:
        print(json.dumps({"error": str(exc)}))
trio.run(main)
"""


def cluster_file(node: SandboxNode) -> dict:
    with open(os.path.join(node.p2porch_data_dir, "cluster.json")) as handle:
        return json.load(handle)


def key_epochs(sb: Sandbox, names: list[str]) -> set[int]:
    return {cli_json(sb, name, "status")["cluster"]["key_epoch"] for name in names}


def probe(sb: Sandbox, host: str, data_dir: str, peer: str, op: str) -> dict:
    result = sb.exec(host, [sys.executable, "-c", LEAKED_KEY_PROBE, data_dir, peer, op], capture=True)
    assert result.returncode == 0, result.stderr.decode()
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    sb = Sandbox("p2tr", subnet=f"{SUBNET}.0/24")
    try:
        nodes = sb.up(4)
        init = cli_json(sb, "n1", "init")
        token_file = tmp_path_factory.mktemp("token") / "join-token"
        token_file.write_text(init["token"] + "\n")
        token_file.chmod(0o600)
        yield sb, nodes, init["token"], str(token_file)
    finally:
        sb.down()


def test_join_token_is_not_the_cluster_key_and_stays_out_of_argv(cluster):
    sb, nodes, token, token_file = cluster
    assert "--token" not in cli_json(sb, "n1", "token")["join_command"]
    for name in ("n2", "n3"):
        result = cli(sb, name, "join", f"{SUBNET}.1", "--token-file", token_file)
        assert result.returncode == 0, result.stderr.decode()
    n1 = cluster_file(nodes[0])
    secret = token.split("-", 3)[3]  # P2PT-1-<cluster id>-<secret>: the url-safe secret may hold "-"
    assert n1["cluster_key"] and secret not in json.dumps(n1)  # the token derives nothing stored
    assert cluster_file(nodes[1])["cluster_key"] == n1["cluster_key"]  # delivered in the sealed reply
    with open(nodes[1].p2porch_pidfile) as handle:
        pid = int(handle.read())
    with open(f"/proc/{pid}/cmdline", "rb") as handle:
        assert secret.encode() not in handle.read()
    wait_for(lambda: {r["status"] for r in cli_json(sb, "n1", "node", "ls")} == {"ready"}, 60, "3 ready")


def test_a_joiner_advertising_an_address_it_does_not_come_from_is_refused(cluster):
    sb, _, _, token_file = cluster
    result = cli(
        sb, "n4", "join", f"{SUBNET}.1", "--token-file", token_file, "--advertise-addr", f"{SUBNET}.77"
    )
    assert result.returncode != 0 and b"--advertise-addr" in result.stderr, result.stderr
    assert b"is not the address this join came from" in result.stderr
    assert len(cli_json(sb, "n1", "node", "ls")) == 3


def test_rotate_keys_reaches_every_member_and_node_rm_revokes(cluster, tmp_path):
    sb, nodes, _, token_file = cluster
    members = ["n1", "n2", "n3"]
    joined = {r["name"] for r in cli_json(sb, "n1", "node", "ls")}
    for name in sorted(set(members) - joined):  # run alone: the first test's joins
        assert cli(sb, name, "join", f"{SUBNET}.1", "--token-file", token_file).returncode == 0
    wait_for(lambda: len(cli_json(sb, "n1", "status")["cluster"]["voters"]) == 3, 60, "3 voters")
    rotated = cli_json(sb, "n2", "cluster", "rotate-keys")
    assert rotated["key_epoch"] == 1 and rotated["members"] == 3 and rotated["left_out"] == []
    assert rotated["settled"]  # it returns once a write commits in the new epoch
    wait_for(lambda: key_epochs(sb, members) == {1}, 60, "every member in key epoch 1")
    write = cli(sb, "n3", "node", "update", "n3", "--label-add", "epoch=1")
    assert write.returncode == 0, write.stderr.decode()
    wait_for(lambda: cli_json(sb, "n1", "node", "inspect", "n3")["labels"].get("epoch") == "1", 30, "write")

    # remove the hardest live voter: the Raft leader (Raft never lets a leader remove itself)
    leader = wait_for(lambda: cli_json(sb, "n1", "status")["cluster"]["leader"], 30, "a leader")
    victim = next(n for n in nodes[:3] if f"{n.address}:7947" == leader)
    rest = [n for n in nodes[:3] if n is not victim]
    leaked = tmp_path / "leaked"  # the victim's keys as they were: it discards them once it learns it left
    leaked.mkdir()
    (leaked / "cluster.json").write_text(json.dumps(cluster_file(victim)))
    removed_at = time.monotonic()
    removed = cli_json(sb, rest[0].name, "node", "rm", victim.name, "--force")
    assert removed["key_epoch"] == 2 and "warning" not in removed, removed
    assert victim.name not in {r["name"] for r in cli_json(sb, rest[1].name, "node", "ls")}
    status = cli_json(sb, rest[1].name, "status")["cluster"]
    assert f"{victim.address}:7947" not in status["voters"] and status["has_quorum"], status
    wait_for(
        lambda: key_epochs(sb, [n.name for n in rest]) == {2}, 60, "the remaining members in key epoch 2"
    )
    write = cli(sb, rest[1].name, "node", "update", rest[0].name, "--label-add", "epoch=2")
    assert write.returncode == 0, write.stderr.decode()
    # the removed node's keys (epoch 1) no longer open anything: no member request, no new key
    refused = probe(sb, "n4", str(leaked), rest[0].address, "membership")
    assert "not current" in refused.get("error", ""), refused
    fetched = probe(sb, "n4", str(leaked), rest[1].address, "keys")
    assert fetched["reply"]["key_epoch"] == 2 and fetched["reply"]["envelope"] is None, fetched
    assert fetched["reply"]["member"] is False, fetched  # what tells the removed node it was removed

    # The removed node, still running, learns it: it leaves and says so; it may join again.
    def says_removed() -> str:
        answer = cli(sb, victim.name, "node", "ls")
        return answer.returncode != 0 and REMOVED in answer.stderr.decode() and answer.stderr.decode()

    wait_for(says_removed, 60, "the removed node to say it was removed")
    print(f"\nthe removed node left {time.monotonic() - removed_at:.1f} s after `node rm` was run")
    assert not os.path.exists(os.path.join(victim.p2porch_data_dir, "cluster.json"))
    token = cli_json(sb, rest[0].name, "token")["token"]
    rejoined = cli(sb, victim.name, "join", rest[0].address, "--token", token)
    assert rejoined.returncode == 0, rejoined.stderr.decode()
    wait_for(lambda: victim.name in {r["name"] for r in cli_json(sb, rest[1].name, "node", "ls")}, 60, "back")
    assert cli(sb, victim.name, "node", "ls").returncode == 0
