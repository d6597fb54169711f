"""Secret and config files of this node's tasks: decrypted into a private tmpfs, removed when unused (shell).

Owns ``<root>`` (a tmpfs this module mounts when the directory is not already one: plaintext never
touches a disk) with one directory per task, ``<root>/<task id>/<kind>-<n>``, written with the
reference's uid, gid and mode and bind-mounted read-only into the container at the reference's
target; a secret or config with a template driver is rendered for the task first
(``model/payload_template.py``). Only tasks placed on this node get files; a task's directory goes
away once the task is terminal or gone, and a tmpfs this module mounted is unmounted when the last
one went (mounted again for the next task that needs files). It never logs a value and never writes
one anywhere else.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..agent.model import MountSpec
from ..errors import AuthError
from ..model import FileRef, Task, secret_key
from ..model.payload_template import TemplateError, names_target, render
from ..model.templates import TemplateContext
from ..raft.state import ClusterState
from ..vault import open_value

log = logging.getLogger(__name__)

READY_MARK = ".ready"
TMPFS_SIZE = "64m"


def _mount_point_fstype(path: str) -> str:
    """The filesystem type of the mount holding ``path`` (from /proc/self/mounts)."""
    best, fstype = "", ""
    real = os.path.realpath(path)
    with open("/proc/self/mounts", encoding="utf-8") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) < 3:
                continue
            mount_point = parts[1].replace("\\040", " ")
            if (real == mount_point or real.startswith(mount_point.rstrip("/") + "/")) and len(
                mount_point
            ) >= len(best):
                best, fstype = mount_point, parts[2]
    return fstype


class TaskFiles:
    """The decrypted files of this node's tasks under ``root``; ``keys`` (by cluster key epoch) open them."""

    def __init__(self, root: str, keys: Mapping[int, bytes]) -> None:
        self.root = root
        self.keys = dict(keys)
        self._ready_error: str | None = None
        self._mounted = False  # this object mounted the tmpfs (and unmounts it when it is empty)

    def ensure_tmpfs(self) -> str:
        """ "" when ``root`` is a tmpfs (mounting one if needed), else why not (cached)."""
        if self._ready_error is not None:
            return self._ready_error
        error = ""
        try:
            os.makedirs(self.root, mode=0o700, exist_ok=True)
            if _mount_point_fstype(self.root) not in ("tmpfs", "ramfs"):
                proc = subprocess.run(
                    [
                        "mount",
                        "-t",
                        "tmpfs",
                        "-o",
                        f"mode=0700,size={TMPFS_SIZE},nosuid,nodev,noexec",
                        "tmpfs",
                        self.root,
                    ],
                    capture_output=True,
                    text=True,
                    timeout=10,
                    check=False,
                )
                if proc.returncode != 0 or _mount_point_fstype(self.root) != "tmpfs":
                    why = proc.stderr.strip() or "not a tmpfs"
                    error = f"cannot mount a tmpfs for secrets at {self.root}: {why}"
                else:
                    self._mounted = True
        except (OSError, subprocess.SubprocessError) as exc:
            error = f"cannot prepare the secrets tmpfs at {self.root}: {exc}"
        self._ready_error = error
        if error:
            log.error("task files: %s", error)
        return error

    def prepare(
        self,
        state: ClusterState,
        task: Task,
        refs: Iterable[tuple[str, FileRef]],
        facts: TaskFacts | None = None,
    ) -> tuple[tuple[MountSpec, ...], str]:
        """The read-only bind mounts of ``task``'s files (writing them if missing), or an error text;
        ``facts`` (the task's template context and its service's environment) render templated ones
        (without them a templated file is an error: the task record alone has no names to give)."""
        refs = list(refs)
        if not refs:
            return (), ""
        error = self.ensure_tmpfs()
        if error:
            return (), error
        task_dir = os.path.join(self.root, task.task_id)
        mounts = tuple(
            MountSpec(
                type="bind", source=os.path.join(task_dir, f"{kind}-{i}"), target=ref.target, read_only=True
            )
            for i, (kind, ref) in enumerate(refs)
        )
        if os.path.exists(os.path.join(task_dir, READY_MARK)):
            return mounts, ""
        try:
            values = [self._open(state, kind, ref) for kind, ref in refs]
            os.makedirs(task_dir, mode=0o700, exist_ok=True)
            for i, (kind, ref) in enumerate(refs):
                value = _rendered(state, kind, ref, values[i], refs, values, facts)
                _write(value, ref, os.path.join(task_dir, f"{kind}-{i}"))
            with open(os.path.join(task_dir, READY_MARK), "w", encoding="utf-8"):
                pass
        except (AuthError, LookupError) as exc:
            shutil.rmtree(task_dir, ignore_errors=True)
            return (), str(exc.args[0] if exc.args else exc)
        except TemplateError as exc:
            shutil.rmtree(task_dir, ignore_errors=True)
            return (), str(exc)
        except OSError as exc:
            shutil.rmtree(task_dir, ignore_errors=True)
            return (), f"cannot write the task's secret files: {exc.strerror}"
        return mounts, ""

    def _open(self, state: ClusterState, kind: str, ref: FileRef) -> bytes:
        """The plaintext of ``ref``'s version, as written (never logged)."""
        source, version = ref.source, ref.version
        record = state.secrets.get(secret_key(kind, source))
        sealed = record.sealed_version(version) if record is not None else None
        if record is None or sealed is None:
            raise LookupError(f"{kind} {source!r} version {version} is not in the cluster state")
        epoch = int(sealed.get("key_epoch", 0))
        key = self.keys.get(epoch)
        if key is None:
            raise AuthError(
                f"cannot decrypt {kind} {source!r}: it is sealed under cluster key epoch {epoch}, which this "
                f"node does not hold (run `p2porch {kind} update {source}` to seal it under the current key)"
            )
        return open_value(key, kind, record.object_id, version, bytes(sealed["sealed"]))

    def cleanup(self, keep: set[str]) -> None:
        """Remove the directories of tasks not in ``keep`` (terminal or no longer on this node)."""
        try:
            names = os.listdir(self.root)
        except OSError:
            return
        for name in names:
            if name not in keep:
                shutil.rmtree(os.path.join(self.root, name), ignore_errors=True)
        if self._mounted and not (set(names) & keep):
            self._unmount()

    def _unmount(self) -> None:
        """No task of this node uses a file any more: unmount the tmpfs (no plaintext left in memory)."""
        try:
            proc = subprocess.run(
                ["umount", self.root], capture_output=True, text=True, timeout=10, check=False
            )
        except (OSError, subprocess.SubprocessError) as exc:
            log.warning("task files: cannot unmount %s: %s", self.root, exc)
            return
        if proc.returncode != 0:
            log.warning("task files: cannot unmount %s: %s", self.root, proc.stderr.strip())
            return
        self._mounted = False
        self._ready_error = None  # the next task with files mounts it again


