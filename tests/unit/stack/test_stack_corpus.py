"""A corpus of Compose files mirroring real applications (tests/unit/stack/corpus/<app>/): every one
resolves and validates (``stack config`` / ``stack deploy`` locally) without an error, the way
``docker compose`` would read it from its directory (``.env`` beside it, ``docker-compose.override.yml``
merged)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from p2porch.model import ServiceSpec, parse_port
from p2porch.stack import ComposeError
from p2porch.stack.groups import member_name, namespace_targets
from p2porch.stack.source import stack_source

CORPUS = Path(__file__).parent / "corpus"
MAIN_FILES = (
    "compose.yaml",
    "docker-compose.yml",
    "docker-compose.yaml",
    "docker-stack.yml",
    "portainer-agent-stack.yml",
)
APPS = sorted(p.name for p in CORPUS.iterdir() if p.is_dir())


def compose_files(app: Path) -> list[str]:
    listed = app / "files.txt"  # several files in several directories, in their -c order
    if listed.exists():
        return [str(app / line) for line in listed.read_text().split()]
    main = next(app / name for name in MAIN_FILES if (app / name).exists())
    override = app / "docker-compose.override.yml"
    return [str(main)] + ([str(override)] if override.exists() else [])


def test_the_corpus_has_at_least_forty_applications():
    assert len(APPS) >= 40


@pytest.mark.parametrize("app", APPS)
def test_every_corpus_file_loads(app):
    files = compose_files(CORPUS / app)
    source = stack_source(files, environ={"HOME": "/home/user"})
    if Path(files[0]).name.startswith("refused-"):
        with pytest.raises(ComposeError) as info:
            source.load("corpus")
        assert all("not supported yet" in p.message for p in info.value.problems), info.value.message
        return
    definition = source.load("corpus")
    model_services = definition.model["services"]
    sidecars = {m["name"] for s in definition.services for m in s.spec.get("sidecars") or []}
    grouped = {  # `network_mode: service:X` runs in X's task (a task group): no service of its own
        name
        for name, conf in model_services.items()
        if str(conf.get("network_mode", "")).startswith("service:")
        # so does one sharing only X's pid/ipc namespaces when it can (stack/groups.plan_joins)
        or (namespace_targets(conf) and member_name(name) in sidecars)
    }
    assert sorted(s.short_name for s in definition.services) == sorted(set(model_services) - grouped)
    for service in definition.services:
        assert ServiceSpec.from_dict(service.spec).to_dict() == service.spec
        assert service.spec["image"]
    assert yaml.safe_dump(dict(definition.model))  # what `stack config` prints


def test_corpus_details_that_matter():
    """A few mappings checked on the corpus itself (not only "it loads")."""
    django = stack_source(compose_files(CORPUS / "django-celery"), environ={}).load("shop")
    by_short = {s.short_name: s for s in django.services}
    assert [s.short_name for s in django.services][:2] == ["db", "cache"]  # dependencies first
    assert by_short["web"].spec["env"]["SECRET_KEY"] == "s3cr3t$notinterpolated"  # single quotes are literal
    assert by_short["migrate"].spec["restart"] == {
        **by_short["migrate"].spec["restart"],
        "condition": "on-failure",
        "max_attempts": 5,
    }
    assert by_short["db"].spec["container"]["shm_size_bytes"] == 128 * 1024**2
    override = stack_source(compose_files(CORPUS / "override-pair"), environ={}).load("op")
    web = {s.short_name: s for s in override.services}["web"].spec
    assert web["image"] == "example/web:dev" and web["env"]["LOG_LEVEL"] == "debug"
    assert [p["published"] for p in web["publish"]] == [8081]
    swarm = stack_source(compose_files(CORPUS / "swarm-full"), environ={}).load("sw")
    api = {s.short_name: s for s in swarm.services}["api"].spec
    assert api["constraints"] == ["node.role==replica", "node.labels.zone!=edge"]
    assert api["update"]["max_failure_ratio"] == 0.1 and api["endpoint_mode"] == "dnsrr"
    assert not any("ports mode" in w for w in swarm.warnings)  # ingress is honoured (routing mesh)
    proxy = {s.short_name: s for s in swarm.services}["proxy"].spec
    modes = [(p.published, p.mode) for p in map(parse_port, proxy["publish"])]
    assert modes == [(80, "ingress"), (443, "ingress")]


@pytest.mark.parametrize("app", [a for a in APPS if not a.startswith("refused-")])
def test_every_corpus_service_is_on_networks_the_stack_creates_or_attaches(app):
    """Networks are honoured, not flattened: each service's networks are the stack's (namespaced) ones."""
    definition = stack_source(compose_files(CORPUS / app), environ={"HOME": "/home/user"}).load("corpus")
    declared = {n.name: n for n in definition.networks}
    for service in definition.services:
        targets = [n["target"] for n in service.spec["networks"]]
        assert targets, service.short_name
        assert set(targets) <= set(declared) or targets == ["host"], (service.short_name, targets)
    named = {key: (conf or {}).get("name") for key, conf in (definition.model.get("networks") or {}).items()}
    for net in definition.networks:  # namespaced, unless the file names it (`proxy: {name: proxy}`)
        namespaced = net.name.startswith("corpus_") or net.key != net.name
        assert net.external or namespaced or named[net.key] == net.name
    assert not any("shares one cluster network" in w for w in definition.warnings)


def test_corpus_tiers_are_separate_networks():
    """The voting app's tiers: vote and redis on frontend, db and result on backend, the worker on both."""
    vote = stack_source(compose_files(CORPUS / "voting-app"), environ={}).load("vote")
    on = {s.short_name: sorted(n["target"] for n in s.spec["networks"]) for s in vote.services}
    assert on == {
        "redis": ["vote_frontend"],
        "db": ["vote_backend"],
        "vote": ["vote_frontend"],
        "result": ["vote_backend"],
        "worker": ["vote_backend", "vote_frontend"],
    }
    assert sorted(n.name for n in vote.networks) == ["vote_backend", "vote_frontend"]
    traefik = stack_source(compose_files(CORPUS / "traefik-swarm"), environ={}).load("edge")
    public = {n.key: n for n in traefik.networks}["traefik-public"]
    assert public.external and public.name == "traefik-public"  # attached to, never created or removed
