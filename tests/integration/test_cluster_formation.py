"""Cluster formation on the sandbox: init, join, voters, bad tokens, garbage, leave, crashes."""

from __future__ import annotations

import os
import signal
import socket
import time

import httpx
import pytest
from clusterkit import IMAGE, P2PORCH, api, cli, cli_json, wait_for

from p2porch.sandbox.sandbox import Sandbox, SandboxNode
from p2porch.sandbox.system import pid_alive, read_pid


def node_table(sb: Sandbox, node: str) -> list[tuple[str, str, str]]:
    """``node``'s own copy of the node table (``--stale``: what it applied, not the leader's)."""
    rows = cli_json(sb, node, "--stale", "node", "ls")
    return sorted(
        (r["name"], r["id"], "voter" if r["raft_role"] == "leader" else r["raft_role"]) for r in rows
    )


def labels_of(sb: Sandbox, viewer: str, node: str, stale: bool = False) -> dict[str, str]:
    """``node``'s labels as ``viewer`` reads them (``stale``: ``viewer``'s own copy, for catch-up waits)."""
    flags = ("--stale",) if stale else ()
    return {r["name"]: r["labels"] for r in cli_json(sb, viewer, *flags, "node", "ls")}[node]


def restart_daemon(sb: Sandbox, node: SandboxNode, sig: int = signal.SIGKILL) -> None:
    pid = read_pid(node.p2porch_pidfile)
    assert pid is not None
    os.kill(pid, sig)
    wait_for(lambda: not pid_alive(pid), what=f"daemon {node.name} to die")
    if sig == signal.SIGKILL:  # a killed daemon leaves its pid file and socket behind
        os.unlink(node.p2porch_pidfile)
    sb.up(len(sb.existing_indexes()))


@pytest.fixture(scope="module")
def cluster():
    sb = Sandbox("p2cf", subnet="10.71.0.0/24")
    try:
        nodes = sb.up(5)
        init = cli_json(sb, "n1", "init", "--label", "zone=a")
        yield sb, nodes, init["token"]
    finally:
        sb.down()


@pytest.fixture
def five_nodes(cluster):
    """The module's cluster with all five nodes members (3 voters): what the earlier tests built when
    the file runs in order, built here when a test runs alone (no hidden dependency on test order)."""
    sb, nodes, _ = cluster
    members = {r["name"] for r in cli_json(sb, "n1", "node", "ls")}
    missing = [n.name for n in nodes if n.name not in members]
    if missing:
        token = cli_json(sb, "n1", "token")["token"]
        for name in missing:
            joined = cli(sb, name, "join", "10.71.0.1", "--token", token)
            assert joined.returncode == 0, joined.stderr.decode()

    def formed():
        rows = cli_json(sb, "n1", "node", "ls")
        voters = [r for r in rows if r["raft_role"] in ("voter", "leader")]
        return len(rows) == 5 and len(voters) == 3 and cli_json(sb, "n1", "status")["cluster"]["has_quorum"]

    wait_for(formed, 90, "5 members, 3 of them voters")
    return cluster


def test_init_and_joins_form_one_cluster(cluster):
    sb, nodes, token = cluster
    for name, peer in (("n2", "10.71.0.1"), ("n3", "10.71.0.2:7948")):
        result = cli(sb, name, "join", peer, "--token", token)
        assert result.returncode == 0, result.stderr.decode()
        assert b"joined cluster" in result.stdout
    expected = node_table(sb, "n1")
    assert [r[0] for r in expected] == ["n1", "n2", "n3"]
    for name in ("n2", "n3"):
        wait_for(lambda name=name: node_table(sb, name) == expected, what=f"node ls on {name}")

    def one_leader():
        rows = cli_json(sb, "n2", "node", "ls")
        return rows if sum(r["raft_role"] == "leader" for r in rows) == 1 else None

    rows = wait_for(one_leader, what="exactly one leader")
    assert {r["name"]: r["labels"] for r in rows}["n1"] == {"zone": "a"}
    assert len({r["subnet"] for r in rows}) == 3  # every node leased its own overlay subnet


