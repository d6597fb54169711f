"""Configuration precedence and validation."""

import pytest

from p2porch.config import Config, load_config, parse_labels, with_overrides
from p2porch.errors import ConfigError


def test_defaults_are_valid():
    config = load_config()
    assert config == Config()
    assert config.raft.voters == 3
    assert config.dns.domain == "p2p"
    assert config.overlay.cluster_cidr == "10.240.0.0/16"


def test_precedence_toml_then_env_then_flags():
    toml = '[raft]\nvoters = 5\nport = 9001\n[dns]\nttl_s = 9\n[node]\nname = "from-toml"\n'
    env = {"P2PORCH_RAFT_PORT": "9002", "P2PORCH_NODE_NAME": "from-env", "UNRELATED": "x"}
    config = load_config(toml_text=toml, env=env, overrides={"node.name": "from-flag", "dns.port": None})
    assert config.raft.voters == 5  # only in TOML
    assert config.dns.ttl_s == 9
    assert config.raft.port == 9002  # env beats TOML
    assert config.node.name == "from-flag"  # flag beats env
    assert config.dns.port == 53  # a flag given as None does not override


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"env": {"P2PORCH_RAFT_VOTERS": "4"}}, "raft.voters"),
        ({"env": {"P2PORCH_RAFT_PORT": "70000"}}, "raft.port"),
        ({"env": {"P2PORCH_GOSSIP_PORT": "abc"}}, "gossip.port"),
        ({"toml_text": '[overlay]\ncluster_cidr = "10.240.0.1/16"\n'}, "overlay.cluster_cidr"),
        ({"toml_text": '[overlay]\ncluster_cidr = "10.0.0.0/30"\n'}, "overlay.cluster_cidr"),
        ({"toml_text": '[dns]\ndomain = "bad_domain!"\n'}, "dns.domain"),
        ({"overrides": {"node.advertise_addr": "999.1.1.1"}}, "node.advertise_addr"),
        ({"overrides": {"node.name": "Upper_Case"}}, "node.name"),
        ({"overrides": {"api.socket": "relative.sock"}}, "api.socket"),
        ({"overrides": {"log.format": "xml"}}, "log.format"),
        ({"toml_text": "[raft]\nvoters = true\n"}, "raft.voters"),
        ({"toml_text": "[raft]\nbogus = 1\n"}, "raft.bogus"),
        ({"toml_text": "[nosuch]\nx = 1\n"}, "nosuch.x"),
        ({"env": {"P2PORCH_DNS_UPSTREAMS": "1.2.3.4,not-an-ip"}}, "dns.upstreams"),
        ({"env": {"P2PORCH_RAFT_RTT_MS": "nan"}}, "raft.rtt_ms"),
        ({"env": {"P2PORCH_RAFT_RTT_MS": "inf"}}, "raft.rtt_ms"),
        ({"env": {"P2PORCH_RAFT_RTT_MS": "1e9"}}, "raft.rtt_ms"),
        ({"env": {"P2PORCH_RAFT_RTT_MS": "-1"}}, "raft.rtt_ms"),
        ({"env": {"P2PORCH_RAFT_COMMIT_TIMEOUT_S": "nan"}}, "raft.commit_timeout_s"),
        ({"env": {"P2PORCH_RAFT_REPLACE_DEAD_VOTER_S": "inf"}}, "raft.replace_dead_voter_s"),
        ({"env": {"P2PORCH_API_SEND_TIMEOUT_S": "0"}}, "api.send_timeout_s"),
        ({"toml_text": "[api]\nsend_timeout_s = -1\n"}, "api.send_timeout_s"),
        ({"env": {"P2PORCH_OVERLAY_BRIDGE_WARM_AFTER_S": "-2"}}, "overlay.bridge_warm_after_s"),
        ({"toml_text": "[overlay]\nbridge_warm_after_s = inf\n"}, "overlay.bridge_warm_after_s"),
    ],
)
def test_invalid_values_name_the_key(kwargs, field):
    with pytest.raises(ConfigError) as info:
        load_config(**kwargs)
    assert info.value.field == field
    assert field in str(info.value)


def test_invalid_toml_is_a_config_error():
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(toml_text="[raft\nvoters=")


def test_env_and_toml_types_are_coerced():
    config = load_config(
        toml_text='[node]\nlabels = { zone = "a", ssd = true }\n',
        env={"P2PORCH_DNS_UPSTREAMS": "10.0.0.1:5353, 10.0.0.2", "P2PORCH_RAFT_TICK_S": "0.01"},
    )
    assert config.node.labels == {"ssd": "True", "zone": "a"}
    assert config.dns.upstreams == ("10.0.0.1:5353", "10.0.0.2")
    assert config.raft.tick_s == 0.01


def test_socket_url_is_normalised():
    assert load_config(overrides={"api.socket": "unix:///tmp/x.sock"}).api.socket == "/tmp/x.sock"


def test_config_is_frozen_and_overrides_validate():
    config = load_config()
    with pytest.raises(AttributeError):
        config.raft.voters = 5  # type: ignore[misc]
    assert with_overrides(config, {"raft.voters": 5}).raft.voters == 5
    with pytest.raises(ConfigError) as info:
        with_overrides(config, {"raft.voters": 2})
    assert info.value.field == "raft.voters"


def test_parse_labels():
    assert parse_labels(["zone=a", "ssd=true"], field="--label") == {"zone": "a", "ssd": "true"}
    with pytest.raises(ConfigError) as info:
        parse_labels(["novalue"], field="--label")
    assert info.value.field == "--label"


def test_largest_round_trip_is_accepted():
    assert load_config(env={"P2PORCH_RAFT_RTT_MS": "1000"}).raft.rtt_ms == 1000.0


def test_restart_grace_defaults_to_30_s_and_is_bounded():
    assert Config().scheduler.restart_grace_s == 30.0
    assert load_config(env={"P2PORCH_SCHEDULER_RESTART_GRACE_S": "0"}).scheduler.restart_grace_s == 0.0
    for bad in ("601", "-1", "nan"):
        with pytest.raises(ConfigError) as info:
            load_config(env={"P2PORCH_SCHEDULER_RESTART_GRACE_S": bad})
        assert info.value.field == "scheduler.restart_grace_s"


def test_the_stalled_reader_bound_is_its_own_knob():
    assert Config().api.send_timeout_s == 300.0
    assert load_config(toml_text="[api]\nsend_timeout_s = 30\n").api.send_timeout_s == 30.0
    config = load_config(env={"P2PORCH_API_SEND_TIMEOUT_S": "900"})
    assert config.api.send_timeout_s == 900.0 and config.api.request_timeout_s == 60.0


def test_the_docker_network_warm_up_is_a_delay_zero_or_never():
    assert load_config().overlay.bridge_warm_after_s == 8.0
    for raw, value in (("0", 0.0), ("2.5", 2.5), ("-1", -1.0)):
        config = load_config(env={"P2PORCH_OVERLAY_BRIDGE_WARM_AFTER_S": raw})
        assert config.overlay.bridge_warm_after_s == value
