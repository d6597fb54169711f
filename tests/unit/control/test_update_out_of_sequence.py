"""An update redone or retried over another writer's change is refused "update out of sequence" or taken
as already done, never merged into it (task 2 of h51deploy; model/update_sequence.py).

Main redid a `service update` whose record changed between its read and its commit on the newer record
and merged its change into it (control/fresh_read.py): another user's ``--image v3`` committed in that
window was overwritten by this one's ``--image v2``, silently. And a CLI that sent an update again after
the leader changed (the answer lost, the write perhaps committed) had no base to check. Now an update's
base is the spec it was computed against (``base_spec``, the digest of the spec read first): the
cluster's own bookkeeping leaves it as it is (still redone: tests/unit/control/test_fresh_read.py);
another write to the spec refuses it in Docker's words unless the update would change nothing.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from p2porch.cli import main
from p2porch.cli import service as cli_service
from p2porch.cli.sent_again import sent_again_once
from p2porch.control.secret_ops import SecretOps
from p2porch.control.service_ops import ServiceOps
from p2porch.errors import ConfigError, ConflictError, P2POrchError, ProposalTimeout, error_from_dict
from p2porch.model import ServiceSpec
from p2porch.model.autoscale_spec import AutoscaleStep
from p2porch.model.update_sequence import OUT_OF_SEQUENCE, decide, previous_digest, spec_digest
from p2porch.raft import commands as C
from p2porch.testing.memstore import MemoryManager

SPEC = {"name": "web", "image": "p2porch/busybox:1", "replicas": 1}


# ----------------------------------------------------------------------------- the pure decision


@pytest.mark.parametrize(
    ("same_base", "changes_it", "decision"),
    [
        (True, True, "write"),
        (True, False, "nothing"),
        (False, False, "nothing"),  # the retried write committed, or the other writer did the same
        (False, True, "refuse"),  # another write changed the spec: never merged into it
    ],
)
def test_decide(same_base: bool, changes_it: bool, decision: str) -> None:
    assert decide("a" * 32, "a" * 32 if same_base else "b" * 32, changes_it) == decision


def test_the_digest_of_a_spec_and_of_its_view_are_one() -> None:
    spec = ServiceSpec.from_dict({**SPEC, "env": {"A": "1"}, "publish": ["8080:80"], "limit_memory": "64M"})
    view = json.loads(json.dumps(spec.to_dict()))  # what GET /services/web answers, as the CLI reads it
    assert spec_digest(spec.to_dict()) == spec_digest(view)
    other = ServiceSpec.from_dict({**SPEC, "env": {"A": "2"}})
    assert spec_digest(other.to_dict()) != spec_digest(spec.to_dict())


def test_an_unknown_outcome_carries_its_base_over_the_api() -> None:
    error = ProposalTimeout("no answer from the Raft leader in time", base_spec="c" * 32)
    again = error_from_dict(json.loads(json.dumps(error.to_dict())))
    assert isinstance(again, ProposalTimeout) and again.base_spec == "c" * 32
    both = ProposalTimeout("x", base_spec="c" * 32, base_previous="e" * 32)
    assert error_from_dict(json.loads(json.dumps(both.to_dict()))).base_previous == "e" * 32  # type: ignore[attr-defined]
    assert "base_spec" not in ProposalTimeout("x").to_dict()


# ----------------------------------------------------------------------------- ServiceOps


class OtherWriterFirst(MemoryManager):
    """Before the next write to ``web``, ``other`` (an UpdateService of another writer) commits."""

    def __init__(self) -> None:
        super().__init__()
        self.other: dict[str, Any] | None = None
        self.other_command: C.UpdateService | None = None  # or this command

    async def write(self, command: bytes) -> object:
        service = self.state.service_by_name("web")
        if self.other_command is not None:
            self._apply(self.other_command.encode())
            self.other_command = None
        if self.other is not None and service is not None:
            spec = ServiceSpec.from_dict({**service.spec.to_dict(), **self.other})
            self.other = None
            self._apply(C.UpdateService.of(service, at=1.0, spec=spec, previous_spec=service.spec).encode())
        return await super().write(command)


@pytest.fixture
def manager() -> OtherWriterFirst:
    return OtherWriterFirst()


@pytest.fixture
async def ops(manager: OtherWriterFirst) -> ServiceOps:
    ops = ServiceOps(manager, logs=None)  # type: ignore[arg-type]
    await ops.create(dict(SPEC))
    return ops


async def test_another_users_change_to_the_same_field_is_refused_not_overwritten(
    ops: ServiceOps, manager: OtherWriterFirst
) -> None:
    manager.other = {"image": "p2porch/busybox:3"}  # committed between this update's read and its write
    with pytest.raises(ConflictError) as refused:
        await ops.update("web", {"image": "p2porch/busybox:2"})  # main: merged, the image 2 (3 lost)
    assert refused.value.message.startswith(f"{OUT_OF_SEQUENCE}: service web changed since")
    assert refused.value.field == "base_spec"
    web = ops.find("web")  # the other writer's update is the last one written
    assert web.spec.image == "p2porch/busybox:3" and web.previous_spec.image == "p2porch/busybox:1"


async def test_another_users_change_to_another_field_is_not_merged_either(
    ops: ServiceOps, manager: OtherWriterFirst
) -> None:
    manager.other = {"env": {"B": "2"}}
    with pytest.raises(ConflictError, match=OUT_OF_SEQUENCE):
        await ops.scale("web", 3)  # main: merged (replicas 3 with the other's env)
    assert ops.find("web").spec.replicas == 1 and dict(ops.find("web").spec.env) == {"B": "2"}


async def test_the_same_change_made_by_the_other_writer_is_taken_as_done(
    ops: ServiceOps, manager: OtherWriterFirst
) -> None:
    manager.other = {"image": "p2porch/busybox:2"}
    answer = await ops.update("web", {"image": "p2porch/busybox:2"})
    assert answer["changed"] == [] and ops.find("web").spec.image == "p2porch/busybox:2"


class CommitsThenTimesOut(MemoryManager):
    """The next write commits, but its answer is lost (the leader changed): ProposalTimeout."""

    lose_next = False

    async def write(self, command: bytes) -> object:
        result = await super().write(command)
        if self.lose_next:
            self.lose_next = False
            raise ProposalTimeout("no answer from the Raft leader in time")
        return result


async def test_a_retry_of_a_committed_update_is_idempotent_and_one_after_another_write_refused() -> None:
    manager = CommitsThenTimesOut()
    ops = ServiceOps(manager, logs=None)  # type: ignore[arg-type]
    await ops.create(dict(SPEC))
    base = spec_digest(ops.find("web").spec.to_dict())
    manager.lose_next = True
    with pytest.raises(ProposalTimeout) as lost:
        await ops.update("web", {"image": "p2porch/busybox:2"})
    assert lost.value.base_spec == base  # what the CLI sends again
    writes = manager.writes
    again = await ops.update("web", {"image": "p2porch/busybox:2", "base_spec": base})
    assert again["changed"] == [] and manager.writes == writes  # committed the first time: nothing more
    await ops.update("web", {"env": {"C": "3"}})  # another user's update
    with pytest.raises(ConflictError, match=OUT_OF_SEQUENCE):  # a retry at the old base: not merged
        await ops.update("web", {"image": "p2porch/busybox:4", "base_spec": base})
    assert ops.find("web").spec.image == "p2porch/busybox:2"


async def test_a_retry_whose_first_write_did_not_commit_is_written() -> None:
    manager = MemoryManager()
    ops = ServiceOps(manager, logs=None)  # type: ignore[arg-type]
    await ops.create(dict(SPEC))
    base = spec_digest(ops.find("web").spec.to_dict())
    await ops.update("web", {"image": "p2porch/busybox:2", "base_spec": base})
    assert ops.find("web").spec.image == "p2porch/busybox:2"


@pytest.mark.parametrize("bad", ["", "abc", "Z" * 32, 5, ["x"]])
async def test_a_bad_base_spec_names_the_field(ops: ServiceOps, bad: object) -> None:
    with pytest.raises(ConfigError) as refused:
        await ops.update("web", {"image": "p2porch/busybox:2", "base_spec": bad})
    assert refused.value.field == "base_spec"


# ----------------------------------------------------------------------------- the CLI's retry


class LosesFirstAnswer:
    """The first update's answer is lost (504 with its base); the second is answered."""

    def __init__(self, second: Exception | None = None, answer: dict[str, Any] | None = None) -> None:
        self.posted: list[dict[str, Any]] = []
        self.second = second
        self.answer = answer or {"id": "0123456789abcdef", "name": "web", "version": 9, "changed": []}

    def post(self, path: str, body: Any = None) -> Any:
        assert path == "/services/web/update"
        self.posted.append(body)
        if len(self.posted) == 1:
            raise ProposalTimeout("no answer from the Raft leader in time", base_spec="d" * 32)
        if self.second is not None:
            raise self.second
        return self.answer


