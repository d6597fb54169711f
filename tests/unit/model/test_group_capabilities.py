"""A task group's container carries its own capabilities (h52left): GroupContainer ``cap_add``/``cap_drop``
(spec version 7, absent from the stored form when empty), parsed from the mapping and the CSV form as
``container.cap_add`` is (upper case, NET_ADMIN or ALL), handed to the agent by the member view and
written as that container's HostConfig.CapAdd/CapDrop; the main container's are its options' alone."""

from __future__ import annotations

import pytest

from p2porch.agent.dockerspec import create_request, member_create_request
from p2porch.agent.model import KIND_SIDECAR, MemberSpec, TaskAssignment
from p2porch.errors import ConfigError
from p2porch.member.views import group_members
from p2porch.model import ServiceSpec
from p2porch.model import spec_fields as F

SPY = {"name": "spy", "image": "busybox", "pid": "main", "cap_add": ["sys_ptrace"], "cap_drop": ["NET_RAW"]}


def test_a_sidecars_capabilities_are_stored_read_and_spec_version_7() -> None:
    spec = ServiceSpec.from_dict({"name": "app", "image": "busybox", "sidecars": [SPY]})
    (spy,) = spec.sidecars
    assert (spy.cap_add, spy.cap_drop) == (("SYS_PTRACE",), ("NET_RAW",))
    stored = spec.to_dict()["sidecars"][0]
    assert (stored["cap_add"], stored["cap_drop"]) == (["SYS_PTRACE"], ["NET_RAW"])
    assert ServiceSpec.from_dict(spec.to_dict()) == spec
    assert F.SPEC_VERSION == 7
    assert F.used_above(spec, 6) == {"sidecars[0].cap_add": 7, "sidecars[0].cap_drop": 7}
    plain = ServiceSpec.from_dict({"name": "app", "image": "busybox", "sidecars": ["name=log,image=busybox"]})
    assert "cap_add" not in plain.to_dict()["sidecars"][0]  # absent when unused: the template hash kept


def test_the_csv_form_takes_repeated_cap_add_and_a_bad_one_is_named() -> None:
    csv = "name=spy,image=busybox,cap-add=SYS_PTRACE,cap-add=net_admin,cap-drop=ALL"
    (spy,) = ServiceSpec.from_dict({"name": "app", "image": "busybox", "sidecars": [csv]}).sidecars
    assert (spy.cap_add, spy.cap_drop) == (("SYS_PTRACE", "NET_ADMIN"), ("ALL",))
    with pytest.raises(ConfigError) as bad:
        ServiceSpec.from_dict({"name": "app", "image": "busybox", "sidecars": [{**SPY, "cap_add": ["a b"]}]})
    assert bad.value.field == "sidecars[0].cap_add[0]"


def test_the_agent_gives_the_member_container_its_capabilities_and_the_main_none_of_them() -> None:
    spec = ServiceSpec.from_dict({"name": "app", "image": "busybox", "sidecars": [SPY]})
    (member,) = group_members(spec)
    assert (member.cap_add, member.cap_drop, member.share_pid) == (("SYS_PTRACE",), ("NET_RAW",), True)
    task = TaskAssignment(
        task_id="t1", service_name="app", service_id="s1", slot=1, node_name="n1", image="busybox",
        members=(member,),
    )  # fmt: skip
    _, body = member_create_request(task, member, "main1")
    assert body["HostConfig"]["CapAdd"] == ["SYS_PTRACE"] and body["HostConfig"]["CapDrop"] == ["NET_RAW"]
    assert body["HostConfig"]["PidMode"] == "container:main1"
    assert "CapAdd" not in create_request(task)[1]["HostConfig"]
    _, plain = member_create_request(task, MemberSpec("log", KIND_SIDECAR, "busybox"), "main1")
    assert not {"CapAdd", "CapDrop"} & set(plain["HostConfig"])
