"""A crowded sandbox's formation plan (pacing.py, pure) and the Raft timing its state carries."""

from __future__ import annotations

import pytest

from p2porch.errors import SandboxError
from p2porch.sandbox import pacing
from p2porch.sandbox import sandbox as sandbox_mod
from p2porch.sandbox.cluster import Formation, not_ready_summary
from p2porch.sandbox.sandbox import Sandbox, daemon_environment


class FakeClock:
    """A clock that only moves when something sleeps on it (or a reading takes time)."""

    def __init__(self) -> None:
        self.t = 100.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.sleeps.append(seconds)
        self.t += seconds


# ----------------------------------------------------------------------------- the plan


def test_small_and_crowded_sandboxes_are_paced_differently():
    assert pacing.join_pacing(20) == pacing.SMALL and pacing.join_pacing(21) == pacing.CROWDED
    assert pacing.SMALL.max_runnable_per_core == 0  # a small formation never waits for the CPU
    assert pacing.CROWDED.parallel < pacing.SMALL.parallel
    assert pacing.CROWDED.attempts > pacing.SMALL.attempts
    assert pacing.default_rtt_ms(20) == 0 and pacing.default_rtt_ms(50) == pacing.CROWDED_RTT_MS == 250


def test_run_queue_is_read_from_the_fourth_loadavg_field_less_the_reader():
    assert pacing.runnable_from_loadavg("85.02 36.33 14.70 87/1231 21131\n") == 86
    assert pacing.runnable_from_loadavg("0.00 0.00 0.00 1/100 5") == 0
    for garbage in ("", "1 2 3", "1 2 3 x 5", "1 2 3 a/b 5"):
        with pytest.raises(ValueError):
            pacing.runnable_from_loadavg(garbage)


def test_headroom_is_the_mean_run_queue_over_the_baseline_per_core():
    plan = pacing.CROWDED  # 3 runnable per core over the baseline
    assert pacing.has_headroom([4, 8, 6], cores=2, pacing=plan, baseline=0.0)  # mean 6 <= 6
    assert not pacing.has_headroom([7, 7, 7], cores=2, pacing=plan, baseline=0.0)
    assert pacing.has_headroom([7, 7, 7], cores=2, pacing=plan, baseline=2.0)  # the machine was busy already
    assert pacing.has_headroom([], cores=2, pacing=plan, baseline=0.0)  # nothing measured: do not hold
    assert pacing.has_headroom([500], cores=2, pacing=pacing.SMALL, baseline=0.0)


def test_a_join_waits_until_the_run_queue_shortens():
    clock = FakeClock()
    readings = iter([[90, 100], [40, 30], [5, 6]])
    waited = pacing.wait_for_headroom(
        pacing.CROWDED, 2, lambda: next(readings), clock.now, clock.sleep, baseline=1.0, poll_s=0.5
    )
    assert not waited.timed_out
    assert clock.sleeps == [0.5, 0.5] and waited.waited_s == pytest.approx(1.0)


def test_a_join_waits_at_most_max_wait_then_starts_anyway():
    clock = FakeClock()
    plan = pacing.JoinPacing(parallel=2, max_runnable_per_core=1.0, max_wait_s=2.0, attempts=1, retry_s=0)
    waited = pacing.wait_for_headroom(plan, 2, lambda: [100], clock.now, clock.sleep, poll_s=0.75)
    assert waited.timed_out and waited.waited_s == pytest.approx(2.0)
    assert clock.sleeps == [0.75, 0.75, 0.5]  # the last sleep ends exactly at the bound


def test_a_small_formation_never_samples_or_sleeps():
    clock = FakeClock()

    def sample() -> list[int]:
        raise AssertionError("a small sandbox must not read the run queue")

    waited = pacing.wait_for_headroom(pacing.SMALL, 2, sample, clock.now, clock.sleep)
    assert waited.waited_s == 0 and not waited.timed_out and clock.sleeps == []


def test_neighbour_limits_grow_with_the_mesh_and_are_only_ever_raised():
    assert pacing.neighbour_limits(20) == {}
    fifty = pacing.neighbour_limits(50)
    assert fifty == {"gc_thresh1": 4096, "gc_thresh2": 8192, "gc_thresh3": 16384}
    assert fifty["gc_thresh3"] >= 4 * 50 * 50
    current = {"gc_thresh1": 128, "gc_thresh2": 9000, "gc_thresh3": 1024}
    assert pacing.limits_to_raise(current, fifty) == {"gc_thresh1": 4096, "gc_thresh3": 16384}


# ----------------------------------------------------------------------------- reporting


