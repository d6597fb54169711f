"""Runs tasks as containers of one Docker Engine (shell: p2porch's Engine API client in worker threads).

``DockerExecutor`` owns one :class:`~p2porch.engine.client.EngineClient`. Every engine call runs in a
worker thread through ``trio.to_thread.run_sync`` (never on the trio loop); streams (events, logs) run
in their own threads and are closed from the trio side when their context exits. A task's own failure
(missing image, bad command, engine refusing the spec) is returned as ``StartOutcome.error`` with
Docker's text; only an unreachable or broken engine raises ``ExecutorError``. It only ever touches
containers labelled ``p2porch.managed=true``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Collection, Generator, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any, TypeVar

import trio

from ..engine.client import EngineClient, EngineError, NotFound
from ..engine.registry_auth import pull_auth_header, split_reference
from ..errors import ExecutorError
from ..model.container_opts import refresh_due, refresh_interval_s
from .dockerspec import (
    SUBPATH_API,
    capacity_from_info,
    clock_offset,
    create_request,
    engine_time,
    event_from_docker,
    list_key,
    member_create_request,
    observed_from_inspect,
    stop_timeout_s,
    subpath_error,
)
from .model import (
    LABEL_MANAGED,
    LABEL_MEMBER,
    LABEL_SERVICE,
    LABEL_TASK_ID,
    ContainerEvent,
    MemberSpec,
    NodeCapacity,
    ObservedContainer,
    TaskAssignment,
    container_name,
    member_container_name,
    template_error,
)
from .plan import StartOutcome, exit_error

log = logging.getLogger(__name__)

T = TypeVar("T")

_ENGINE_ERRORS = (EngineError, OSError)
_MANAGED_FILTER = {"label": [f"{LABEL_MANAGED}=true"]}
SAME_CLOCK_S = 0.5  # an engine whose clock is this close to the agent's shares its host's clock
OFFSET_REREAD_S = 10.0  # a remote engine's clock is read again this often (the worker's full resync)
OFFSET_RETRY_S = 1.0  # ...and first this soon after /info failed, doubling up to OFFSET_REREAD_S
INFO_TIMEOUT_S = 5.0  # a /info slower than this is given up (no judgement on start times meanwhile)


def docker_error_text(exc: BaseException) -> str:
    """Docker's own message for an engine error (the daemon's explanation when there is one)."""
    if isinstance(exc, EngineError) and exc.explanation:
        return exc.explanation.strip()
    return str(exc).strip() or type(exc).__name__


def on_agent_clock(observed: ObservedContainer, offset: float | None) -> ObservedContainer:
    """``observed`` with its engine start time moved to the agent's clock by ``offset``; 0.0 (unknown: no
    judgement, see plan.restarted_error) when the offset is unknown."""
    if not observed.started_at or offset == 0.0:
        return observed
    return replace(observed, started_at=0.0 if offset is None else observed.started_at + offset)


class DockerExecutor:
    """The agent's executor for one Docker Engine (see the module docstring)."""

    def __init__(
        self,
        client: EngineClient,
        *,
        pull_timeout_s: float = 60.0,
        max_concurrent_calls: int = 16,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._api = client
        self._clock = clock
        self.pull_timeout_s = pull_timeout_s
        self._limiter = trio.CapacityLimiter(max_concurrent_calls)
        self._inspect_cache: dict[str, tuple[tuple[str, str, str], ObservedContainer]] = {}
        #: events seen per container id: an inspect an event overtook is not cached (``docker restart``)
        self._events_seen: dict[str, int] = {}
        #: a unix socket's engine shares the agent's host and clock: its start times are used as they are
        self._local = bool(getattr(getattr(client, "endpoint", None), "socket_path", ""))
        #: a remote engine's clock minus the agent's (see :meth:`_engine_offset`): None = unknown,
        #: read again at ``_offset_due`` (trio's clock), after ``_offset_retry_s`` while ``/info`` fails
        self._clock_offset: float | None = None
        self._offset_due = 0.0
        self._offset_retry_s = 0.0
        self._info_running = False  # an /info thread (maybe abandoned after INFO_TIMEOUT_S) still runs
        self._pulled: dict[str, float] = {}  # image -> the agent's clock at its last pull here

    # ----- plumbing
    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await trio.to_thread.run_sync(lambda: fn(*args, **kwargs), limiter=self._limiter)

    async def aclose(self) -> None:
        """Nothing to release: each call opens and closes its own connection."""

    # ----- observation
    async def list_containers(self) -> list[ObservedContainer]:
        """Every managed container; inspects only those whose state or health changed since last time."""
        try:
            summaries = await self._call(self._api.containers, all=True, filters=_MANAGED_FILTER)
        except _ENGINE_ERRORS as exc:
            raise ExecutorError(f"cannot list containers: {docker_error_text(exc)}") from exc
        offset = await self._engine_offset()
        out: list[ObservedContainer] = []
        seen: set[str] = set()
        for summary in summaries:
            key = list_key(summary)
            container_id = key[0]
            seen.add(container_id)
            cached = self._inspect_cache.get(container_id)
            if cached is not None and cached[0] == key:
                out.append(cached[1])
                continue
            events = self._events_seen.get(container_id, 0)
            observed = await self._inspect_raw(container_id)
            if observed is not None:
                self._inspect_cache[container_id] = (key, observed)
                if self._events_seen.get(container_id, 0) != events:  # an event overtook it: stale
                    self._inspect_cache.pop(container_id, None)
                out.append(observed)
        for stale in set(self._inspect_cache) - seen:
            self._inspect_cache.pop(stale, None)
        for stale in set(self._events_seen) - seen:
            self._events_seen.pop(stale, None)
        return [on_agent_clock(observed, offset) for observed in out]

    def forget(self) -> None:
        """Inspect every container afresh and read the engine's clock again: the engine's connection came
        back (a dockerd restart kills or restores containers, restarts ones with a policy)."""
        self._inspect_cache.clear()
        self._clock_offset, self._offset_due, self._offset_retry_s = None, 0.0, 0.0

    def _read_info(self) -> tuple[float, dict[str, Any]]:
        """The agent's clock just before ``/info``, and its answer (in a worker thread, holding a slot)."""
        self._info_running = True
        try:
            before = self._clock()
            return before, self._api.info()
        finally:
            self._info_running = False

    async def _engine_offset(self) -> float | None:
        """The agent's clock minus the engine's: 0.0 for a local engine (unix socket: the same host, no
        ``/info``); for a remote one a lower bound from ``/info`` SystemTime (0.0 within ``SAME_CLOCK_S``),
        read again every ``OFFSET_REREAD_S``. None (no judgement on start times) while ``/info`` fails or
        hangs, tried again after a backoff (never while an abandoned one still runs); never raises."""
        if self._local:
            return 0.0
        if trio.current_time() < self._offset_due:
            return self._clock_offset
        answer: tuple[float, dict[str, Any]] | None = None
        error = "the previous docker info has not answered yet"
        if not self._info_running:
            self._offset_due = math.inf  # one read at a time; concurrent callers use the last word
            error = f"no answer within {INFO_TIMEOUT_S:g} s"
            try:
                with trio.move_on_after(INFO_TIMEOUT_S):
                    answer = await trio.to_thread.run_sync(
                        self._read_info, abandon_on_cancel=True, limiter=self._limiter
                    )
            except Exception as exc:  # whatever /info does, the caller's inspect goes on
                error = docker_error_text(exc)
            finally:
                self._offset_due = 0.0  # also when cancelled: the next call reads it
        if answer is None:
            self._offset_retry_s = min(max(2 * self._offset_retry_s, OFFSET_RETRY_S), OFFSET_REREAD_S)
            self._clock_offset, self._offset_due = None, trio.current_time() + self._offset_retry_s
            log.debug("cannot read the engine's clock (docker info): %s", error)
            return None
        before, info = answer
        offset = clock_offset(info, before)
        self._clock_offset = offset if abs(offset) > SAME_CLOCK_S else 0.0
        self._offset_due, self._offset_retry_s = trio.current_time() + OFFSET_REREAD_S, 0.0
        return self._clock_offset

    async def inspect(self, container_id: str) -> ObservedContainer | None:
        """The managed container ``container_id``; None if it does not exist or is not ours."""
        observed = await self._inspect_raw(container_id)
        return None if observed is None else on_agent_clock(observed, await self._engine_offset())

    async def _inspect_raw(self, container_id: str) -> ObservedContainer | None:
        """:meth:`inspect` with the start time on the engine's clock."""
        try:
            attrs = await self._call(self._api.inspect_container, container_id)
        except NotFound:
            return None
        except _ENGINE_ERRORS as exc:
            raise ExecutorError(
                f"cannot inspect container {container_id[:12]}: {docker_error_text(exc)}"
            ) from exc
        return observed_from_inspect(attrs)

    async def capacity(self) -> NodeCapacity:
        """CPUs and memory of the engine's host (``docker info``)."""
        try:
            info = await self._call(self._api.info)
        except _ENGINE_ERRORS as exc:
            raise ExecutorError(f"cannot read docker info: {docker_error_text(exc)}") from exc
        return capacity_from_info(info)

    # ----- actions
    async def start(self, assignment: TaskAssignment, container_id: str = "") -> StartOutcome:
        """Pull (as the service's pull policy says: by default only if missing locally), create and start;
        any failure comes back as the outcome's error."""
        if assignment.start_error or (error := template_error(assignment)):
            return StartOutcome(None, assignment.start_error or error)
        if error := subpath_error(assignment, getattr(self._api, "version", SUBPATH_API)):
            return StartOutcome(None, error)
        try:
            policy = str(assignment.options.get("pull_policy") or "missing")
            if not container_id:
                error = await self._ensure_image(assignment.image, policy)
                if error:
                    return StartOutcome(None, error)
            for image in dict.fromkeys(m.image for m in assignment.members):  # as the service's policy
                error = await self._ensure_image(image, policy)
                if error:
                    return StartOutcome(None, error)
            for member in assignment.init_containers:  # in order, each to completion, before the main one
                error = await self._run_init(assignment, member)
                if error:
                    return StartOutcome(None, error)
            if not container_id:
                container_id, error = await self._create(assignment)
                if error:
                    return StartOutcome(None, error)
            error = ""
            try:
                await self._call(self._api.start, container_id)
            except EngineError as exc:
                if not exc.status:
                    raise
                error = docker_error_text(exc)
            for member in assignment.sidecars:  # in the main container's network namespace
                if error:
                    break
                error = await self._start_member(assignment, member, container_id)
            return StartOutcome(await self.inspect(container_id), error)
        except (ExecutorError, *_ENGINE_ERRORS) as exc:
            text = exc.message if isinstance(exc, ExecutorError) else docker_error_text(exc)
            return StartOutcome(None, f"cannot reach the Docker engine: {text}")

    async def _ensure_image(self, image: str, policy: str = "missing") -> str:
        """ "" when ``image`` is present locally or was pulled; otherwise Docker's error text. ``policy``
        (Compose's ``pull_policy``): ``missing`` pulls only an absent image, ``never`` never pulls,
        ``always`` pulls every time; as Swarm's agent, a failed pull under ``always`` runs the image the
        node has, with a warning (a registry outage must not fail every restart), and fails the start only
        when the node has none."""
        refresh = refresh_interval_s(policy) is not None
        if policy != "always":
            try:
                attrs = await self._call(self._api.inspect_image, image)
                if not refresh or not await self._refresh_due(image, policy, attrs):
                    return ""
            except NotFound:
                if policy == "never":
                    return f"image {image} not found on this node and the service's pull_policy is never"
                refresh = False  # absent: pulled as under missing, and a failure fails the start
        repository, tag = split_reference(image)
        again = policy == "always" or refresh
        what = f"pulling {image}" if again else f"image {image} not found locally and pulling it"
        error = f"{what} timed out after {self.pull_timeout_s:g} s"
        with trio.move_on_after(self.pull_timeout_s):
            # Abandoned (not cancelled) on timeout: the SDK call cannot be interrupted; it ends by itself.
            error = await trio.to_thread.run_sync(
                lambda: self._pull_sync(image, repository, tag), abandon_on_cancel=True, limiter=self._limiter
            )
        if not error:
            self._pulled[image] = self._clock()
        elif again:
            try:
                await self._call(self._api.inspect_image, image)
            except _ENGINE_ERRORS:
                return error
            log.warning("%s; running the image this node has (pull_policy: %s)", error, policy)
            return ""
        return error

    async def _refresh_due(self, image: str, policy: str, attrs: Mapping[str, Any]) -> bool:
        """A refresh policy (``daily``, ``weekly``, ``every_<duration>``) pulls an image the node has when
        its last pull is older than that: the later of the engine's ``Metadata.LastTagTime`` (as Compose;
        a pull on the classic image store sets none) and this executor's last pull (kept in memory)."""
        tagged = engine_time((attrs.get("Metadata") or {}).get("LastTagTime"))
        tagged += (await self._engine_offset() or 0.0) if tagged else 0.0  # onto the agent's clock
        return refresh_due(policy, max(tagged, self._pulled.get(image, 0.0)), self._clock())

    def _pull_sync(self, image: str, repository: str, tag: str) -> str:
        """ "" once pulled; else Docker's error, always after ``pulling REPO:TAG failed:``: the registry's
        own text (``Get "https://registry-1.docker.io/v2/": dial tcp: ... i/o timeout``) names no image."""
        failed = f"pulling {repository}:{tag} failed: "
        try:
            stream = self._api.pull(repository, tag, auth_header=pull_auth_header(image))
            try:
                for message in stream:
                    if isinstance(message, dict) and message.get("error"):
                        return failed + str(message.get("error")).strip()
            finally:
                stream.close()
            self._api.inspect_image(
                f"{repository}@{tag}" if tag.startswith("sha256:") else f"{repository}:{tag}"
            )
            return ""
        except (EngineError, OSError) as exc:
            return failed + docker_error_text(exc)

    async def _create(self, assignment: TaskAssignment) -> tuple[str, str]:
        """(container id, "") or ("", Docker's error); reuses our own container if the name is taken by it."""
        name, body = create_request(assignment)
        try:
            return await self._call(self._api.create_container, name, body), ""
        except EngineError as exc:
            if not exc.status:
                raise
            if exc.status == 409:
                existing = await self.inspect(container_name(assignment))
                if existing is not None and existing.task_id == assignment.task_id:
                    return existing.container_id, ""
            return "", docker_error_text(exc)

    async def _start_member(self, assignment: TaskAssignment, member: MemberSpec, main_id: str) -> str:
        """Create (or find, after an interrupted start) and start one sidecar or init container: "" or why
        it failed."""
        name, body = member_create_request(assignment, member, main_id)
        try:
            member_id = await self._call(self._api.create_container, name, body)
        except EngineError as exc:
            if not exc.status:
                raise
            existing = await self.inspect(name) if exc.status == 409 else None
            if existing is None or existing.task_id != assignment.task_id:
                return f"{member.kind} container {member.name}: {docker_error_text(exc)}"
            if existing.status != "created":
                return ""  # started by an earlier attempt of this same task
            member_id = existing.container_id
        try:
            await self._call(self._api.start, member_id)
        except EngineError as exc:
            if not exc.status:
                raise
            return f"{member.kind} container {member.name}: {docker_error_text(exc)}"
        return ""

    async def _run_init(self, assignment: TaskAssignment, member: MemberSpec) -> str:
        """Run one init container to completion: "" when it exited 0, else why the task failed. An init
        container left by an interrupted start of the same task is waited for, not run twice."""
        name = member_container_name(assignment, member)
        existing = await self.inspect(name)
        if existing is None or existing.status == "created":
            error = await self._start_member(assignment, member, "")
            if error:
                return error
        delay = 0.1
        while True:
            observed = await self.inspect(name)
            if observed is None:
                return f"init container {member.name} vanished before it completed"
            if observed.status in ("exited", "dead"):
                if observed.exit_code == 0 and not observed.error:
                    return ""
                return f"init container {member.name} {exit_error(observed).removeprefix('task ')}"
            await trio.sleep(delay)  # cancellable: a task shut down while its init runs stops waiting
            delay = min(delay * 2, 1.0)

    async def remove(self, container_id: str, stop_grace_s: float) -> None:
        """Stop (SIGTERM, SIGKILL after ``stop_grace_s``) and remove; a container already gone is fine."""
        grace = stop_timeout_s(stop_grace_s)
        try:
            try:
                await self._call(self._api.stop, container_id, timeout_s=grace)
            except NotFound:
                return
            except EngineError as exc:
                if not exc.status:
                    raise
                log.debug(
                    "stopping %s failed, removing by force: %s", container_id[:12], docker_error_text(exc)
                )
            await self._call(self._api.remove_container, container_id, force=True)
        except NotFound:
            return
        except _ENGINE_ERRORS as exc:
            if (
                isinstance(exc, EngineError)
                and exc.status == 409
                and "already in progress" in docker_error_text(exc)
            ):
                return
            raise ExecutorError(
                f"cannot remove container {container_id[:12]}: {docker_error_text(exc)}"
            ) from exc
        finally:
            self._inspect_cache.pop(container_id, None)

    # ----- streams
    @asynccontextmanager
    async def open_events(self) -> AsyncIterator[trio.MemoryReceiveChannel[ContainerEvent]]:
        """A channel of events about managed containers; it closes if the engine connection drops."""
        send, receive = trio.open_memory_channel[ContainerEvent](256)

        def opener() -> Any:
            return self._api.events({"type": "container", **_MANAGED_FILTER})

        def convert(item: Any) -> Iterable[ContainerEvent]:
            event = event_from_docker(item) if isinstance(item, dict) else None
            if event is None:
                return ()
            # Counted before the cached inspect is dropped (a restart keeps the listing's key): an inspect
            # in flight is either seen overtaken by list_containers or dropped here after it was cached.
            self._events_seen[event.container_id] = self._events_seen.get(event.container_id, 0) + 1
            self._inspect_cache.pop(event.container_id, None)
            return (event,)

        async with trio.open_nursery() as nursery:
            stream = await self._open_stream(opener)
            self.forget()  # nothing seen while not subscribed is trusted
            nursery.start_soon(_pump, stream, convert, send)
            try:
                yield receive
            finally:
                nursery.cancel_scope.cancel()

    @asynccontextmanager
    async def open_logs(
        self,
        task_ids: Collection[str] | None = None,
        *,
        service_name: str = "",
        follow: bool = False,
        tail: int | None = None,
        container: str = "",
        since: float | None = None,
        timestamps: bool = False,
    ) -> AsyncIterator[trio.MemoryReceiveChannel[tuple[str, str]]]:
        """A channel of ``(task_id, line)`` from the managed containers that match ``task_ids`` and/or
        ``service_name`` (all managed containers if neither is given), stdout and stderr interleaved.

        ``container`` picks one container of each task group by name ("" = the main container).
        Without ``follow`` the channel closes after the last existing line; with it, it stays open
        until the containers stop or the context exits. Containers created later are not included.
        ``since`` and ``timestamps`` are the engine's (``docker logs --since/--timestamps``).
        """
        filters: dict[str, Any] = {"label": [f"{LABEL_MANAGED}=true"]}
        if service_name:
            filters["label"].append(f"{LABEL_SERVICE}={service_name}")
        if task_ids is not None and len(task_ids) == 1:  # one task (service logs TASK): list its alone
            filters["label"].append(f"{LABEL_TASK_ID}={next(iter(task_ids))}")
        try:
            summaries = await self._call(self._api.containers, all=True, filters=filters)
        except _ENGINE_ERRORS as exc:
            raise ExecutorError(f"cannot list containers: {docker_error_text(exc)}") from exc
        wanted = set(task_ids) if task_ids is not None else None
        selected = []
        for summary in sorted(summaries, key=lambda s: str((s.get("Labels") or {}).get(LABEL_TASK_ID, ""))):
            labels = summary.get("Labels") or {}
            task_id = str(labels.get(LABEL_TASK_ID, ""))
            if str(labels.get(LABEL_MEMBER, "")) != container:
                continue
            if task_id and (wanted is None or task_id in wanted):
                selected.append((task_id, str(summary["Id"])))

        send, receive = trio.open_memory_channel[tuple[str, str]](256)
        async with trio.open_nursery() as nursery:
            async with send:
                for task_id, container_id in selected:

                    def opener(container_id: str = container_id) -> Any:
                        return self._api.logs(
                            container_id, follow=follow, tail=tail, since=since, timestamps=timestamps
                        )

                    try:
                        stream = await self._open_stream(opener)
                    except ExecutorError as exc:
                        log.debug("no logs for task %s: %s", task_id, exc.message)
                        continue
                    nursery.start_soon(_pump, stream, _LineSplitter(task_id), send.clone())
            try:
                yield receive
            finally:
                nursery.cancel_scope.cancel()

    async def _open_stream(self, opener: Callable[[], Any]) -> Any:
        try:
            return await self._call(opener)
        except _ENGINE_ERRORS as exc:
            raise ExecutorError(f"cannot open a Docker stream: {docker_error_text(exc)}") from exc


MAX_LOG_LINE_BYTES = 64 * 1024  # a longer line is split: a paused reader pins lines x this, not more


def _cut(data: bytes) -> int:
    """Where to split ``data`` (longer than the cap): at the cap, or just before a UTF-8 character it
    would cut in two."""
    cut = MAX_LOG_LINE_BYTES
    while cut > MAX_LOG_LINE_BYTES - 3 and data[cut] & 0xC0 == 0x80:  # a continuation byte
        cut -= 1
    return cut


class _LineSplitter:
    """Turns one container's log chunks into ``(task_id, line)`` items of at most ``MAX_LOG_LINE_BYTES``
    each; keeps a partial last line, never more than the cap of it (a longer line goes on as the next
    item, unmarked). Never joins two lines."""

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id
        self._pending = b""

    def __call__(self, chunk: Any) -> Iterator[tuple[str, str]]:
        if chunk is _END:
            if self._pending:
                yield self.task_id, self._pending.decode(errors="replace")
                self._pending = b""
            return
        data = self._pending + (chunk if isinstance(chunk, bytes) else str(chunk).encode())
        *lines, rest = data.split(b"\n")
        for line in lines:
            last = yield from self._long_pieces(line.rstrip(b"\r"))
            yield self.task_id, last.decode(errors="replace")
        self._pending = yield from self._long_pieces(rest)

    def _long_pieces(self, data: bytes) -> Generator[tuple[str, str], None, bytes]:
        """Yield ``data``'s leading pieces of the cap while it is longer; return the rest."""
        while len(data) > MAX_LOG_LINE_BYTES:
            cut = _cut(data)
            yield self.task_id, data[:cut].decode(errors="replace")
            data = data[cut:]
        return data


_END = object()


async def _pump(
    stream: Any, convert: Callable[[Any], Iterable[Any]], send: trio.MemorySendChannel[Any]
) -> None:
    """Read a blocking Docker stream in a thread and forward converted items; close both on exit."""

    def read() -> None:
        try:
            for item in stream:
                for out in convert(item):
                    trio.from_thread.run(send.send, out)
            for out in convert(_END):
                trio.from_thread.run(send.send, out)
        except (
            BaseException
        ) as exc:  # the trio side went away (cancelled, channel closed) or the stream broke
            log.debug("docker stream ended: %r", exc)

    try:
        async with send:
            await trio.to_thread.run_sync(read, abandon_on_cancel=True, limiter=trio.CapacityLimiter(1))
    finally:
        try:
            stream.close()
        except Exception as exc:  # closing a dead socket may fail in many ways
            log.debug("closing docker stream: %r", exc)


async def open_docker_executor(
    base_url: str | None = None, *, timeout_s: float = 60.0, **kwargs: Any
) -> DockerExecutor:
    """Connect to the engine at ``base_url`` (None: ``DOCKER_HOST``, default the local unix socket); check it
    answers. An address p2porch cannot use (ssh://) raises ConfigError naming the setting."""

    def connect() -> EngineClient:
        return EngineClient.connect(base_url, timeout_s=timeout_s)

    try:
        client = await trio.to_thread.run_sync(connect)
    except _ENGINE_ERRORS as exc:
        raise ExecutorError(
            f"cannot connect to the Docker engine at {base_url or 'default'}: {docker_error_text(exc)}"
        ) from exc
    return DockerExecutor(client, **kwargs)
