"""The h51 user journey on a live 3-node cluster (``p51u``, 10.95.26.0/24): what a user typing the README's
commands hit and the fast tiers cannot show (docs/testing.md, "The user journey (h51)").

- ``service update --network-add front cli`` on a service that named no network (so on the default
  network ``p2porch``) keeps it there: its tasks reach the ``front`` service and still reach the services
  of the default network (the add moved it to ``front`` alone, cutting it off from them).
- A rotation as a Swarm user types it (``secret create`` from stdin and from a file, ``--secret
  source=,target=,mode=,uid=,gid=``, ``--secret-rm OLD --secret-add NEW``): a ``--secret-rm`` of a name
  that is no secret is refused naming the flag (exit 2) and changes nothing; it said "nothing
  changed" (exit 0) and kept the old secret mounted. An existing secret the service no longer uses is
  ignored with a warning (exit 0), as Docker's CLI ignores it.
- ``stack rm a`` keeps a's network that stack b uses, says so, and a second ``stack rm a`` once b is gone
  removes it (the stack is found by its labelled network).
"""

from __future__ import annotations

import shlex

import clusterkit as kit
from clusterkit import FAST_STOP, IMAGE, P2PORCH, SERVE, cli, cluster_fixture, service, wait_for

from p2porch.errors import SandboxError
from p2porch.sandbox.sandbox import SandboxNode

cluster = cluster_fixture("p51u", "10.95.26.0/24")

SLEEP = ("sh", "-c", "exec sleep 3600")


def _container_of(nodes: list[SandboxNode], name: str) -> tuple[SandboxNode, str]:
    """The node and id of the running container of ``name``'s task (AssertionError until one runs)."""
    for node in nodes:
        found = [c for c in kit.containers(node, name) if c["State"]["Running"]]
        if found:
            return node, found[0]["Id"]
    raise AssertionError(f"no running container of {name} yet")


def _get(node: SandboxNode, cid: str, url: str) -> str:
    return kit.container_sh(node, cid, f"timeout 3 wget -q -O- {url} 2>&1 || echo FAILED")


def test_network_add_keeps_a_service_of_the_default_network_there(cluster) -> None:
    sb, nodes = cluster
    assert cli(sb, "n1", "network", "create", "front").returncode == 0
    try:
        with (
            service(sb, nodes, "api", *FAST_STOP, "--env", "V=api", IMAGE, "sh", "-c", SERVE),
            service(
                sb, nodes, "fs", *FAST_STOP, "--network", "front", "--env", "V=fs", IMAGE, "sh", "-c", SERVE
            ),
            service(sb, nodes, "cl", *FAST_STOP, IMAGE, *SLEEP),
        ):
            for name in ("api", "fs", "cl"):
                kit.running_tasks(nodes[0], name, 1)
            node, cid = wait_for(
                lambda: _container_of(nodes, "cl"), 60, "cl's container", retry_on=(AssertionError,)
            )
            wait_for(lambda: "v=api" in _get(node, cid, "http://api/"), 30, "api reached from cl", 1)
            added = cli(sb, "n2", "service", "update", "--network-add", "front", "cl")
            assert added.returncode == 0, added.stderr.decode()
            node, cid = wait_for(
                lambda: _container_of(nodes, "cl"), 60, "cl's container", retry_on=(AssertionError,)
            )
            wait_for(lambda: "v=fs" in _get(node, cid, "http://fs/"), 30, "fs reached from cl on front", 1)
            page = _get(node, cid, "http://api/")  # main: wget: bad address 'api' (cl was on front alone)
            assert "v=api" in page, page
            on = cli(sb, "n3", "service", "inspect", "--format", "{{json .Spec.TaskTemplate.Networks}}", "cl")
            assert b'"p2porch"' in on.stdout and b'"front"' in on.stdout, on.stdout
            typo = cli(sb, "n1", "service", "update", "--network-rm", "frnt", "cl")
            assert typo.returncode == 2 and b"--network-rm" in typo.stderr, typo.stderr
            back = cli(sb, "n1", "service", "update", "--network-rm", "front", "cl")
            assert back.returncode == 0, back.stderr.decode()
            on = cli(sb, "n1", "service", "inspect", "--format", "{{json .Spec.TaskTemplate.Networks}}", "cl")
            # on the default network alone: it names none, as it was created
            assert on.stdout.strip() == b"[]", on.stdout
    finally:
        cli(sb, "n1", "network", "rm", "front")


