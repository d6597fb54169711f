"""The h51 journey's list edits of ``service update`` (pure): ``--network-add`` on a service that names no
network keeps it on the default one, and a ``--network-rm``/``--secret-rm``/``--config-rm`` of what the
service does not have is refused naming the flag's field, as ``--env-rm``/``--mount-rm`` are."""

import pytest

from p2porch.cli.service_spec_flags import flag_for
from p2porch.control.network_ops import network_changes
from p2porch.control.secret_ops import file_ref_changes
from p2porch.errors import ConfigError


def test_network_add_on_a_service_on_the_default_network_keeps_it_there():
    # `service create --name api IMAGE` then `service update --network-add front api`: api reached the
    # services of the default network before and must still (it was moved to `front` alone)
    out = network_changes({"networks": []}, {"networks_add": ["front"]})
    assert out == {"networks": [{"target": "p2porch", "aliases": []}, {"target": "front", "aliases": []}]}


def test_leaving_the_default_network_is_said_and_the_default_alone_names_none():
    assert network_changes({"networks": []}, {"networks_add": ["front"], "networks_rm": ["p2porch"]}) == {
        "networks": [{"target": "front", "aliases": []}]
    }
    both = [{"target": "p2porch", "aliases": []}, {"target": "front", "aliases": []}]
    assert network_changes({"networks": both}, {"networks_rm": ["front"]}) == {"networks": []}
    assert network_changes({"networks": []}, {"networks_add": ["host"]}) == {
        "networks": [{"target": "host", "aliases": []}]
    }  # the host network is a task's only one: Docker's --network host, as before


@pytest.mark.parametrize(
    ("current", "changes", "field", "words"),
    [
        ({"networks": []}, {"networks_rm": ["front"]}, "networks_rm", "not on network 'front'"),
        (
            {"networks": [{"target": "back", "aliases": []}]},
            {"networks_rm": ["frnt"]},
            "networks_rm",
            "(its networks: back)",
        ),
        (
            {"secrets": [{"source": "db_pw", "target": "/run/secrets/db.pw"}]},
            {"secrets_rm": ["db-pw"]},
            "secrets_rm",
            "no secret 'db-pw' (its secrets: db_pw)",
        ),
        ({"configs": []}, {"configs_rm": ["app"]}, "configs_rm", "no config 'app' (its configs: none)"),
    ],
)
def test_removing_what_the_service_does_not_have_is_refused(current, changes, field, words):
    with pytest.raises(ConfigError) as info:
        network_changes(current, changes) if field == "networks_rm" else file_ref_changes(current, changes)
    assert info.value.field == field and words in info.value.message
    assert flag_for(field) == "--" + field.replace("s_", "-")  # the CLI names the flag: --secret-rm


def test_a_secret_is_removed_by_name_or_by_target_as_it_was_given():
    current = {
        "secrets": [{"source": "db_pw", "target": "/run/secrets/db.pw"}, {"source": "k", "target": "/k"}]
    }
    for name in ("db_pw", "db.pw", "/run/secrets/db.pw"):
        assert file_ref_changes(current, {"secrets_rm": [name]}) == {"secrets": [current["secrets"][1]]}
