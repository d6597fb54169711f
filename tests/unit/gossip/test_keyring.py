import os

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from p2porch.errors import AuthError, ConfigError
from p2porch.gossip import keyring as keyring_module
from p2porch.gossip.config import GossipConfig, format_addr, parse_addr
from p2porch.gossip.keyring import SEAL_OVERHEAD_BYTES, Keyring, derive_epoch_key, derive_gossip_key


def test_key_derivation_is_hkdf_sha256_with_gossip_info():
    expected = HKDF(hashes.SHA256(), 32, None, b"p2porch gossip v1").derive(b"s3cret")
    assert derive_gossip_key(b"s3cret") == expected
    assert derive_gossip_key(b"s3cret") != derive_gossip_key(b"other")


def test_seal_open_round_trip_and_tamper_detection():
    ring = Keyring.from_secret(b"s3cret")
    sealed = ring.seal(b"hello", b"aad")
    assert len(sealed) == 5 + SEAL_OVERHEAD_BYTES == 5 + 41
    assert ring.open(sealed, b"aad") == b"hello"
    with pytest.raises(AuthError):
        ring.open(sealed, b"other-aad")
    tampered = bytearray(sealed)
    tampered[-1] ^= 1
    with pytest.raises(AuthError):
        ring.open(bytes(tampered), b"aad")
    with pytest.raises(AuthError):
        ring.open(b"\x01short", b"aad")
    with pytest.raises(AuthError):
        Keyring.from_secret(b"wrong").open(sealed, b"aad")


def test_rotation_accepts_previous_key_and_seals_with_new():
    old = Keyring.from_secret(b"old")
    ring = Keyring.from_secret(b"old")
    ring.rotate(b"new")
    assert ring.open(old.seal(b"x", b"a"), b"a") == b"x"  # previous key still accepted
    with pytest.raises(AuthError):
        old.open(ring.seal(b"x", b"a"), b"a")  # sealed with the new key
    assert Keyring.from_secret(b"new").open(ring.seal(b"y", b"a"), b"a") == b"y"
    ring.rotate(b"newer")
    ring.rotate(b"newest")
    with pytest.raises(AuthError):  # only two previous keys are kept
        ring.open(old.seal(b"x", b"a"), b"a")


def test_nonces_count_up_under_a_per_epoch_subkey_and_epochs_rotate(monkeypatch):
    monkeypatch.setattr(keyring_module, "EPOCH_MESSAGES", 3)
    key = derive_gossip_key(b"s3cret")
    ring = Keyring(key)
    sealed = [ring.seal(b"m%d" % i, b"a") for i in range(7)]
    epochs = [s[1:17] for s in sealed]
    counters = [int.from_bytes(s[17:25], "big") for s in sealed]
    assert counters == [0, 1, 2, 0, 1, 2, 0]
    assert epochs[0] == epochs[2] != epochs[3] == epochs[5] != epochs[6]
    assert ring.epochs_started == 3
    # the subkey is HKDF(key, salt=epoch id): the cluster key itself never seals a message
    sub = AESGCM(derive_epoch_key(key, epochs[4]))
    assert sub.decrypt(b"\0" * 4 + sealed[4][17:25], sealed[4][25:], b"a") == b"m4"
    with pytest.raises(InvalidTag):
        AESGCM(key).decrypt(b"\0" * 4 + sealed[4][17:25], sealed[4][25:], b"a")
    receiver = Keyring(key)
    assert [receiver.open(s, b"a") for s in sealed] == [b"m%d" % i for i in range(7)]


def test_set_keys_installs_a_primary_and_accepted_previous_keys():
    k1, k2, k3 = (derive_gossip_key(s) for s in (b"1", b"2", b"3"))
    old = Keyring(k1)
    ring = Keyring(k1)
    ring.set_keys(k2, [k1])
    assert ring.keys == [k2, k1]
    assert ring.open(old.seal(b"x", b"a"), b"a") == b"x"
    assert Keyring(k2).open(ring.seal(b"y", b"a"), b"a") == b"y"
    ring.set_keys(k3, [k2])
    with pytest.raises(AuthError):  # k1 is no longer accepted
        ring.open(old.seal(b"x", b"a"), b"a")
    with pytest.raises(AuthError):
        Keyring(b"short")


def test_config_presets_and_validation():
    assert GossipConfig.lan().probe_interval_s == 1.0
    assert GossipConfig.wan().probe_timeout_s == 3.0
    assert GossipConfig.local().indirect_checks == 1
    fast = GossipConfig.fast_lan(node_name="n1")
    assert (fast.probe_interval_s, fast.probe_timeout_s, fast.suspicion_mult, fast.node_name) == (
        0.5,
        0.25,
        5,
        "n1",
    )
    with pytest.raises(ConfigError) as err:
        GossipConfig.lan(probe_timeout_s=2.0)
    assert err.value.field == "gossip.probe_timeout_s"
    with pytest.raises(ConfigError):
        GossipConfig.lan(gossip_nodes=0)
    assert parse_addr(format_addr("::1", 7946)) == ("::1", 7946)
    assert parse_addr("10.0.0.1:7946") == ("10.0.0.1", 7946)
    with pytest.raises(ConfigError):
        parse_addr("nohost")


def test_previous_key_is_accepted_during_a_switch_and_refused_after_it():
    old, new = os.urandom(32), os.urandom(32)
    sender = Keyring(old)
    receiver = Keyring(new, [old])
    packet = sender.seal(b"ping", b"udp")
    assert receiver.accepts_previous and receiver.open(packet, b"udp") == b"ping"
    receiver.drop_previous()
    with pytest.raises(AuthError):
        receiver.open(packet, b"udp")