def test_a_swarm_users_secret_rotation_and_a_mistyped_secret_rm(cluster, tmp_path) -> None:
    sb, nodes = cluster
    made = sb.exec(
        "n1", ["sh", "-c", f"printf %s hunter2 | {shlex.join(P2PORCH)} secret create db_pw -"], capture=True
    )
    assert made.returncode == 0, made.stderr.decode()
    second = tmp_path / "pw2.txt"
    second.write_text("hunter3")
    assert cli(sb, "n2", "secret", "create", "db_pw_v2", str(second)).returncode == 0
    ref = "source=db_pw,target=db.pw,mode=0400,uid=1000,gid=1000"
    show = "stat -c '%a %u %g' /run/secrets/db.pw; cat /run/secrets/db.pw"
    try:
        with service(sb, nodes, "app", *FAST_STOP, "--secret", ref, IMAGE, *SLEEP):
            task = kit.running_tasks(nodes[0], "app", 1)[0]
            node, cid = wait_for(
                lambda: _container_of(nodes, "app"), 60, "app's container", retry_on=(AssertionError,)
            )
            assert kit.container_sh(node, cid, show) == "400 1000 1000\nhunter2"
            typo = cli(
                sb, "n3", "service", "update", "--secret-rm", "db-pw", "--secret-add", "db_pw_v2", "app"
            )
            assert typo.returncode == 2, typo.stderr.decode()  # main: exit 0, "nothing changed"-like roll
            assert b"--secret-rm" in typo.stderr and b"db-pw" in typo.stderr, typo.stderr
            assert [t["id"] for t in kit.tasks(nodes[0], "app")] == [task["id"]]  # nothing was written
            new = "source=db_pw_v2,target=db.pw,mode=0400,uid=1000"
            rotate = (
                "--converge-timeout",
                "90s",
                "--secret-rm",
                "db_pw",
                "--secret-add",
                new,
            )  # 90s: main exit 2
            rotated = cli(sb, "n3", "service", "update", *rotate, "app")
            assert rotated.returncode == 0, rotated.stderr.decode()

            def rotated_file() -> str:
                node, cid = _container_of(nodes, "app")
                return kit.container_sh(node, cid, show)

            wait_for(
                lambda: rotated_file() == "400 1000 0\nhunter3",
                60,
                "the new secret in app's new task",
                interval_s=1,
                retry_on=(AssertionError, SandboxError),
            )
            listed = (
                cli(sb, "n1", "secret", "inspect", "db_pw_v2").stdout
                + cli(sb, "n1", "service", "inspect", "app").stdout
            )
            assert b"hunter" not in listed, listed
            again = cli(sb, "n2", "service", "update", "--secret-rm", "db_pw", "app")  # a revoke loop's
            assert again.returncode == 0, again.stderr.decode()  # h51 main: exit 2; Docker ignores it
            assert b"warning: app uses no secret 'db_pw'" in again.stderr, again.stderr
            assert cli(sb, "n1", "secret", "rm", "db_pw").returncode == 0  # no service uses it any more
    finally:
        cli(sb, "n1", "secret", "rm", "db_pw", "db_pw_v2")


def _stack(service: str, networks: str) -> str:
    """A Compose file of one sleeping ``service`` on the ``networks`` it declares (a flow mapping)."""
    attached = ", ".join(name for name in ("public", "private") if name in networks)
    return (
        f"services:\n  {service}:\n    image: {IMAGE}\n    command: [sh, -c, exec sleep 3600]\n"
        f"    stop_grace_period: 1s\n    networks: [{attached}]\nnetworks: {networks}\n"
    )


STACK_A = _stack("api", "{public: {name: shared_public}, private: {internal: true}}")
STACK_B = _stack("front", "{public: {external: true, name: shared_public}}")


def test_stack_rm_says_which_of_its_networks_another_stack_still_uses(cluster, tmp_path) -> None:
    sb, nodes = cluster
    (tmp_path / "a.yml").write_text(STACK_A)
    (tmp_path / "b.yml").write_text(STACK_B)
    try:
        for stack in ("a", "b"):
            deployed = kit.stack_deploy(sb, tmp_path / f"{stack}.yml", stack)
            assert deployed.returncode == 0, deployed.stderr.decode()
        removed = cli(sb, "n2", "stack", "rm", "a")
        assert removed.returncode == 0, removed.stderr.decode()
        assert b"removed  network a_private" in removed.stdout, removed.stdout
        # main: nothing said, and no later `stack rm` removes it (b's is external)
        kept = b"warning: network shared_public of stack a kept: in use by service(s) b-front"
        assert kept in removed.stderr, removed.stderr
        assert cli(sb, "n1", "stack", "rm", "b").returncode == 0
        wait_for(lambda: not kit.containers(nodes[0], "b-front"), 60, "b-front's containers gone", 1)
        again = cli(sb, "n1", "stack", "rm", "a")  # h51 main: "Nothing found in stack: a", the network stays
        assert b"removed  network shared_public" in again.stdout, (again.stdout, again.stderr)
    finally:
        cli(sb, "n1", "stack", "rm", "a", "b")
        cli(sb, "n1", "network", "rm", "shared_public")


def test_a_start_first_updates_old_tasks_stop_for_a_rolling_update(cluster) -> None:
    sb, nodes = cluster
    with service(sb, nodes, "sf", *FAST_STOP, "--replicas", "2", "--env", "V=1", IMAGE, *SLEEP):
        old = {t["id"] for t in kit.running_tasks(nodes[0], "sf", 2)}
        updated = cli(
            sb, "n2", "service", "update", "--update-order", "start-first", "--env-add", "V=2", "sf"
        )
        assert updated.returncode == 0, updated.stderr.decode()
        reasons = {t["id"]: t["message"] for t in kit.all_tasks(nodes[0], "sf") if t["id"] in old}
        assert set(reasons.values()) == {"rolling update"}, reasons  # main: superseded
