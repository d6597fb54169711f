"""A stack member named as Swarm names it: ``service ps|logs|scale|inspect shop_front`` after ``stack
deploy ... shop`` (the h48 walk: ``no such service: shop_front``; p2porch's name is ``shop-front``, and
its DNS already answered ``shop_front``)."""

from __future__ import annotations

import pytest

from p2porch.control.service_ops import ServiceOps
from p2porch.control.usage_ops import UsageOps
from p2porch.errors import NotFoundError
from p2porch.stack.names import STACK_LABEL, STACK_SERVICE_LABEL
from p2porch.testing.memstore import MemoryManager


def member(stack: str, short: str) -> dict[str, str]:
    return {STACK_LABEL: stack, STACK_SERVICE_LABEL: short}


@pytest.fixture
async def ops() -> ServiceOps:
    ops = ServiceOps(MemoryManager(), logs=None)  # type: ignore[arg-type]
    await ops.create({"name": "shop-front", "image": "x", "labels": member("shop", "front")})
    await ops.create({"name": "shop-bookstack-db", "image": "x", "labels": member("shop", "bookstack_db")})
    await ops.create({"name": "web", "image": "x"})
    return ops


async def test_a_stack_member_is_found_by_its_swarm_name(ops: ServiceOps) -> None:
    assert ops.find("shop_front").name == "shop-front"
    assert ops.find("shop_bookstack_db").name == "shop-bookstack-db"
    assert ops.service_or_task("shop_front")[0].name == "shop-front"  # service logs
    assert UsageOps.service_ids(None, ops._state(), "shop_front") == [ops.find("shop-front").service_id]  # type: ignore[arg-type]


@pytest.mark.parametrize("ref", ["shop_web", "other_front", "web_", "shop_"])
async def test_a_swarm_name_no_stack_member_has_is_still_no_such_service(ops: ServiceOps, ref: str) -> None:
    with pytest.raises(NotFoundError, match=f"^No such service: {ref}$"):
        ops.find(ref)


async def test_a_swarm_name_two_stack_members_share_is_ambiguous_naming_both(ops: ServiceOps) -> None:
    """Stack ``a_b`` service ``c`` and stack ``a`` service ``b_c`` are both ``a_b_c`` to Swarm: the name
    said ``no such service`` where it names two. (A stack name has no ``_``, so only labels set by hand on
    ``service create`` give two members one Swarm name.)"""
    await ops.create({"name": "abc-one", "image": "x", "labels": member("a_b", "c")})
    await ops.create({"name": "abc-two", "image": "x", "labels": member("a", "b_c")})
    for find in (ops.find, lambda ref: ops.service_or_task(ref)[0]):
        with pytest.raises(
            NotFoundError, match="^service a_b_c is ambiguous: the Swarm name of abc-one and abc-two"
        ):
            find("a_b_c")
    with pytest.raises(NotFoundError, match="ambiguous"):
        UsageOps.service_ids(None, ops._state(), "a_b_c")  # type: ignore[arg-type]
