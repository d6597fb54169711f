"""sandbox/leftovers.py: where a host's cgroup parent is found, which pids are signalled, the thawing and the
removal of its empty cgroups, on directory trees standing in for /sys/fs/cgroup and /proc, with child
processes of this test as the processes (a real engine's containers: tests/integration/test_sandbox.py)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from p2porch.sandbox.leftovers import (
    cgroup_dirs,
    cgroup_host_indexes,
    cgroup_pids,
    in_cgroup,
    kill_cgroup_processes,
    kill_if_under,
    remove_cgroup_dirs,
    thaw,
)
from p2porch.sandbox.sandbox import NAME_RE
from p2porch.sandbox.system import pid_alive

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


@pytest.fixture
def child() -> Iterator[int]:
    """A process of ours that stays until killed."""
    proc = subprocess.Popen(["sleep", "300"])
    try:
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def fake_proc(tmp_path: Path, pid: int, *paths: str) -> str:
    """A /proc whose ``pid`` is in the cgroups ``paths`` (one v1 hierarchy each, then the v2 one)."""
    lines = [f"{i + 1}:c{i}:{path}" for i, path in enumerate(paths[:-1])] + [f"0::{paths[-1]}"]
    (tmp_path / "proc" / str(pid)).mkdir(parents=True)
    (tmp_path / "proc" / str(pid) / "cgroup").write_text("\n".join(lines) + "\n")
    return str(tmp_path / "proc")


def test_pids_are_read_from_the_parent_and_every_cgroup_below(tmp_path: Path, child: int) -> None:
    info = mountinfo(tmp_path, {"pids": "cgroup"})
    top = tmp_path / "pids" / "p2porch-p52k-n1"
    (top / "c1").mkdir(parents=True)
    (top / "cgroup.procs").write_text(f"{child}\n")
    (top / "c1" / "cgroup.procs").write_text("999999999\n")  # a pid long gone
    assert cgroup_pids(PARENT, info) == {child}


def test_pid_0_1_and_our_own_are_never_taken_from_a_cgroup(tmp_path: Path, child: int) -> None:
    """0 would become kill(0, SIGKILL): our own process group; 1 is init."""
    info = mountinfo(tmp_path, {"pids": "cgroup"})
    top = tmp_path / "pids" / "p2porch-p52k-n1"
    top.mkdir(parents=True)
    (top / "cgroup.procs").write_text(f"0\n1\n{os.getpid()}\n{child}\n")
    assert cgroup_pids(PARENT, info) == {child}


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


REFUSED = ["", "/", "/../etc", "/p2porch-x/../../etc", "/.", ".", "./", "/./", "/docker", "system.slice"]
REFUSED += ["p2porch-x-n1/../..", "/p2porch-x-n1/..", "/p2porch-x-n1/c1", "//p2porch-x-n1", "/p2porch-x-n"]
REFUSED += ["/p2porch-Xy-n1", "/p2porch-abcdefg-n1", "/p2porch-x-n1/", "/user.slice/p2porch-x-n1"]


@pytest.mark.parametrize("parent", REFUSED)
def test_only_a_parent_a_sandbox_creates_is_accepted(tmp_path: Path, parent: str) -> None:
    """ "/." or "." named the root of every hierarchy (every process on the machine), "/docker" another
    engine's containers: only ``/p2porch-<sandbox name>-n<K>`` is taken."""
    info = mountinfo(tmp_path, {"pids": "cgroup"})
    (tmp_path / "pids" / "docker").mkdir(parents=True)
    (tmp_path / "pids" / "cgroup.procs").write_text("1\n")
    with pytest.raises(ValueError, match="not a cgroup parent"):
        cgroup_dirs(parent, info)
    with pytest.raises(ValueError, match="not a cgroup parent"):
        cgroup_pids(parent, info)


def test_the_accepted_parents_follow_the_sandbox_name_rule() -> None:
    for name in ("x", "p52k", "abc123"):
        assert NAME_RE.match(name)
        cgroup_dirs(f"/p2porch-{name}-n1", "/nonexistent/mountinfo")
        cgroup_dirs(f"p2porch-{name}-n50", "/nonexistent/mountinfo")