def test_the_cli_sends_an_update_whose_answer_was_lost_again_at_its_base(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    api = LosesFirstAnswer()
    monkeypatch.setattr(cli_service, "client_for", lambda args: api)
    assert main(["service", "update", "-d", "--image", "p2porch/busybox:2", "web"]) == 0
    assert api.posted[1] == {**api.posted[0], "base_spec": "d" * 32}
    err = capsys.readouterr().err
    assert "the update may have committed; sending it again" in err and "nothing changed" in err


def test_the_cli_says_out_of_sequence_when_the_retry_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    refusal = ConflictError(f"{OUT_OF_SEQUENCE}: service web changed since ...", field="base_spec")
    monkeypatch.setattr(cli_service, "client_for", lambda args: LosesFirstAnswer(refusal))
    assert main(["service", "update", "-d", "--image", "p2porch/busybox:2", "web"]) == 1
    assert OUT_OF_SEQUENCE in capsys.readouterr().err


def test_the_users_own_if_version_is_not_sent_again() -> None:
    api = LosesFirstAnswer()
    with pytest.raises(ProposalTimeout):
        sent_again_once(lambda body: api.post("/services/web/update", body), {"expected_version": 4})
    assert len(api.posted) == 1


# ----------------------------------------------------------------------------- a reviewer's findings (r51e)


async def lost_then_sent_again(
    changes: dict[str, Any], between: Any = None, secrets: list[str] | None = None
) -> tuple[ServiceOps, Any]:
    """``changes`` committed with its answer lost; ``between(ops)`` runs; the same body sent again with
    the bases the lost answer named (the service uses ``secrets``, each created with ``v1``). (ops, the
    answer or the error of the second send)."""
    manager = CommitsThenTimesOut()
    ops = ServiceOps(manager, logs=None)  # type: ignore[arg-type]
    for name in secrets or ():
        await SecretOps(manager, lambda: (0, b"k" * 32)).create("secret", {"name": name, "data": "djE="})  # type: ignore[arg-type]
    await ops.create({**SPEC, "secrets": secrets or []})
    manager.lose_next = True
    with pytest.raises(ProposalTimeout) as lost:
        await ops.update("web", dict(changes))
    if between is not None:
        await between(ops)
    bases = {"base_spec": lost.value.base_spec, "base_previous": lost.value.base_previous}
    try:
        return ops, await ops.update("web", {**changes, **bases})
    except P2POrchError as exc:
        return ops, exc


async def test_a_forced_update_sent_again_after_it_committed_is_already_written() -> None:
    ops, answer = await lost_then_sent_again({"force": True})  # main: refused "out of sequence" (false)
    assert isinstance(answer, dict) and answer["already"] is True and answer["changed"] == []
    assert ops.find("web").spec.force_update == 1  # written once


async def test_a_secret_add_sent_again_after_it_committed_is_already_written() -> None:
    manager = CommitsThenTimesOut()
    ops = ServiceOps(manager, logs=None)  # type: ignore[arg-type]
    await SecretOps(manager, lambda: (0, b"k" * 32)).create("secret", {"name": "s2", "data": "czI="})  # type: ignore[arg-type]
    await ops.create(dict(SPEC))
    manager.lose_next = True
    body = {"secrets_add": [{"source": "s2"}]}
    with pytest.raises(ProposalTimeout) as lost:
        await ops.update("web", dict(body))
    bases = {"base_spec": lost.value.base_spec, "base_previous": lost.value.base_previous}
    answer = await ops.update("web", {**body, **bases})  # main: ConfigError "target ... used twice"
    assert answer["already"] is True and [r.source for r in ops.find("web").spec.secrets] == ["s2"]


async def test_a_resend_that_finds_its_update_written_answers_already_not_nothing_changed() -> None:
    _, answer = await lost_then_sent_again({"image": "p2porch/busybox:2"})
    assert isinstance(answer, dict) and answer["already"] is True  # main: changed [] alone


async def test_a_resend_does_not_undo_a_rollback_made_in_between() -> None:
    async def rolled_back(ops: ServiceOps) -> None:
        await ops.rollback("web")

    ops, answer = await lost_then_sent_again({"image": "p2porch/busybox:2"}, rolled_back)
    assert isinstance(answer, ConflictError) and OUT_OF_SEQUENCE in answer.message  # main: written again
    assert ops.find("web").spec.image == "p2porch/busybox:1"


async def test_a_resend_whose_first_send_did_not_commit_is_written_after_bookkeeping() -> None:
    manager = MemoryManager()
    ops = ServiceOps(manager, logs=None)  # type: ignore[arg-type]
    await ops.create(dict(SPEC))
    read = ops.find("web")
    bases = {"base_spec": spec_digest(read.spec.to_dict()), "base_previous": previous_digest(read)}
    await manager.write(C.UpdateService.of(read, at=2.0, rebalance_requested=2.0).encode())  # bookkeeping
    answer = await ops.update("web", {"image": "p2porch/busybox:2", **bases})
    assert answer["changed"] == ["image"] and "already" not in answer


async def test_an_update_is_merged_into_an_autoscale_made_meanwhile(
    ops: ServiceOps, manager: OtherWriterFirst
) -> None:
    """The autoscaler's replicas committed between this update's read and its write: merged into it
    (main: refused "update out of sequence"); the update keeps the autoscaler's replicas."""
    web = ops.find("web")
    step = AutoscaleStep(at=1.0, from_replicas=1, to_replicas=3, reason="cpu")
    manager.other_command = scale_command_of(web, step)
    answer = await ops.update("web", {"image": "p2porch/busybox:2"})
    spec = ops.find("web").spec
    assert answer["changed"] == ["image"] and (spec.image, spec.replicas) == ("p2porch/busybox:2", 3)


def scale_command_of(service: Any, step: AutoscaleStep) -> C.UpdateService:
    spec = dataclasses.replace(service.spec, replicas=step.to_replicas)
    return C.UpdateService.of(service, at=step.at, spec=spec, autoscale_last=step)


async def test_the_view_names_its_spec_digest(ops: ServiceOps) -> None:
    view = ops.view(ops.find("web"))
    assert view["spec_digest"] == spec_digest(view["spec"])


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"force": True}, "--force"),
        ({"secrets_add": [{"source": "s"}]}, "secrets_add"),
        ({"networks_rm": ["n"]}, "networks_rm"),
    ],
)
def test_the_cli_never_sends_a_forced_or_list_edit_update_twice(body: dict[str, Any], named: str) -> None:
    api = LosesFirstAnswer()
    with pytest.raises(ProposalTimeout) as unknown:
        sent_again_once(lambda b: api.post("/services/web/update", b), body)
    assert len(api.posted) == 1  # main: sent again (a job's second execution; exit 2 after a write)
    assert named in unknown.value.message and "inspect the service" in unknown.value.message


