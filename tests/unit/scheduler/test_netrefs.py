"""Service network attachments: Docker's --network forms, aliases, errors naming the field."""

from __future__ import annotations

import pytest

from p2porch.errors import ConfigError
from p2porch.model import ServiceSpec
from p2porch.model.netrefs import (
    NetworkAttachment,
    attached_networks,
    parse_attachment,
    parse_attachments,
)


def test_plain_name_and_docker_long_form() -> None:
    assert parse_attachment("back", "n") == NetworkAttachment("back")
    assert parse_attachment("name=back,alias=db,alias=Primary", "n") == NetworkAttachment(
        "back", ("db", "primary")
    )
    assert parse_attachment({"target": "back", "aliases": ["x"]}, "n") == NetworkAttachment("back", ("x",))


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ("name=back,foo=1", "networks[0]"),
        ("name=back,alias=bad_alias!", "networks[0].alias[0]"),
        ("bad name", "networks[0]"),
        (3, "networks[0]"),
        ({"target": "x", "ipv4_address": "1.2.3.4"}, "networks[0]"),
    ],
)
def test_bad_attachments_name_the_field(value: object, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_attachments([value])
    assert info.value.field == field


def test_the_same_network_twice_is_refused() -> None:
    with pytest.raises(ConfigError, match="named twice"):
        parse_attachments(["a", "name=a,alias=b"])


def test_spec_round_trip_and_default_network() -> None:
    spec = ServiceSpec.from_dict(
        {"name": "web", "image": "busybox", "networks": ["front", "name=back,alias=w"]}
    )
    assert [n.target for n in spec.networks] == ["front", "back"]
    assert ServiceSpec.from_dict(spec.to_dict()) == spec
    assert attached_networks(spec.networks) == ("front", "back")
    assert attached_networks(()) == ("p2porch",)


def test_networks_are_not_part_of_the_task_template() -> None:
    """Joining or leaving a network changes rules and DNS, not containers: no rolling restart."""
    a = ServiceSpec.from_dict({"name": "web", "image": "busybox"})
    b = ServiceSpec.from_dict({"name": "web", "image": "busybox", "networks": ["front"]})
    assert a.template_hash() == b.template_hash()
