"""README.md and docs/*.md point at what exists: each markdown link's file (and ``#anchor``: a heading of
that file), each repository path they name (``p2porch/raft/pacer.py``, ``raft/pacer.py`` for a module of
the package, ``bench/idle.py``, ``tests/...``), and each section they cite by title (``docs/traffic.md,
"Draining"``, ``README, "Configuration"``: a heading or a paragraph's bold lead of that file).

A renamed section, a moved module or a deleted file fails with the doc's ``FILE:LINE``. Paths the docs
name on purpose though they are not in the tree are listed in :data:`NOT_IN_TREE`, each with why.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TOP = {"p2porch", "docs", "bench", "tests", "scripts", "vagrant", ".ci"}
PACKAGES = {p.name for p in (ROOT / "p2porch").iterdir() if p.is_dir() and (p / "__init__.py").exists()}
#: paths a doc names that are not in the tree, on purpose
NOT_IN_TREE = {
    "raft/quiet_leader.py": "a branch's module, not landed (docs/performance.md says so)",
    "netoverlay/rtnl.py": "the branch h26join's module, not merged (docs/performance.md says so)",
    "tests/shell/test_raft_quiet_leader.py": "that branch's test",
    "tests/unit/raft/test_quiet_leader_poller.py": "that branch's test",
}
LINK = re.compile(r"\]\(([^)\s]+)\)")
PATH = re.compile(r"(?<![\w./-])((?:[\w.-]+/)+[\w.-]+\.(?:py|md|sh|yml|yaml|toml|json))(?![\w/])")
CITED = re.compile(r"(README|(?:docs/)?[\w-]+\.md)`?\)?,?\s+[\"*]([^\"*]+)[\"*]")


def slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def headings(path: Path) -> list[str]:
    return [re.sub(r"^#+\s*", "", line) for line in path.read_text().splitlines() if line.startswith("#")]


def lines(path: Path) -> Iterator[tuple[str, str]]:
    for number, line in enumerate(path.read_text().splitlines(), 1):
        yield f"{path.relative_to(ROOT)}:{number}", line


def test_links_reach_a_file_and_its_heading() -> None:
    wrong = []
    for doc in DOCS:
        for where, line in lines(doc):
            for target in LINK.findall(line):
                if target.startswith(("http://", "https://", "mailto:")):
                    continue
                file, _, anchor = target.partition("#")
                path = (doc.parent / file) if file else doc
                if not path.exists():
                    wrong.append(f"{where}: {target}: no such file")
                elif anchor and anchor not in {slug(h) for h in headings(path)}:
                    wrong.append(f"{where}: {target}: {path.name} has no heading #{anchor}")
    assert not wrong, "\n".join(wrong)


def named_paths() -> Iterator[tuple[str, str, list[Path]]]:
    """(FILE:LINE, path as written, where it may be) for each repository path a doc names."""
    for doc in DOCS:
        for where, line in lines(doc):
            for written in PATH.findall(line):
                if re.search(r"(^|/)[A-Z]{2,}", written):
                    continue  # `bench/NAME.py`: a placeholder
                first = written.split("/")[0]
                if first in TOP:
                    yield where, written, [ROOT / written]
                elif first in PACKAGES:  # `raft/pacer.py`: a module of the package
                    yield where, written, [ROOT / "p2porch" / written, ROOT / "p2porch" / "testing" / written]


def test_named_paths_exist() -> None:
    found = list(named_paths())
    assert any(written == "p2porch/sandbox/pacing.py" for _, written, _ in found)  # the extraction works
    wrong = [
        f"{where}: {written}: no such file"
        for where, written, places in found
        if written not in NOT_IN_TREE and not any(place.exists() for place in places)
    ]
    assert not wrong, "\n".join(wrong)


def test_not_in_tree_is_still_named_and_still_absent() -> None:
    named = {written for _, written, _ in named_paths()}
    assert set(NOT_IN_TREE) <= named
    assert not [p for p in NOT_IN_TREE if (ROOT / p).exists() or (ROOT / "p2porch" / p).exists()]


def cited_sections() -> Iterator[tuple[str, Path, str]]:
    for doc in DOCS:
        for where, line in lines(doc):
            for file, title in CITED.findall(line):
                path = ROOT / ("README.md" if file == "README" else file if "/" in file else f"docs/{file}")
                if path.exists() and path.suffix == ".md":
                    yield where, path, title.strip()


def test_cited_sections_exist() -> None:
    cited = list(cited_sections())
    assert len(cited) > 20  # the extraction works
    wrong = []
    for where, path, title in cited:
        text = path.read_text()
        leads = re.findall(r"\*\*([^*]+)\*\*", text) + re.findall(r"(?<![*\w])\*([^*\s][^*]*)\*(?!\*)", text)
        if not any(title in h for h in headings(path)) and not any(lead.startswith(title) for lead in leads):
            wrong.append(f'{where}: {path.relative_to(ROOT)} has no section "{title}"')
    assert not wrong, "\n".join(wrong)


def test_architecture_names_every_package_and_module() -> None:
    """docs/architecture.md's graph (or the line beside it) names each package and top-level module of
    ``p2porch/``: a new one is placed in the graph when it lands."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    names = [f"{name}/" for name in sorted(PACKAGES - {"testing"})] + [
        path.name for path in sorted((ROOT / "p2porch").glob("*.py")) if not path.name.startswith("__")
    ]
    assert not [name for name in names if name not in text]