def test_formation_reports_failed_joins_and_pacing():
    formation = Formation(token="t", init_s=1.0, join_s={"n2": 1.0, "n3": 3.0}, retries=2)
    formation.failed["n4"] = "n4: /cluster/join failed: no commit"
    formation.paced_s = 12.34
    summary = formation.to_dict()
    assert summary["failed"] == {"n4": "n4: /cluster/join failed: no commit"}
    assert summary["retries"] == 2 and summary["paced_s"] == 12.3 and summary["join_max_s"] == 3.0


def test_not_ready_summary_names_each_node_in_natural_order():
    rows = [
        {"name": "n10", "status": "down", "subnet": "10.0.10.0/24"},
        {"name": "n1", "status": "ready", "subnet": "10.0.1.0/24"},
        {"name": "n2", "status": "joining", "subnet": ""},
    ]
    text = not_ready_summary(rows, ["n1", "n2", "n10", "n43"])
    assert text == "n2 (joining, no subnet), n10 (down), n43 (not a member)"
    assert not_ready_summary(None, ["n1"]) == "no answer to GET /nodes"


# ----------------------------------------------------------------------------- timing in the state


@pytest.fixture
def roots(tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox_mod, "RUN_ROOT", str(tmp_path / "run"))
    monkeypatch.setattr(sandbox_mod, "DATA_ROOT", str(tmp_path / "data"))
    return tmp_path


def _created(name: str, nodes: int, **options) -> Sandbox:
    sb = Sandbox(name, **options)
    sb.settle_timing(nodes)
    return sb


def test_a_crowded_sandbox_keeps_its_timing_for_every_later_command(roots):
    _created("big", 50, subnet="10.33.0.0/16")
    later = Sandbox("big")  # e.g. `sandbox up` again to restart a daemon, in another process
    assert later.raft_rtt_ms == 250 and later.saved_nodes == 50
    env = daemon_environment({"PATH": "/bin"}, later.raft_rtt_ms)
    assert env["P2PORCH_RAFT_RTT_MS"] == "250"
    # the caller's own setting still wins
    assert daemon_environment({"P2PORCH_RAFT_RTT_MS": "40"}, 250)["P2PORCH_RAFT_RTT_MS"] == "40"


def test_a_small_sandbox_runs_the_lan_timing_also_when_it_grows(roots):
    small = _created("small", 5)
    assert small.raft_rtt_ms == 0
    grown = Sandbox("small")
    grown.settle_timing(30)  # one cluster, one timing: its running daemons use the LAN timing
    assert Sandbox("small").raft_rtt_ms == 0
    assert "P2PORCH_RAFT_RTT_MS" not in daemon_environment({}, grown.raft_rtt_ms)


def test_an_explicit_timing_is_kept_and_a_different_one_is_refused(roots):
    _created("pick", 3, raft_rtt_ms=100)
    assert Sandbox("pick").raft_rtt_ms == 100
    assert Sandbox("pick", raft_rtt_ms=100).raft_rtt_ms == 100
    with pytest.raises(SandboxError, match="raft rtt 100 ms; run down first"):
        Sandbox("pick", raft_rtt_ms=250)
    for bad in (-1, 5000):
        with pytest.raises(SandboxError, match="between 0 and 1000"):
            Sandbox("neg", raft_rtt_ms=bad)


# ----------------------------------------------------------------------------- the formation's shell


def test_a_failed_join_is_retried_then_reported_and_the_others_still_join(monkeypatch):
    from p2porch.sandbox import cluster

    nodes = [Sandbox("form").node(i) for i in range(1, 6)]
    calls: dict[str, int] = {}

    def post(node, path, body, timeout_s=60.0):
        if path == "/cluster/init":
            return {"token": "T"}
        calls[node.name] = calls.get(node.name, 0) + 1
        assert body == {"peer": nodes[0].address, "token": "T"}
        if node.name == "n3" or (node.name == "n4" and calls["n4"] < 3):
            raise SandboxError(f"{node.name}: /cluster/join failed: busy")
        return {"role": "replica"}

    monkeypatch.setattr(cluster, "_post", post)
    monkeypatch.setattr(cluster, "_existing_cluster", lambda seed: None)
    monkeypatch.setattr(cluster.time, "sleep", lambda s: None)
    plan = pacing.JoinPacing(parallel=2, max_runnable_per_core=0.0, max_wait_s=0.0, attempts=3, retry_s=1.0)
    formation = cluster.form_cluster(nodes, pacing=plan)
    assert sorted(formation.join_s) == ["n2", "n4", "n5"]
    assert formation.failed == {"n3": "n3: /cluster/join failed: busy"}  # n4's early failures are gone
    assert calls == {"n2": 1, "n3": 3, "n4": 3, "n5": 1}
    assert formation.retries == 2 + 2


