"""A daemon that starts outside a cluster freezes its start-up heap before it is ready (memtrim.py,
``freeze_start_up``): a join's full collections then walk only what the join allocated (issue 19)."""

from __future__ import annotations

import gc

import trio

from p2porch.config import load_config
from p2porch.daemon import Daemon


def test_a_daemon_outside_a_cluster_is_ready_with_its_start_up_frozen(tmp_path):
    config = load_config(
        overrides={"node.data_dir": str(tmp_path / "data"), "api.socket": str(tmp_path / "s.sock")}
    )
    frozen_at_ready: list[int] = []

    async def on_ready(daemon: Daemon) -> None:
        frozen_at_ready.append(gc.get_freeze_count())
        daemon.request_stop()

    gc.unfreeze()
    try:
        trio.run(Daemon(config, on_ready=on_ready, host_shutting_down=lambda: False).run)
        # the daemon's own objects (its config, API app, managers) among them: it holds thousands
        assert frozen_at_ready and frozen_at_ready[0] > 1000
    finally:
        gc.unfreeze()  # the rest of the run's tests collect as before
