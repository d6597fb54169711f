"""The spec field version table (pure): every field recorded with its version, and the ones a spec uses."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from p2porch.model import ServiceSpec
from p2porch.model import spec_fields as F

MEMSWAP = {"name": "web", "image": "busybox", "limit_memory": "64M", "container": {"memswap_limit": "128M"}}
DRIVERLESS = {"name": "web", "image": "busybox", "container": {"log_opts": {"max-size": "1m"}}}


def model_fields() -> dict[str, list[str]]:
    """Every model class reachable from ServiceSpec's type hints -> its fields."""
    found: dict[str, list[str]] = {}
    todo: list[Any] = [ServiceSpec]
    while todo:
        cls = todo.pop()
        if cls.__name__ in found:
            continue
        found[cls.__name__] = [f.name for f in dataclasses.fields(cls)]
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            inner = [hints[f.name]]
            while inner:
                t = inner.pop()
                if isinstance(t, type) and dataclasses.is_dataclass(t):
                    todo.append(t)
                inner.extend(typing.get_args(t))
    return found


def test_every_spec_field_has_a_recorded_version() -> None:
    """A field added to the spec (or one of its parts) must be recorded in NEWER_FIELDS at the version
    that brings it: an older node reads a spec using it as an invalid service (docs/raft.md)."""
    recorded = {f"{cls}.{name}" for cls, names in F.BASELINE_FIELDS.items() for name in names}
    assert not recorded & set(F.NEWER_FIELDS)
    recorded |= set(F.NEWER_FIELDS)
    present = {f"{cls}.{name}" for cls, names in model_fields().items() for name in names}
    assert present - recorded == set(), "record these spec fields in model/spec_fields.NEWER_FIELDS"
    assert recorded - present == set(), "these recorded spec fields are gone from the model"
    versions = [v for v, _ in F.NEWER_FIELDS.values()] + [form.version for form in F.NEWER_FORMS]
    assert max([1, *versions]) == F.SPEC_VERSION
    assert {form.owner for form in F.NEWER_FORMS} <= set(model_fields())


def test_the_fields_a_spec_uses_above_a_version() -> None:
    memswap = ServiceSpec.from_dict(MEMSWAP)
    assert F.used_above(memswap, 1) == {"container.memswap_limit": 2}
    unlimited = ServiceSpec.from_dict({**MEMSWAP, "container": {"memswap_limit": -1}})
    assert F.used_above(unlimited, 1) == {"container.memswap_limit": 2}
    assert F.used_above(ServiceSpec.from_dict(DRIVERLESS), 1) == {"container.log_opts without log_driver": 2}
    driven = ServiceSpec.from_dict(
        {**DRIVERLESS, "container": {"log_driver": "json-file", "log_opts": {"a": "b"}}}
    )
    full_of_baseline = ServiceSpec.from_dict(
        {
            "name": "web",
            "image": "busybox",
            "limit_memory": "64M",
            "mounts": ["type=tmpfs,target=/t,tmpfs-size=1M"],
            "sidecars": [{"name": "side", "image": "busybox"}],
            "container": {"hostname": "h", "init": True},
        }
    )
    for spec in (driven, full_of_baseline, ServiceSpec(name="web", image="busybox")):
        assert F.used_above(spec, 1) == {}
    for spec in (memswap, unlimited, ServiceSpec.from_dict(DRIVERLESS)):
        assert F.used_above(spec, F.SPEC_VERSION) == {}


def test_a_spec_without_a_newer_field_is_stored_as_the_baseline_stores_it() -> None:
    """Older nodes read every spec that does not use a newer field: it is absent from the stored form."""
    spec = ServiceSpec.from_dict({"name": "web", "image": "busybox", "container": {"hostname": "h"}})
    assert spec.to_sparse_dict()["container"] == {"hostname": "h"}
    assert spec.to_dict()["container"] == {"hostname": "h"}