def test_the_cli_waits_for_an_update_its_resend_found_already_written(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    api = LosesFirstAnswer(
        answer={"id": "0123456789abcdef", "name": "web", "version": 9, "changed": [], "already": True}
    )
    waited: list[Any] = []
    monkeypatch.setattr(cli_service, "client_for", lambda args: api)
    monkeypatch.setattr(cli_service, "wait_after", lambda args, client, watches: waited.extend(watches))
    monkeypatch.setattr(cli_service, "waits_for", lambda view: True)
    assert main(["service", "update", "--image", "p2porch/busybox:2", "web"]) == 0
    err = capsys.readouterr().err
    assert "web: the update was already written (its first send committed)" in err
    assert "nothing changed" not in err  # main: "nothing changed (no rollback point recorded)", no wait
    assert [(w.name, w.version) for w in waited] == [("web", 9)]


async def test_an_update_is_merged_into_a_secret_roll_made_meanwhile(manager: OtherWriterFirst) -> None:
    """The roll of a new secret version (its unpinned references moved) committed between this update's
    read and its write: merged into it (main: refused), the service keeping the new version."""
    secrets = SecretOps(manager, lambda: (0, b"k" * 32))  # type: ignore[arg-type]
    await secrets.create("secret", {"name": "s1", "data": "djE="})
    ops = ServiceOps(manager, logs=None)  # type: ignore[arg-type]
    await ops.create({**SPEC, "secrets": ["s1"]})
    await secrets.update("secret", "s1", {"data": "djI=", "defer_roll": True})  # version 2, not rolled
    web = ops.find("web")
    rolled = tuple(dataclasses.replace(r, version=2) for r in web.spec.secrets)
    spec = dataclasses.replace(web.spec, secrets=rolled)
    manager.other_command = C.UpdateService.of(web, at=2.0, spec=spec, previous_spec=web.spec)
    answer = await ops.update("web", {"image": "p2porch/busybox:2"})
    after = ops.find("web").spec
    assert answer["changed"] == ["image"] and [r.version for r in after.secrets] == [2]
