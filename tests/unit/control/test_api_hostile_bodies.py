"""The API with hostile values in JSON bodies and query strings (h46 pass): a 4xx naming the field, never
a 500. Real routes over the in-memory store (``ServiceOps`` on ``MemoryManager``), through the ASGI app."""

from __future__ import annotations

import json

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from p2porch.api.server import MAX_BODY_BYTES, build_app
from p2porch.control.routes import service_endpoints
from p2porch.model.spec import ServiceSpec

HUGE = "9" * 5000


def client(ops) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=build_app(service_endpoints(ops)), raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://p2porch/v1")


@pytest.mark.parametrize("tail", ["²", HUGE, "-1", "1.5", ""])
async def test_logs_tail_int_cannot_read_is_a_400(ops, tail):
    """Before: ``str.isdigit`` let ``²`` and 5000 digits through to ``int()``: a 500."""
    await ops.create({"name": "web", "image": "busybox"})
    async with client(ops) as c:
        response = await c.get("/services/web/logs", params={"tail": tail})
    assert response.status_code == 400, response.text
    assert response.json()["field"] == "--tail"


@pytest.mark.parametrize(
    ("field", "value"),
    [("limit_cpu", "1e99999999"), ("reserve_cpu", HUGE), ("limit_memory", 10**30),
     ("reserve_memory", "9" * 30), ("limit_cpu", 10**30)],
)  # fmt: skip
async def test_resources_past_the_bounds_are_a_400_naming_the_field(ops, manager, field, value):
    """Before: decimal.Overflow (a 500), or a spec accepted and then refused by the Raft entry's encoder
    (``Integer value out of range``, a 422 naming no field)."""
    state = manager.state
    async with client(ops) as c:
        response = await c.post("/services", json={"name": "web", "image": "busybox", field: value})
    assert response.status_code == 400, response.text
    assert response.json()["field"] == field
    assert manager.state is state  # nothing written


SPEC_FIELDS = sorted(ServiceSpec.__dataclass_fields__)
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=False),
    st.sampled_from(["²", HUGE, "1e99999999", "\x00", "-1", "", "{{ 0x" + "f" * 5000 + " }}", "a=b", ":"]),
    st.text(max_size=20),
    st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fields=st.dictionaries(st.sampled_from(SPEC_FIELDS), VALUES, min_size=1, max_size=3))
async def test_random_spec_values_never_answer_500(ops, fields):
    body = {"name": "fuzzed", "image": "busybox", **fields}
    async with client(ops) as c:
        created = await c.post(
            "/services", content=json.dumps(body), headers={"content-type": "application/json"}
        )
        updated = await c.post("/services/fuzzed/update", content=json.dumps(fields))
        if created.status_code == 200:
            await c.delete("/services/fuzzed")
    for response in (created, updated):
        assert response.status_code < 500, (body, response.text)


async def test_a_body_past_one_raft_entry_is_a_413_read_no_further(ops):
    """Before: Starlette read any body whole (an operate token could make the daemon hold gigabytes);
    now a declared or streamed length past MAX_BODY_BYTES is refused. A route that ignores its body
    (rollback) answered 2xx/4xx to the same request on main."""
    await ops.create({"name": "web", "image": "busybox"})
    padding = b'{"pad": "' + b"a" * (MAX_BODY_BYTES + 1) + b'"}'

    async def chunks():
        for start in range(0, len(padding), 1 << 20):
            yield padding[start : start + (1 << 20)]

    async with client(ops) as c:
        declared = await c.post("/services/web/rollback", content=padding)
        streamed = await c.post("/services/web/rollback", content=chunks())  # no content-length: chunked
    for response in (declared, streamed):
        assert response.status_code == 413, response.text
        assert response.json()["field"] == "body"