def test_a_two_site_formation_joins_through_the_first_sites_public_address(monkeypatch):
    """``sandbox up --sites 2 --init``: every joiner dials n1's router (its public address, where the
    join port of a site's first node is forwarded), as a user behind those NATs would, never n1's
    private address, which the other site cannot route to."""
    from p2porch.sandbox import cluster

    sb = Sandbox("ms", subnet="10.98.20.0/24", sites=2, nodes_per_site=2)
    nodes = [sb.node(i) for i in range(1, 5)]
    peers: dict[str, str] = {}

    def post(node, path, body, timeout_s=60.0):
        if path == "/cluster/init":
            return {"token": "T"}
        peers[node.name] = body["peer"]
        return {"role": "replica"}

    monkeypatch.setattr(cluster, "_post", post)
    monkeypatch.setattr(cluster, "_existing_cluster", lambda seed: None)
    plan = pacing.JoinPacing(parallel=2, max_runnable_per_core=0.0, max_wait_s=0.0, attempts=1, retry_s=1.0)
    formation = cluster.form_cluster(nodes, pacing=plan)
    assert not formation.failed
    assert nodes[0].address == "10.99.20.1" and nodes[0].public_addr == "10.98.20.1"
    assert peers == {"n2": "10.98.20.1", "n3": "10.98.20.1", "n4": "10.98.20.1"}


def test_a_grown_sandbox_joins_only_its_new_hosts_and_never_inits_again(monkeypatch):
    """``up --nodes 5 --init`` on a formed 4-node sandbox (the h43 walk): it asked n1 to init again, which
    failed (``already part of cluster ...; run p2porch leave first``) and left n5 out."""
    from p2porch.sandbox import cluster

    nodes = [Sandbox("grow").node(i) for i in range(1, 6)]
    posted: list[tuple[str, str]] = []

    def get(node, path, timeout_s=15.0):  # n1 right after a whole-cluster restart: its barrier refuses
        assert node.name == "n1"
        if path == "/status":
            return {"cluster": {"cluster_id": "c1", "ready": False}}
        if not path.endswith("?stale=true"):
            raise SandboxError("n1: /token failed: this node could not confirm ... (503)")
        if path.startswith("/token"):
            return {"token": "T-current", "join_command": "..."}
        return [{"name": f"n{i}"} for i in range(1, 5)]

    def post(node, path, body, timeout_s=60.0):
        posted.append((node.name, path))
        assert path == "/cluster/join" and body == {"peer": nodes[0].address, "token": "T-current"}
        return {"role": "replica"}

    monkeypatch.setattr(cluster, "_get", get)
    monkeypatch.setattr(cluster, "_post", post)
    plan = pacing.JoinPacing(parallel=2, max_runnable_per_core=0.0, max_wait_s=0.0, attempts=1, retry_s=1.0)
    formation = cluster.form_cluster(nodes, pacing=plan)
    assert posted == [("n5", "/cluster/join")]
    assert (formation.token, sorted(formation.join_s), formation.failed) == ("T-current", ["n5"], {})


def test_up_init_names_the_nodes_not_ready_and_fails(monkeypatch, capsys):
    from p2porch.cli import sandbox as sandbox_cli
    from p2porch.sandbox import cluster

    nodes = [Sandbox("form").node(i) for i in range(1, 4)]
    formation = Formation(token="T", init_s=0.1, join_s={"n2": 1.0})
    formation.failed["n3"] = "n3: /cluster/join failed: busy"
    monkeypatch.setattr(cluster, "form_cluster", lambda given: formation)

    waited: list[tuple[int, list[str]]] = []

    def ready(node, count, timeout_s=120.0, names=None):
        waited.append((count, names))
        return 1.5

    monkeypatch.setattr(cluster, "wait_ready", ready)
    assert sandbox_cli._form(nodes) is False  # n3 failed to join: no wait for it, and the run fails
    assert waited == [(2, ["n1", "n2"])]
    err = capsys.readouterr().err
    assert "join failed on n3: n3: /cluster/join failed: busy" in err

    def not_ready(node, count, timeout_s=120.0, names=None):
        raise SandboxError("not every node became ready within 120 s: n2 (not ready)")

    monkeypatch.setattr(cluster, "wait_ready", not_ready)
    assert sandbox_cli._form(nodes) is False
    assert "n2 (not ready)" in capsys.readouterr().err

    formation.failed.clear()
    monkeypatch.setattr(cluster, "wait_ready", lambda node, count, timeout_s=120.0, names=None: 2.5)
    assert sandbox_cli._form(nodes) is True
    assert "all 3 joined nodes ready 2.5 s later" in capsys.readouterr().err
