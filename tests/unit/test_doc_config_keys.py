"""README's "Configuration" block names every key of p2porch's configuration, in its section, and no key
the configuration does not have (``p2porch/config.py``: a key renamed, added or removed fails here)."""

from __future__ import annotations

import dataclasses
import re
import typing
from pathlib import Path

from p2porch.config import Config

README = Path(__file__).resolve().parents[2] / "README.md"


def sections() -> dict[str, set[str]]:
    """Each section of :class:`Config` -> its keys."""
    hints = typing.get_type_hints(Config)
    return {f.name: {g.name for g in dataclasses.fields(hints[f.name])} for f in dataclasses.fields(Config)}


def readme_block() -> dict[str, str]:
    """The ```toml block after README's "### Configuration": each ``[section]`` -> the text of its lines."""
    text = README.read_text()
    start = text.index("```toml", text.index("### Configuration"))
    block = text[start + len("```toml") : text.index("```", start + 3)]
    found: dict[str, str] = {}
    section = ""
    for line in block.splitlines():
        if m := re.match(r"\[(\w+)\]", line):
            section = m[1]
        if section:
            found[section] = found.get(section, "") + " " + line
    return found


def test_the_block_has_every_section() -> None:
    assert set(readme_block()) == set(sections())


def test_every_key_is_named_in_its_section() -> None:
    block = readme_block()
    missing = [
        f"[{section}] {key}"
        for section, keys in sections().items()
        for key in keys
        if not re.search(rf"(?<![\w.]){key}(?![\w])", block.get(section, ""))
    ]
    assert not missing, "README's Configuration block lacks: " + ", ".join(missing)


def test_no_key_is_named_that_the_configuration_lacks() -> None:
    """A name given a value (``key = ...``) in a section's lines is one of that section's keys
    (``labels = { zone = "a" }``: the inner table's keys are a value)."""
    unknown = []
    for section, text in readme_block().items():
        outside_values = re.sub(r"\{[^}]*\}|\"[^\"]*\"|\([^)]*\)", "", text)
        for key in re.findall(r"(?<![\w.])([a-z][a-z0-9_]*)\s*=", outside_values):
            if key not in sections()[section]:
                unknown.append(f"[{section}] {key}")
    assert not unknown, "README names keys the configuration does not have: " + ", ".join(unknown)
