"""The isolation sets' restore text: applied to the kernel's sets (a model of ``ipset restore -exist``),
it leaves every planned set holding exactly its members, writes only differences, and never names a set
that is not p2porch's."""

from __future__ import annotations

import random

import pytest

from p2porch.netoverlay.ipset_plan import parse_save, restore_text


def run_restore(current: dict[str, frozenset[str]], text: str) -> dict[str, frozenset[str]]:
    """The kernel's sets after ``ipset restore -exist`` reads ``text``; adding to a set that was never
    created fails there, and does here."""
    model = {name: set(found) for name, found in current.items()}
    for line in text.splitlines():
        op, name, *rest = line.split()
        if op == "create":
            assert rest[0] == "hash:ip" and "maxelem" in rest, line
            model.setdefault(name, set())
        elif op == "add":
            model[name].add(rest[0])
        else:
            assert op == "del", line
            model[name].discard(rest[0])
    return {name: frozenset(found) for name, found in model.items()}


def _random_sets(rng: random.Random) -> dict[str, frozenset[str]]:
    names = ["p2p-tasks", "p2p-n-aaaaaaaaaa", "p2p-n-bbbbbbbbbb", "p2p-n-cccccccccc"]
    return {
        name: frozenset(
            f"10.240.{rng.randrange(4)}.{rng.randrange(2, 30)}" for _ in range(rng.randrange(0, 40))
        )
        for name in rng.sample(names, rng.randrange(0, len(names) + 1))
    }


@pytest.mark.parametrize("seed", range(40))
def test_restore_makes_the_planned_sets_exact_and_leaves_the_others(seed: int) -> None:
    rng = random.Random(seed)
    current, wanted = _random_sets(rng), _random_sets(rng)
    current["someone-elses"] = frozenset({"192.168.0.1"})
    text = restore_text(current, wanted)
    after = run_restore(current, text)
    for name, members in wanted.items():
        assert after[name] == members
    for name in current.keys() - wanted.keys():
        assert after[name] == current[name]  # destroyed apart, once no rule matches on them
    assert "someone-elses" not in text
    changed = sum(len(wanted[n] ^ current.get(n, frozenset())) for n in wanted)
    created = len(wanted.keys() - current.keys())
    assert text.count("\n") == changed + created  # one line per difference, one per new set
    assert restore_text(after, wanted) == ""


def test_save_output_is_read_for_p2porch_sets_only() -> None:
    saved = "\n".join(
        [
            "create p2p-tasks hash:ip family inet hashsize 1024 maxelem 1048576 bucketsize 12 initval 0x1",
            "add p2p-tasks 10.240.1.2",
            "add p2p-tasks 10.240.2.3",
            "create p2p-n-0123456789 hash:ip family inet hashsize 1024 maxelem 1048576",
            "create kube-something hash:ip family inet",
            "add kube-something 10.0.0.1",
        ]
    )
    assert parse_save(saved) == {
        "p2p-tasks": frozenset({"10.240.1.2", "10.240.2.3"}),
        "p2p-n-0123456789": frozenset(),
    }
