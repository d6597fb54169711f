"""Cluster keys, node keys and rotation envelopes (pure)."""

import base64
import subprocess
import sys

import pytest

from p2porch.errors import AuthError
from p2porch.membership.keys import (
    ClusterKeys,
    keys_from_text,
    new_cluster_keys,
    new_node_key,
    node_public_key,
    open_envelope,
    plan_rotation,
    seal_envelope,
)
from p2porch.membership.token import new_token


def test_epoch_zero_of_an_old_cluster_derives_what_its_token_derived():
    token = new_token()
    legacy = ClusterKeys(token.cluster_id, 0, token.secret)
    assert legacy.gossip_key == token.gossip_key
    assert legacy.join_key == token.join_key
    assert legacy.raft_password(3) == token.raft_password(3)


def test_new_keys_are_independent_of_the_join_token_and_hidden_in_repr():
    token = new_token()
    keys = new_cluster_keys(token.cluster_id)
    from_token = {token.gossip_key, token.join_key, token.raft_password(0)}
    assert not from_token & {keys.gossip_key, keys.join_key, keys.raft_password(0)}
    assert keys.to_text() not in repr(keys) and "secret" not in repr(keys)
    assert keys_from_text(keys.cluster_id, 0, keys.to_text()) == keys


def test_every_epoch_changes_every_derived_key():
    a, b = new_cluster_keys("0" * 16, 0), new_cluster_keys("0" * 16, 1)
    assert a.raft_password(2) != b.raft_password(2)
    assert a.gossip_key != b.gossip_key and a.join_key != b.join_key


@pytest.mark.parametrize("text", ["", "!!!", "AAAA", "A" * 200])
def test_malformed_key_text_is_refused(text):
    with pytest.raises(AuthError):
        keys_from_text("0" * 16, 0, text)


def test_envelope_opens_only_for_its_member():
    keys = new_cluster_keys("1" * 16, 4)
    alice, bob = new_node_key(), new_node_key()
    envelope = seal_envelope(keys, "alice", node_public_key(alice))
    assert open_envelope("1" * 16, 4, "alice", alice, envelope) == keys
    with pytest.raises(AuthError):
        open_envelope("1" * 16, 4, "alice", bob, envelope)  # another node's private key
    with pytest.raises(AuthError):
        open_envelope("1" * 16, 4, "bob", alice, envelope)  # relabelled for another node
    with pytest.raises(AuthError):
        open_envelope("1" * 16, 5, "alice", alice, envelope)  # replayed as another epoch


def test_rotation_excludes_the_removed_node_and_names_nodes_without_a_key():
    keys = new_cluster_keys("2" * 16, 1)
    private = {n: new_node_key() for n in ("a", "b", "gone")}
    members = [(n, node_public_key(k)) for n, k in private.items()] + [("old", "")]
    rotation = plan_rotation(keys, members, exclude=["gone"])
    assert set(rotation.envelopes) == {"a", "b"} and rotation.left_out == ("old",)
    for node in ("a", "b"):
        assert open_envelope("2" * 16, 1, node, private[node], rotation.envelopes[node]) == keys
    for envelope in rotation.envelopes.values():  # the removed node opens none of them
        with pytest.raises(AuthError):
            open_envelope("2" * 16, 1, "gone", private["gone"], envelope)


def test_node_keys_keep_the_encoding_of_the_serialization_api() -> None:
    # keys.py takes raw bytes from the keys' own methods (no `serialization` import in the daemon): the
    # stored private key and the public key in Raft must stay byte for byte what nodes wrote before
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    private_text = new_node_key()
    private = X25519PrivateKey.from_private_bytes(base64.b64decode(private_text))
    raw = serialization.Encoding.Raw
    assert base64.b64decode(private_text) == private.private_bytes(
        raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    expected_public = private.public_key().public_bytes(raw, serialization.PublicFormat.Raw)
    assert node_public_key(private_text) == base64.b64encode(expected_public).decode()


def test_node_keys_do_not_load_cryptographys_openssl_backend_module() -> None:
    # x25519.py calls the binding the public classmethods call, without their backend import (~0.7 MB of
    # every daemon, issue 19); the keys are the public classes' instances and seal/open as before
    code = (
        "import sys\n"
        "from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey\n"
        "from p2porch.membership import keys, x25519\n"
        "private_text = keys.new_node_key()\n"
        "public_text = keys.node_public_key(private_text)\n"
        "cluster = keys.new_cluster_keys('1' * 16, 3)\n"
        "envelope = keys.seal_envelope(cluster, 'n1', public_text)\n"
        "assert keys.open_envelope('1' * 16, 3, 'n1', private_text, envelope) == cluster\n"
        "assert isinstance(x25519.generate_private(), X25519PrivateKey)\n"
        "raw = keys.unb64(public_text, 32, 'key')\n"
        "assert isinstance(x25519.public_from_bytes(raw), X25519PublicKey)\n"
        "assert 'cryptography.hazmat.backends.openssl.backend' not in sys.modules\n"
        "from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey as Public\n"
        "private = Public.from_private_bytes(keys.unb64(private_text, 32, 'key'))  # the public API agrees\n"
        "assert private.public_key().public_bytes_raw() == raw\n"
        "assert 'cryptography.hazmat.backends.openssl.backend' in sys.modules  # the check can fail\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_short_key_is_refused_by_the_binding_as_by_the_public_api() -> None:
    from p2porch.membership import x25519

    with pytest.raises(ValueError):
        x25519.private_from_bytes(b"x" * 31)
    with pytest.raises(ValueError):
        x25519.public_from_bytes(b"x" * 31)


def test_without_the_binding_the_classmethods_make_the_same_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    # a cryptography release without the binding's functions: x25519.py falls back to the classmethods
    from p2porch.membership import x25519

    private_text = new_node_key()
    public_raw = base64.b64decode(node_public_key(private_text))
    monkeypatch.setattr(x25519, "_OPENSSL", None)
    private = x25519.private_from_bytes(base64.b64decode(private_text))
    assert private.public_key().public_bytes_raw() == public_raw
    assert len(x25519.generate_private().private_bytes_raw()) == 32
    assert x25519.public_from_bytes(public_raw).public_bytes_raw() == public_raw
