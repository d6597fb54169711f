"""The identity a joiner keeps across attempts (membership/join_identity.py)."""

from __future__ import annotations

import os
import stat

from p2porch.membership import join_identity
from p2porch.membership.keys import node_public_key


def test_every_attempt_for_one_cluster_uses_the_same_id_and_key_until_forgotten(tmp_path: object) -> None:
    data_dir = str(tmp_path)
    assert not join_identity.pending(data_dir, "c0ffee0123456789")
    first = join_identity.identity_for(data_dir, "c0ffee0123456789")
    assert join_identity.pending(data_dir, "c0ffee0123456789")
    assert not join_identity.pending(data_dir, "0123456789abcdef")
    assert len(first[0]) == 16 and node_public_key(first[1])  # a usable X25519 private key
    assert join_identity.identity_for(data_dir, "c0ffee0123456789") == first
    mode = stat.S_IMODE(os.stat(os.path.join(data_dir, join_identity.FILE_NAME)).st_mode)
    assert mode == 0o600  # it holds a private key
    other = join_identity.identity_for(data_dir, "0123456789abcdef")  # a token for another cluster
    assert other[0] != first[0] and other[1] != first[1]
    join_identity.forget(data_dir)
    assert join_identity.identity_for(data_dir, "0123456789abcdef") != other
    join_identity.forget(data_dir)
    join_identity.forget(data_dir)  # forgetting twice is fine


def test_an_unreadable_file_gives_a_new_identity(tmp_path: object) -> None:
    data_dir = str(tmp_path)
    with open(os.path.join(data_dir, join_identity.FILE_NAME), "w") as handle:
        handle.write("{not json")
    node_id, _ = join_identity.identity_for(data_dir, "c0ffee0123456789")
    assert join_identity.identity_for(data_dir, "c0ffee0123456789")[0] == node_id


def test_a_leftover_world_readable_temp_file_does_not_leak_the_key(tmp_path: object) -> None:
    """A temp file left by a crash with a wider mode is replaced, not reused (O_TRUNC keeps a mode)."""
    data_dir = str(tmp_path)
    leftover = os.path.join(data_dir, join_identity.FILE_NAME + ".tmp")
    with open(leftover, "w") as handle:
        handle.write("old")
    os.chmod(leftover, 0o644)
    join_identity.identity_for(data_dir, "c0ffee0123456789")
    mode = stat.S_IMODE(os.stat(os.path.join(data_dir, join_identity.FILE_NAME)).st_mode)
    assert mode == 0o600
    assert not os.path.exists(leftover)
