import os
import stat

import pytest

from p2porch.testing.runsecrets import RunSecrets, is_private


def test_secret_files_are_0600_in_a_0700_dir_fresh_per_run_and_removed_after():
    with RunSecrets() as one, RunSecrets() as two:
        a = one.write("password")
        b = two.write("password")
        assert stat.S_IMODE(os.stat(one.dir).st_mode) == 0o700
        assert stat.S_IMODE(os.stat(a).st_mode) == 0o600 and is_private(a)
        assert len(a.read_bytes()) == 32 and a.read_bytes() != b.read_bytes()
        with pytest.raises(FileExistsError):
            one.write("password")  # never reuses (or follows) an existing file
        with pytest.raises(ValueError):
            one.write("../escape")
        directory = one.dir
    assert not directory.exists()


def test_local_raft_cluster_gets_a_fresh_private_password_removed_on_close(tmp_path):
    from p2porch.testing.raftprocs import LocalCluster

    one, two = LocalCluster(tmp_path / "a", voters=1), LocalCluster(tmp_path / "b", voters=1)
    try:
        for cluster in (one, two):
            assert is_private(cluster.password_file) and is_private(cluster.password_file.parent)
            assert stat.S_IMODE(os.stat(cluster.root).st_mode) == 0o700
        assert one.password_file.read_bytes() != two.password_file.read_bytes()
        assert b"p2rf-secret" not in one.password_file.read_bytes()
    finally:
        one.close()
        two.close()
    assert not one.password_file.exists() and not one.password_file.parent.exists()
