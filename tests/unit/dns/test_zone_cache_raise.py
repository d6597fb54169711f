"""A compile that raised partway leaves no stale state: the next compile of the same names equals
``compile_zone`` (it kept a gone service's records: the names were recorded before the fragment loop,
the last zone and its keys after it, so the next compile took the known-names patch path)."""

from __future__ import annotations

import pytest

from p2porch.dns.zone import TaskEntry, ZoneData, compile_zone
from p2porch.dns.zone_cache import ZoneCompiler

NODES = {"n1": "10.0.0.1"}


def _zone(services: dict[str, list[TaskEntry]], version: int) -> ZoneData:
    return ZoneData(domain="p2p", services=services, nodes=NODES, version=version)


@pytest.mark.parametrize("context_too", [False, True])
def test_a_compile_that_raised_partway_is_forgotten(
    monkeypatch: pytest.MonkeyPatch, context_too: bool
) -> None:
    web, db, gone = [TaskEntry(1, "10.240.1.2")], [TaskEntry(1, "10.240.1.3")], [TaskEntry(1, "10.240.1.4")]
    compiler = ZoneCompiler()
    first = _zone({"web": web, "db": db, "gone": gone}, 1)
    assert compiler.compile(first) == compile_zone(first)
    new = {"web": web, "db": db, "zz": [TaskEntry(1, "10.240.1.5")]}  # gone left, zz came
    second = _zone(new, 2)
    if context_too:  # another local site: the last zone's fragments are not this context's
        second = ZoneData(domain="p2p", services=new, nodes=NODES, version=2, local_site="r1")
    real = ZoneCompiler._compile_one

    def failing(zone: ZoneData, service: str, *args: object) -> object:
        if service == "zz":
            raise RuntimeError("partway")
        return real(zone, service, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(ZoneCompiler, "_compile_one", staticmethod(failing))
    with pytest.raises(RuntimeError):
        compiler.compile(second)
    monkeypatch.setattr(ZoneCompiler, "_compile_one", staticmethod(real))
    again = compiler.compile(second)
    assert again == compile_zone(second)
    assert not any(b"gone" in labels for labels in again.names), "a gone service's names kept"