def test_five_nodes_have_exactly_three_voters(cluster):
    sb, nodes, token = cluster
    members = {r["name"] for r in cli_json(sb, "n1", "node", "ls")}
    for name in sorted({"n2", "n3"} - members):  # run alone: the first test's joins (3 voters first)
        assert cli(sb, name, "join", "10.71.0.1", "--token", token).returncode == 0
    for name in ("n4", "n5"):
        result = cli(sb, name, "join", "10.71.0.1", "--token", token)
        assert result.returncode == 0, result.stderr.decode()
        assert b"as a replica" in result.stdout
    for name in ("n1", "n4", "n5"):
        rows = wait_for(
            lambda name=name: len(cli_json(sb, name, "node", "ls")) == 5, what=f"5 nodes on {name}"
        )
        rows = cli_json(sb, name, "node", "ls")
        roles = sorted("voter" if r["raft_role"] == "leader" else r["raft_role"] for r in rows)
        assert roles == ["replica", "replica", "voter", "voter", "voter"]
    status = cli_json(sb, "n1", "status")["cluster"]
    assert len(status["voters"]) == 3
    # A replica's CLI can write: the write is forwarded and replicated everywhere.
    result = cli(sb, "n5", "node", "update", "n4", "--label-add", "from=replica")
    assert result.returncode == 0, result.stderr.decode()
    wait_for(lambda: labels_of(sb, "n1", "n4") == {"from": "replica"}, what="replica write visible on n1")


def test_wrong_or_malformed_token_is_refused_and_writes_nothing(five_nodes):
    sb, nodes, token = five_nodes
    # n1..n5 are all members by now: try from a second, fresh daemon in n5's namespace.
    before = cli_json(sb, "n1", "status")["cluster"]["state_version"]
    cluster_id, secret = token.split("-", 3)[2:]
    wrong = f"P2PT-1-{cluster_id}-{'A' * 43}"
    sock = "unix:///run/p2porch-sandbox/p2cf/n5/extra.sock"
    data = "/var/lib/p2porch-sandbox/p2cf/n5/extra"
    for bad, message in (
        (wrong, b"wrong join token"),
        ("P2PT-1-nothex-short", b"malformed join token"),
        (f"P2PT-1-{'0' * 16}-{secret}", b"the token is for another cluster"),
    ):
        result = sb.exec(
            "n5",
            [
                *P2PORCH,
                "--host",
                sock,
                "join",
                "10.71.0.1",
                "--token",
                bad,
                "--data-dir",
                data,
                "--name",
                "intruder",
                "--advertise-addr",
                "10.71.0.5",
            ],
            capture=True,
        )
        assert result.returncode != 0
        assert message in result.stderr, result.stderr
    assert not os.path.exists(os.path.join(data, "cluster.json"))
    assert cli_json(sb, "n1", "status")["cluster"]["state_version"] == before
    assert "intruder" not in [r["name"] for r in cli_json(sb, "n1", "node", "ls")]
    extra_pid = read_pid(os.path.join(data, "daemon.pid"))
    if extra_pid is not None:
        os.kill(extra_pid, signal.SIGTERM)
        wait_for(lambda: not pid_alive(extra_pid), what="extra daemon to stop")


def test_garbage_on_raft_and_join_ports_is_survived(five_nodes):
    sb, nodes, _ = five_nodes
    pid = read_pid(nodes[0].p2porch_pidfile)
    for port in (7947, 7948):
        for payload in (
            os.urandom(4096),
            b"\x00" * 64,
            b"GET / HTTP/1.1\r\n\r\n",
            b"\xff\xff\xff\xff" + b"x" * 100,
        ):
            with socket.create_connection((nodes[0].address, port), timeout=5) as conn:
                conn.sendall(payload)
                time.sleep(0.05)
    assert pid is not None and pid_alive(pid)
    with api(nodes[0]) as client:
        status = client.get("/status").json()
        assert status["cluster"]["has_quorum"]
    # The cluster still commits writes.
    assert cli(sb, "n1", "node", "update", "n2", "--label-add", "after=garbage").returncode == 0
    with open(nodes[0].p2porch_log) as handle:
        log = handle.read()
    assert "dropped bad join connection" in log or "refused a join attempt" in log


