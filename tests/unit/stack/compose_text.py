"""Loading a small hand-written Compose file in a unit test (no file system: a path read is an error)."""

from __future__ import annotations

import textwrap

import pytest

from p2porch.errors import ConfigError
from p2porch.model import ServiceSpec
from p2porch.stack import StackDefinition, load_stack
from p2porch.stack.yamlloader import load as load_yaml


def load(text: str, environ: dict[str, str] | None = None) -> StackDefinition:
    """The stack ``app`` of ``text`` (dedented), interpolated with ``environ`` only."""

    def read(path: str) -> str:
        raise FileNotFoundError(path)

    return load_stack("app", textwrap.dedent(text), read, base_dir="/srv/app", environ=environ or {})


def spec_of(definition: StackDefinition, short: str) -> dict:
    """Service ``short``'s spec, checked to survive a round trip through ``ServiceSpec``."""
    spec = {s.short_name: s.spec for s in definition.services}[short]
    assert ServiceSpec.from_dict(spec).to_dict() == spec
    return spec


def refusal(text: str, environ: dict[str, str] | None = None) -> str:
    """The message of the ConfigError loading ``text`` raises."""
    with pytest.raises(ConfigError) as info:
        load(text, environ)
    return str(info.value)


def assert_resolves(text: str, value: object) -> None:
    """The plain scalar ``text`` loads as ``value``, of its type (go-yaml's resolution)."""
    loaded = load_yaml(f"a: {text}\n", "f", False)["a"]
    assert loaded == value and type(loaded) is type(value), (text, loaded)