@dataclass(frozen=True, slots=True)
class TaskFacts:
    """What a templated secret or config of one task may name: its template context and the service's
    environment as written (Swarm's ``{{env}}`` reads the spec's, not the expanded one)."""

    context: TemplateContext
    env: Mapping[str, str]


def _rendered(
    state: ClusterState,
    kind: str,
    ref: FileRef,
    value: bytes,
    refs: list[tuple[str, FileRef]],
    values: list[bytes],
    facts: TaskFacts | None,
) -> bytes:
    """``value`` rendered for the task when its object has a template driver, else as written; another
    file a template names is read as written (Swarm's ``{{secret}}`` is the value, not rendered)."""
    record = state.secrets.get(secret_key(kind, ref.source))
    if record is None or not record.template_driver:
        return value
    if facts is None:
        raise TemplateError(f"{kind} {ref.source!r} is templated: no task facts were given to render it")

    def lookup(wanted: str, name: str) -> bytes | None:
        return next(
            (
                v
                for (k, r), v in zip(refs, values, strict=True)
                if k == wanted and names_target(k, r.target, name)
            ),
            None,
        )

    try:
        return render(value, facts.context, facts.env, lookup)
    except TemplateError as exc:
        raise TemplateError(
            f"{kind} {ref.source!r} (template_driver {record.template_driver}): {exc}"
        ) from None


def _write(value: bytes, ref: FileRef, path: str) -> None:
    """``value`` at ``path`` with the reference's owner and mode (written aside, then moved in place)."""
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, value)
        os.fchown(fd, int(ref.uid), int(ref.gid))
        os.fchmod(fd, ref.mode)
    finally:
        os.close(fd)
    os.replace(tmp, path)