def test_init_on_a_member_is_refused_and_changes_nothing(five_nodes):
    sb, nodes, _ = five_nodes
    before = cli_json(sb, "n1", "status")["cluster"]
    result = cli(sb, "n1", "init")
    assert result.returncode != 0
    assert b"already part of cluster" in result.stderr
    after = cli_json(sb, "n1", "status")["cluster"]
    assert after["cluster_id"] == before["cluster_id"] and after["state_version"] == before["state_version"]


def test_leader_kill_while_writing_loses_no_acknowledged_write(five_nodes):
    sb, nodes, _ = five_nodes
    leader_addr = cli_json(sb, "n1", "status")["cluster"]["leader"]
    leader = next(n for n in nodes if f"{n.address}:7947" == leader_addr)
    writer = next(n for n in nodes[:3] if n is not leader)
    acked: list[str] = []
    killed_at = None
    with api(writer) as client:
        deadline = time.monotonic() + 60
        i = 0
        while time.monotonic() < deadline and (
            killed_at is None or len(acked) < 40 or time.monotonic() - killed_at < 3
        ):
            key = f"w{i}"
            i += 1
            try:
                response = client.post("/nodes/n5/update", json={"label_add": {key: "1"}})
            except httpx.HTTPError:
                continue
            if response.status_code == 200:
                acked.append(key)
            if len(acked) == 20 and killed_at is None:
                os.kill(read_pid(leader.p2porch_pidfile), signal.SIGKILL)
                killed_at = time.monotonic()
        assert killed_at is not None
    after_kill = acked[20:]
    assert len(after_kill) >= 10, f"writes did not resume after the leader was killed ({len(acked)} acked)"
    os.unlink(leader.p2porch_pidfile)
    sb.up(5)
    for node in nodes:
        wait_for(
            lambda node=node: set(acked) <= set(labels_of(sb, node.name, "n5", stale=True)),
            what=f"acknowledged writes on {node.name}",
        )
    assert cli_json(sb, "n1", "status")["cluster"]["has_quorum"]


def test_restarts_keep_state(five_nodes):
    sb, nodes, _ = five_nodes
    before = node_table(sb, "n1")
    restart_daemon(sb, nodes[1], signal.SIGKILL)  # one voter crashes
    restart_daemon(sb, nodes[4], signal.SIGTERM)  # one replica restarts cleanly
    for node in nodes:
        wait_for(lambda node=node: node_table(sb, node.name) == before, what=f"state on {node.name}")
    # Whole cluster killed at once, then restarted.
    pids = [read_pid(n.p2porch_pidfile) for n in nodes]
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    for node, pid in zip(nodes, pids, strict=True):
        wait_for(lambda pid=pid: not pid_alive(pid), what="daemons to die")
        os.unlink(node.p2porch_pidfile)
    sb.up(5)
    for node in nodes:
        wait_for(
            lambda node=node: node_table(sb, node.name) == before,
            what=f"state after full restart on {node.name}",
        )
    assert cli(sb, "n3", "node", "update", "n1", "--label-add", "after=restart").returncode == 0


