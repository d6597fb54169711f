"""sandbox/leftovers.py: where a host's cgroup parent is found, and the removal of its empty cgroups, on a
directory tree standing in for /sys/fs/cgroup (the killing itself: tests/integration/test_sandbox.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from p2porch.sandbox.leftovers import cgroup_dirs, cgroup_pids, remove_cgroup_dirs

PARENT = "/p2porch-p52k-n1"


def mountinfo(tmp_path: Path, hierarchies: dict[str, str]) -> str:
    """A mountinfo naming ``hierarchies`` (mount point -> fstype) under ``tmp_path``, plus a tmpfs."""
    lines = [f"31 23 0:28 / {tmp_path} rw,relatime - tmpfs tmpfs rw,mode=755"]
    for i, (point, fstype) in enumerate(hierarchies.items()):
        lines.append(
            f"{40 + i} 31 0:{40 + i} / {tmp_path / point} rw,relatime - {fstype} {fstype} rw,{point}"
        )
    path = tmp_path / "mountinfo"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_the_parent_is_found_in_every_v1_and_v2_hierarchy_that_holds_it(tmp_path: Path) -> None:
    info = mountinfo(tmp_path, {"pids": "cgroup", "memory": "cgroup", "unified": "cgroup2", "cpu": "cgroup"})
    for point in ("pids", "memory", "unified"):
        (tmp_path / point / PARENT.strip("/") / "abc123").mkdir(parents=True)
    (tmp_path / "cpu").mkdir()  # a hierarchy without it
    (tmp_path / "p2porch-p52k-n1").mkdir()  # a tmpfs directory of that name is no cgroup
    found = cgroup_dirs(PARENT, info)
    assert found == [str(tmp_path / p / "p2porch-p52k-n1") for p in ("pids", "memory", "unified")]


def test_pids_are_read_from_the_parent_and_every_cgroup_below(tmp_path: Path) -> None:
    info = mountinfo(tmp_path, {"pids": "cgroup"})
    top = tmp_path / "pids" / "p2porch-p52k-n1"
    (top / "c1").mkdir(parents=True)
    (top / "cgroup.procs").write_text("")
    (top / "c1" / "cgroup.procs").write_text(f"{os.getpid()}\n999999999\n")  # ourselves; a pid long gone
    assert cgroup_pids(PARENT, info) == {os.getpid()}


def test_empty_cgroups_are_removed_deepest_first_and_a_busy_one_stays(tmp_path: Path) -> None:
    info = mountinfo(tmp_path, {"pids": "cgroup", "memory": "cgroup"})
    (tmp_path / "pids" / "p2porch-p52k-n1" / "c1" / "inner").mkdir(parents=True)
    busy = tmp_path / "memory" / "p2porch-p52k-n1" / "c2"
    busy.mkdir(parents=True)
    (busy / "cgroup.procs").write_text(
        "1\n"
    )  # a plain directory with a file: rmdir fails, as on a busy cgroup
    remove_cgroup_dirs(PARENT, info)
    assert not (tmp_path / "pids" / "p2porch-p52k-n1").exists()
    assert busy.exists()


@pytest.mark.parametrize("parent", ["", "/", "/../etc", "/p2porch-x/../../etc"])
def test_a_parent_outside_the_hierarchy_is_refused(tmp_path: Path, parent: str) -> None:
    with pytest.raises(ValueError, match="not a cgroup parent"):
        cgroup_dirs(parent, mountinfo(tmp_path, {"pids": "cgroup"}))
