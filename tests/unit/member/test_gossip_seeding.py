"""The gossip seed round (``member.gossip.seed_missing``): one push/pull per member still unknown."""

from __future__ import annotations

import trio

from p2porch.member.gossip import seed_missing


class FakeGossip:
    """Gossip whose push/pull with ``address`` teaches it the members that side knows."""

    def __init__(self, views: dict[str, set[str]], known: set[str] | None = None) -> None:
        self.views = views  # address -> node ids that answer from there (an absent address is down)
        self.known = set(known or ())
        self.tried: list[str] = []

    def members(self) -> dict[str, object]:
        return {node_id: object() for node_id in self.known}

    async def join(self, seeds: list[str]) -> int:
        answered = 0
        for address in seeds:
            self.tried.append(address)
            if address in self.views:
                self.known |= self.views[address]
                answered += 1
        return answered


MISSING = [("a", "10.0.0.1:7946"), ("b", "10.0.0.2:7946"), ("c", "10.0.0.3:7946")]


def test_one_answer_that_brings_every_member_ends_the_round() -> None:
    everyone = {"a", "b", "c", "me"}
    gossip = FakeGossip({address: everyone for _, address in MISSING})
    assert trio.run(seed_missing, gossip, MISSING) is True
    assert gossip.tried == ["10.0.0.1:7946"]


def test_each_member_an_answer_did_not_bring_is_pushed_to() -> None:
    gossip = FakeGossip(
        {"10.0.0.1:7946": {"a", "me"}, "10.0.0.2:7946": {"b", "c", "me"}, "10.0.0.3:7946": {"c"}}
    )
    assert trio.run(seed_missing, gossip, MISSING) is True
    assert gossip.tried == ["10.0.0.1:7946", "10.0.0.2:7946"]


def test_a_member_that_does_not_answer_blocks_none_of_the_others() -> None:
    gossip = FakeGossip({"10.0.0.2:7946": {"b"}, "10.0.0.3:7946": {"c"}})  # a is down
    assert trio.run(seed_missing, gossip, MISSING) is False  # retried soon by the caller
    assert gossip.tried == ["10.0.0.1:7946", "10.0.0.2:7946", "10.0.0.3:7946"]
    assert gossip.known == {"b", "c"}
