import math

import pytest

from p2porch.gossip.awareness import Awareness
from p2porch.gossip.broadcast import BroadcastQueue
from p2porch.gossip.suspicion import Suspicion, remaining_suspicion_s, suspicion_min_timeout_s


def test_queue_transmit_limit_then_empty():
    q = BroadcastQueue()
    q.queue("a", "msg-a", 100)
    sent = 0
    for _ in range(20):
        msgs, used = q.get(1000, limit=3)
        if msgs:
            assert msgs == ["msg-a"] and used == 100
            sent += 1
    assert sent == 3
    assert len(q) == 0


def test_queue_prefers_fewest_transmits_then_newest_and_respects_budget():
    q = BroadcastQueue()
    q.queue("old", "old", 100)
    assert q.get(1000, limit=5)[0] == ["old"]
    q.queue("n1", "n1", 100)
    q.queue("n2", "n2", 100)
    msgs, used = q.get(250, limit=5)
    assert msgs == ["n2", "n1"] and used == 200
    msgs, _ = q.get(1000, limit=5)
    assert msgs == ["n2", "n1", "old"]  # all sent once: newest first


def test_queue_invalidates_same_key():
    q = BroadcastQueue()
    q.queue("x", "suspect-x", 50)
    q.queue("x", "alive-x", 50)
    assert len(q) == 1
    assert q.get(1000, limit=4)[0] == ["alive-x"]
    assert q.transmits("x") == 1


def test_queue_drops_when_limit_shrinks():
    q = BroadcastQueue()
    q.queue("x", "m", 10)
    for _ in range(3):
        q.get(1000, limit=8)
    assert q.get(1000, limit=2) == ([], 0)
    assert len(q) == 0


def test_awareness_bounds_and_scaling():
    a = Awareness(8)
    a.apply(-3)
    assert a.score == 0 and a.scale(0.5) == 0.5
    a.apply(3)
    assert a.scale(1.0) == 4.0
    a.apply(100)
    assert a.score == 7 and a.scale(1.0) == 8.0


@pytest.mark.parametrize("n,expected", [(1, 4.0), (5, 4.0), (10, 4.0), (100, 8.0), (1000, 12.0)])
def test_suspicion_min_timeout(n, expected):
    assert suspicion_min_timeout_s(4, n, 1.0) == pytest.approx(expected)


def test_suspicion_timeout_shrinks_logarithmically_with_confirmations():
    min_s, max_s, k = 8.0, 48.0, 2
    assert remaining_suspicion_s(0, k, 0.0, min_s, max_s) == pytest.approx(48.0)
    one = 48.0 - math.log(2) / math.log(3) * 40.0
    assert remaining_suspicion_s(1, k, 0.0, min_s, max_s) == pytest.approx(math.floor(one * 1000) / 1000)
    assert remaining_suspicion_s(2, k, 0.0, min_s, max_s) == pytest.approx(8.0)
    assert remaining_suspicion_s(5, k, 3.0, min_s, max_s) == pytest.approx(5.0)
    assert remaining_suspicion_s(0, 0, 1.0, min_s, max_s) == pytest.approx(7.0)


def test_suspicion_confirmations_are_distinct_and_capped():
    s = Suspicion("a", k=2, min_s=8.0, max_s=48.0, start_s=100.0)
    assert s.deadline_s() == pytest.approx(148.0)
    assert not s.confirm("a")  # the original suspector does not count
    assert s.confirm("b")
    assert not s.confirm("b")
    assert s.confirm("c")
    assert not s.confirm("d")  # k reached
    assert s.deadline_s() == pytest.approx(108.0)
    assert Suspicion("a", k=0, min_s=8.0, max_s=48.0, start_s=0.0).deadline_s() == pytest.approx(8.0)