def test_leave_rm_and_rejoin(five_nodes):
    sb, nodes, token = five_nodes
    result = cli(sb, "n5", "leave")
    assert result.returncode == 0, result.stderr.decode()

    def n5_seen_by_n1() -> dict:
        return {r["name"]: r for r in cli_json(sb, "n1", "node", "ls")}["n5"]

    # `leave` returns once its dead message reached 3 of 4 peers: n1 may hear it a round later. A node
    # whose probes failed instead would be "dead" or "suspect", never "left": the wait keeps the check.
    wait_for(lambda: n5_seen_by_n1()["gossip"] == "left", timeout_s=20, what="n1's gossip hears n5 left")
    row = n5_seen_by_n1()
    assert row["status"] == "left" and row["subnet"] is None
    # no longer a voter, and gossip was told (not "alive" until the probes fail)
    assert (row["raft_role"], row["gossip"]) == ("none", "left"), row
    assert cli(sb, "n5", "node", "ls").returncode != 0  # no longer a member
    removed = cli(sb, "n1", "node", "rm", "n5")
    assert removed.returncode == 0, removed.stderr.decode()
    assert "n5" not in [r["name"] for r in cli_json(sb, "n2", "node", "ls")]
    refused = cli(sb, "n1", "node", "rm", "n4")  # still ready: needs --force
    assert refused.returncode != 0 and b"--force" in refused.stderr
    # Rotate the join token: the old one no longer admits anyone, the new one does.
    rotated = cli_json(sb, "n2", "token", "--rotate")["token"]
    assert rotated != token and rotated.split("-")[2] == token.split("-")[2]
    assert cli_json(sb, "n3", "token")["token"] == rotated  # replicated to every member
    stale = cli(sb, "n5", "join", "10.71.0.2", "--token", token)
    assert stale.returncode != 0 and b"wrong join token" in stale.stderr
    rejoin = cli(sb, "n5", "join", "10.71.0.2", "--token", rotated)
    assert rejoin.returncode == 0, rejoin.stderr.decode()
    wait_for(lambda: "n5" in [r["name"] for r in cli_json(sb, "n1", "node", "ls")], what="n5 back")


def roles(sb: Sandbox, viewer: str, stale: bool = False) -> dict[str, str]:
    """Each node's Raft role as ``viewer`` reads them (``stale``: ``viewer``'s own copy)."""
    flags = ("--stale",) if stale else ()
    return {
        r["name"]: "voter" if r["raft_role"] == "leader" else r["raft_role"]
        for r in cli_json(sb, viewer, *flags, "node", "ls")
    }


def kill_daemon(node: SandboxNode) -> None:
    pid = read_pid(node.p2porch_pidfile)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not pid_alive(pid), what=f"daemon {node.name} to die")
    os.unlink(node.p2porch_pidfile)


def test_autopilot_replaces_two_dead_voters_one_after_the_other(five_nodes):
    """5 nodes, 3 voters: a voter dies, then the leader; each time a replica is promoted, writes keep
    working, and the dead voters come back as replicas (never as stale voters)."""
    sb, nodes, _ = five_nodes
    wait_for(lambda: len(roles(sb, "n1")) == 5 and cli_json(sb, "n1", "status")["cluster"]["has_quorum"])
    by_name = {n.name: n for n in nodes}
    start = roles(sb, "n1")
    assert sorted(start.values()) == ["replica", "replica", "voter", "voter", "voter"], start
    leader_addr = cli_json(sb, "n1", "status")["cluster"]["leader"]
    leader = next(n for n in nodes if f"{n.address}:7947" == leader_addr)
    first = next(
        by_name[name]
        for name, role in sorted(start.items())
        if role == "voter" and by_name[name] is not leader
    )
    dead: list[SandboxNode] = []
    written: list[tuple[str, str]] = []  # (node labelled, label key) committed while voters were dead
    try:
        for victim in (first, leader):
            live = [n for n in nodes if n is not victim and n not in dead]
            viewer = live[0].name
            kill_daemon(victim)
            dead.append(victim)
            killed_at = time.monotonic()

            def replaced(viewer=viewer, victim=victim):
                current = roles(sb, viewer)
                status = cli_json(sb, viewer, "status")["cluster"]
                live_voters = [
                    name for name, role in current.items() if role == "voter" and by_name[name] not in dead
                ]
                return (
                    current[victim.name] == "replica"
                    and len(live_voters) == 3
                    and len(status["voters"]) == 3
                    and status["has_quorum"]
                )

            wait_for(replaced, 90, f"{victim.name} replaced by a promoted replica")
            print(
                f"autopilot: voter {victim.name} replaced {time.monotonic() - killed_at:.1f} s after its kill"
            )
            key = f"after-{victim.name}"
            result = cli(sb, viewer, "node", "update", viewer, "--label-add", f"{key}=1")
            assert result.returncode == 0, result.stderr.decode()
            written.append((viewer, key))
        # both dead voters come back as replicas of the new configuration, and they catch up
        sb.up(5)
        for victim in dead:
            wait_for(
                lambda victim=victim: (
                    roles(sb, victim.name, stale=True)[victim.name] == "replica"
                    and all(key in labels_of(sb, victim.name, name, stale=True) for name, key in written)
                ),
                60,
                f"{victim.name} back as a replica with the writes it missed",
            )
            status = cli_json(sb, victim.name, "status")["cluster"]
            assert status["raft_role"] == "replica" and status["has_quorum"], status
        final = roles(sb, "n1")
        assert sorted(final.values()) == ["replica", "replica", "voter", "voter", "voter"], final
        assert all(final[v.name] == "replica" for v in dead)
        assert len(cli_json(sb, "n1", "status")["cluster"]["voters"]) == 3
        result = cli(sb, dead[0].name, "node", "update", dead[1].name, "--label-add", "returned=1")
        assert result.returncode == 0, result.stderr.decode()
        wait_for(
            lambda: labels_of(sb, "n1", dead[1].name).get("returned") == "1",
            what="write from a returned node",
        )
    finally:
        sb.up(5)


