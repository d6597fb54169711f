"""A malformed join token given to a running daemon is invalid usage (ConfigError: exit code 2), as it is
when init/join first start the daemon; a wrong but well-formed token stays an authentication failure."""

import pytest

from p2porch.config import load_config
from p2porch.errors import ConfigError
from p2porch.membership.manager import ClusterManager


@pytest.mark.parametrize("token", ["P2PT-1-abc", "bad", "P2PT-1-" + "0" * 16 + "-short"])
async def test_a_malformed_token_is_usage_for_join_and_init_and_writes_nothing(tmp_path, token):
    config = load_config(
        env={}, overrides={"node.data_dir": str(tmp_path), "node.advertise_addr": "127.0.0.1"}
    )
    manager = ClusterManager(config, "n1")
    with pytest.raises(ConfigError) as joined:
        await manager.join({"peer": "127.0.0.1", "token": token})
    with pytest.raises(ConfigError) as inited:
        await manager.init({"token": token})
    for caught in (joined, inited):
        assert caught.value.field == "--token" and "join token" in caught.value.message
    assert list(tmp_path.iterdir()) == []  # no cluster.json, no join identity


async def test_the_same_join_again_after_it_worked_has_nothing_to_do_and_is_not_told_to_leave(tmp_path):
    from types import SimpleNamespace

    from p2porch.errors import ConflictError
    from p2porch.membership.token import new_token

    config = load_config(
        env={}, overrides={"node.data_dir": str(tmp_path), "node.advertise_addr": "127.0.0.1"}
    )
    manager = ClusterManager(config, "n2")
    token = new_token()
    manager.local = SimpleNamespace(cluster_id=token.cluster_id)  # type: ignore[assignment]
    with pytest.raises(ConflictError) as same:
        await manager.join({"peer": "127.0.0.1", "token": str(token)})
    assert "already part of cluster" in same.value.message and "nothing to do" in same.value.message
    other = new_token()
    with pytest.raises(ConflictError) as another:
        await manager.join({"peer": "127.0.0.1", "token": str(other)})
    assert another.value.message.endswith("run `p2porch leave` first")