def test_frozen_cgroups_are_thawed_in_v1_and_v2(tmp_path: Path) -> None:
    """``docker pause`` freezes a container's cgroup, and a frozen task acts on SIGKILL only once thawed."""
    info = mountinfo(tmp_path, {"freezer": "cgroup", "unified": "cgroup2"})
    v1, v2 = tmp_path / "freezer" / "p2porch-p52k-n1", tmp_path / "unified" / "p2porch-p52k-n1"
    for top, name, frozen in ((v1, "freezer.state", "FROZEN"), (v2, "cgroup.freeze", "1")):
        (top / "c1").mkdir(parents=True)
        for path in (top / name, top / "c1" / name):
            path.write_text(frozen)
    (tmp_path / "freezer" / "freezer.state").write_text("FROZEN")  # above the parent: never ours
    thaw(PARENT, info)
    assert [(p / "freezer.state").read_text() for p in (v1, v1 / "c1")] == ["THAWED", "THAWED"]
    assert [(p / "cgroup.freeze").read_text() for p in (v2, v2 / "c1")] == ["0", "0"]
    assert (tmp_path / "freezer" / "freezer.state").read_text() == "FROZEN"


def test_a_process_is_killed_only_while_proc_still_names_the_parent(tmp_path: Path, child: int) -> None:
    """A pid read from cgroup.procs may have been given to another process by the kill: it is signalled
    through a pidfd, once /proc/<pid>/cgroup is seen to name the parent (or a cgroup below it)."""
    elsewhere = fake_proc(tmp_path / "a", child, "/", "/p2porch-p52k-n10/c1", "/user.slice")
    assert not kill_if_under(child, PARENT, elsewhere)
    assert pid_alive(child)
    under = fake_proc(tmp_path / "b", child, "/", "/p2porch-p52k-n1/c1", "/p2porch-p52k-n1/c1")
    assert in_cgroup(child, PARENT, under) and in_cgroup(child, "/p2porch-p52k-n1/c1", under)
    assert kill_if_under(child, PARENT, under)
    os.waitpid(child, 0)
    assert not kill_if_under(child, PARENT, under)  # gone: nothing sent


def test_the_processes_still_there_after_the_kill_are_returned(tmp_path: Path, child: int) -> None:
    """What SIGKILL did not end (here: /proc says it is elsewhere) is reported, never dropped."""
    info = mountinfo(tmp_path, {"freezer": "cgroup"})
    top = tmp_path / "freezer" / "p2porch-p52k-n1"
    top.mkdir(parents=True)
    (top / "cgroup.procs").write_text(f"{child}\n")
    (top / "freezer.state").write_text("FROZEN")
    proc = fake_proc(tmp_path, child, "/", "/elsewhere")
    assert kill_cgroup_processes(PARENT, 0.2, info, proc) == {child}
    assert pid_alive(child) and (top / "freezer.state").read_text() == "THAWED"
    proc = fake_proc(tmp_path / "b", child, "/", "/p2porch-p52k-n1")
    assert kill_cgroup_processes(PARENT, 5.0, info, proc) == set()


def test_host_numbers_are_read_from_the_sandboxs_cgroups(tmp_path: Path) -> None:
    """A host whose namespace and directories are gone is still swept by ``down`` if its cgroup stayed."""
    info = mountinfo(tmp_path, {"pids": "cgroup", "unified": "cgroup2"})
    for path in ("pids/p2porch-p52k-n1", "pids/p2porch-p52k-n12", "unified/p2porch-p52k-n3"):
        (tmp_path / path).mkdir(parents=True)
    for other in ("p2porch-p52kx-n4", "p2porch-p52k-n", "p2porch-p52k-n5x", "p2porch-other-n6", "n7"):
        (tmp_path / "pids" / other).mkdir()
    (tmp_path / "p2porch-p52k-n8").mkdir()  # a tmpfs directory of that name is no cgroup
    assert cgroup_host_indexes("p52k", info) == [1, 3, 12]