def test_quorum_loss_and_recover_force_new_cluster(five_nodes):
    """Two of three voters die: the survivor cannot commit and says so; `recover --force-new-cluster`
    restarts the cluster from its state as the only voter; live replicas resynchronise (new Raft
    generation) and are promoted; the dead voters return as replicas and catch up."""
    sb, nodes, _ = five_nodes
    wait_for(lambda: cli_json(sb, "n1", "status")["cluster"]["has_quorum"], what="a quorum")
    by_name = {n.name: n for n in nodes}
    refused = cli(sb, "n1", "recover", "--force-new-cluster")  # a healthy cluster is never discarded
    assert refused.returncode != 0 and b"has a quorum" in refused.stderr, refused.stderr
    unconfirmed = cli(sb, "n1", "recover")
    assert unconfirmed.returncode == 2 and b"--force-new-cluster" in unconfirmed.stderr
    voters = sorted(name for name, role in roles(sb, "n1").items() if role == "voter")
    survivor, *victims = (by_name[name] for name in voters)
    marker = cli(sb, survivor.name, "node", "update", survivor.name, "--label-add", "before=loss")
    assert marker.returncode == 0, marker.stderr.decode()
    # one task per node: the lost voters' two must be replaced right after the recovery
    spread = (
        "service",
        "create",
        "-d",
        "--name",
        "spread",
        "--replicas",
        "5",
        "--max-replicas-per-node",
        "2",
    )
    assert cli(sb, survivor.name, *spread, IMAGE, "sleep", "100000").returncode == 0
    wait_for(lambda: len(running_on(sb, survivor.name, "spread")) == 5, 90, "5 running tasks")
    try:
        for victim in victims:
            kill_daemon(victim)
        wait_for(
            lambda: not cli_json(sb, survivor.name, "status")["cluster"]["has_quorum"], 30, "quorum lost"
        )
        blocked = cli(sb, survivor.name, "node", "update", survivor.name, "--label-add", "during=loss")
        assert blocked.returncode != 0

        recovered = cli_json(sb, survivor.name, "recover", "--force-new-cluster")
        recovered_at = time.monotonic()
        assert recovered["generation"] >= 1 and recovered["nodes"] == 5
        # the voters that did not answer the recovery are down in the restored state (before: ready, and
        # their tasks counted, until the new leader's gossip had missed them for 30 s, leader/unseen.py)
        lost = {v.name for v in victims}
        # the survivor's own copy: autopilot may be adding a voter, and that 2-voter group cannot commit
        statuses = {r["name"]: r["status"] for r in cli_json(sb, survivor.name, "--stale", "node", "ls")}
        assert {name for name, status in statuses.items() if status == "down"} == lost, statuses

        def replaced() -> bool:
            on = running_on(sb, survivor.name, "spread")
            return len(on) == 5 and not lost & set(on)

        wait_for(replaced, 30, "the lost voters' tasks replaced on live nodes")
        replaced_s = time.monotonic() - recovered_at
        print(f"recover: lost voters down at once, their tasks running elsewhere {replaced_s:.1f} s after")
        assert replaced_s < 15
        status = cli_json(sb, survivor.name, "status")["cluster"]
        # the survivor is the only voter left of the old ones (autopilot may already be adding replicas)
        assert status["has_quorum"] and f"{survivor.address}:7947" in status["voters"], status
        assert not {f"{v.address}:7947" for v in victims} & set(status["voters"]), status
        assert labels_of(sb, survivor.name, survivor.name, stale=True).get("before") == "loss"
        # Known limit (docs/failure-model.md): autopilot adds the first replica back as a voter within
        # about a second; until that voter has caught up the 2-voter group cannot commit (no learner
        # stage in pysyncobj), so a write in that window may time out. Writable again is the promise.
        wait_for(
            lambda: (
                cli(
                    sb, survivor.name, "node", "update", survivor.name, "--label-add", "after=recovery"
                ).returncode
                == 0
            ),
            30,
            "a write after the recovery",
        )

        live = [n for n in nodes if n not in victims]

        def voters_back():
            current = roles(sb, survivor.name)
            live_voters = [n for n in live if current[n.name] == "voter"]
            return (
                len(live_voters) == 3 and len(cli_json(sb, survivor.name, "status")["cluster"]["voters"]) == 3
            )

        wait_for(voters_back, 90, "3 voters among the live nodes again")
        for n in live:
            wait_for(
                lambda n=n: labels_of(sb, n.name, survivor.name, stale=True).get("after") == "recovery",
                30,
                n.name,
            )
    finally:
        sb.up(5)
    for victim in victims:
        wait_for(
            lambda victim=victim: (
                roles(sb, victim.name, stale=True)[victim.name] == "replica"
                and labels_of(sb, victim.name, survivor.name, stale=True).get("after") == "recovery"
            ),
            60,
            f"{victim.name} back as a replica of the recovered cluster",
        )
    final = roles(sb, "n1")
    assert sorted(final.values()) == ["replica", "replica", "voter", "voter", "voter"], final
    # a node that joins the recovered cluster gets its generation (else its Raft password would not match)
    rejoiner = victims[0]
    assert cli(sb, rejoiner.name, "leave").returncode == 0
    assert cli(sb, survivor.name, "node", "rm", rejoiner.name).returncode == 0
    token = cli_json(sb, survivor.name, "token")["token"]
    joined = cli(sb, rejoiner.name, "join", survivor.address, "--token", token)
    assert joined.returncode == 0, joined.stderr.decode()
    wait_for(lambda: roles(sb, rejoiner.name).get(rejoiner.name) in ("voter", "replica"), 60, "rejoined")
    write = cli(sb, rejoiner.name, "node", "update", rejoiner.name, "--label-add", "rejoined=1")
    assert write.returncode == 0, write.stderr.decode()
    wait_for(lambda: labels_of(sb, survivor.name, rejoiner.name).get("rejoined") == "1", 30, "write visible")
    assert cli(sb, survivor.name, "service", "rm", "spread").returncode == 0


def running_on(sb: Sandbox, viewer: str, service: str) -> list[str]:
    """The node of each running task of ``service`` that should run."""
    rows = cli_json(sb, viewer, "service", "ps", service)
    return [r["node"] for r in rows if r["state"] == "running" and r["desired_state"] == "running"]
