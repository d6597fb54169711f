"""Compose ``networks`` mapping: namespacing, name/external forms, aliases, ignored keys, errors."""

from __future__ import annotations

import pytest

from p2porch.stack import ComposeError, load_stack
from p2porch.stack.networks import StackNetwork


def load(text: str):
    return load_stack("shop", text)


def nets(definition) -> dict[str, StackNetwork]:
    return {n.key: n for n in definition.networks}


def test_namespacing_name_override_and_legacy_external():
    d = load(
        """
services:
  a: {image: x, networks: [front, named, old, new]}
networks:
  front: {}
  named: {name: exact-name, internal: true, attachable: true, labels: [k=v]}
  old: {external: {name: legacy}}
  new: {external: true}
"""
    )
    by_key = nets(d)
    assert by_key["front"].name == "shop_front" and not by_key["front"].external
    assert (by_key["named"].name, by_key["named"].internal, by_key["named"].attachable) == (
        "exact-name",
        True,
        True,
    )
    assert dict(by_key["named"].labels) == {"k": "v"}
    assert (by_key["old"].name, by_key["old"].external) == ("legacy", True)
    assert (by_key["new"].name, by_key["new"].external) == ("new", True)


def test_mapping_form_with_aliases_and_ignored_keys_warn_once():
    d = load(
        """
services:
  api:
    image: x
    networks:
      back:
        aliases: [db-proxy, Legacy]
        ipv4_address: 172.16.0.9
      default:
networks:
  back:
    driver: overlay
    ipam: {config: [{subnet: 172.16.0.0/24}]}
"""
    )
    spec = d.services[0].spec
    assert spec["networks"] == [
        {"target": "shop_back", "aliases": ["db-proxy", "legacy"]},
        {"target": "shop_default", "aliases": []},
    ]
    assert any("networks.back.ipam" in w for w in d.warnings)
    assert any("ipv4_address" in w for w in d.warnings)
    assert [n.name for n in d.networks] == ["shop_back", "shop_default"]


def test_a_service_without_networks_is_on_the_implicit_default_and_declared_default_is_used():
    d = load("services:\n  a: {image: x}\nnetworks:\n  default: {name: shared-default, external: true}\n")
    assert d.services[0].spec["networks"] == [{"target": "shared-default", "aliases": []}]
    assert nets(d)["default"].external


def test_errors_name_the_key():
    with pytest.raises(ComposeError) as info:
        load("services:\n  a: {image: x, networks: [nope]}\n")
    assert "services.a.networks.nope" in info.value.message
    with pytest.raises(ComposeError) as info:
        load("services:\n  a: {image: x, networks: [n]}\nnetworks:\n  n: {driver: macvlan}\n")
    assert "networks.n.driver" in info.value.message
    with pytest.raises(ComposeError) as info:
        load("services:\n  a: {image: x, networks: [n]}\nnetworks:\n  n: {name: 'bad name'}\n")
    assert "networks.n.name" in info.value.message


def test_unused_declared_networks_are_not_created():
    d = load("services:\n  a: {image: x, networks: [used]}\nnetworks:\n  used: {}\n  unused: {}\n")
    assert [n.name for n in d.networks] == ["shop_used"]


def test_deploy_body_round_trip():
    d = load("services:\n  a: {image: x, networks: [n]}\nnetworks:\n  n: {internal: true}\n")
    net = d.networks[0]
    assert StackNetwork.from_dict(net.to_dict(), "networks[0]") == net
