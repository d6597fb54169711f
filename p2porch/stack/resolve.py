"""Compose files -> one resolved Compose model: parse, interpolate, paths, extends, merge, profiles (pure).

Owns the order the Compose specification gives: each file is parsed and interpolated on its own, its
relative paths (``env_file``, bind sources, ``extends.file``) are made absolute against its directory and
its ``extends`` are resolved, then the files are merged in order (``merge.py``) and services whose
``profiles`` are not active are dropped. Problems are collected, not raised. Other files (``extends:
file:``) are read through the caller's ``read_file``; this module does no I/O itself.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from .casts import cast_types
from .interpolate import interpolate_collect, parse_dotenv
from .merge import merge_documents, merge_service, normalize_service, strip_markers
from .ports_volumes import windows_path
from .problems import Problems
from .yamlsafe import Override, parse_yaml_documents

#: reads a file named in a Compose file (absolute when the Compose file's directory is known) -> text;
#: raises OSError or KeyError when it cannot, ConfigError for an encoding problem
ReadFile = Callable[[str], str]

MAX_EXTENDS_DEPTH = 32


@dataclass(frozen=True)
class ComposeFile:
    """One Compose file: the name shown in messages, its text, and its absolute directory ("" = unknown)."""

    name: str
    text: str
    base_dir: str = ""


def _abs_path(path: str, base_dir: str, environ: Mapping[str, str]) -> str:
    if windows_path(path):  # not relative: refused where it is used, as written
        return path
    if path.startswith("~") and environ.get("HOME"):
        path = environ["HOME"] + path[1:]
    if base_dir and not path.startswith("/"):
        return posixpath.normpath(posixpath.join(base_dir, path))
    return path


def _is_local_path(source: str) -> bool:
    return source.startswith(("/", ".", "~"))


def _volume_paths(item: Any, base_dir: str, environ: Mapping[str, str]) -> Any:
    if isinstance(item, str):
        parts = item.split(":")
        if len(parts) >= 2 and _is_local_path(parts[0]):
            return ":".join([_abs_path(parts[0], base_dir, environ), *parts[1:]])
        return item
    if isinstance(item, Mapping) and item.get("type") == "bind" and isinstance(item.get("source"), str):
        return {**item, "source": _abs_path(item["source"], base_dir, environ)}
    return item


def _env_file_paths(value: Any, base_dir: str, environ: Mapping[str, str]) -> Any:
    entries = [value] if isinstance(value, str) else value
    if not isinstance(entries, list):
        return value
    out: list[Any] = []
    for entry in entries:
        if isinstance(entry, str):
            out.append(_abs_path(entry, base_dir, environ))
        elif isinstance(entry, Mapping) and isinstance(entry.get("path"), str):
            out.append({**entry, "path": _abs_path(entry["path"], base_dir, environ)})
        else:
            out.append(entry)
    return out


def _service_paths(conf: Any, base_dir: str, environ: Mapping[str, str]) -> Any:
    """Relative paths of one service made absolute against its file's directory."""
    if not isinstance(conf, Mapping) or (not base_dir and "HOME" not in environ):
        return conf
    out = dict(conf)
    for key in ("env_file", "label_file"):
        if key in out:
            out[key] = _env_file_paths(out[key], base_dir, environ)
    volumes = out.get("volumes")
    if isinstance(volumes, list):
        out["volumes"] = [_volume_paths(v, base_dir, environ) for v in volumes]
    extends = out.get("extends")
    if isinstance(extends, Mapping) and isinstance(extends.get("file"), str):
        out["extends"] = {**extends, "file": _abs_path(extends["file"], base_dir, environ)}
    return out


def _top_file_paths(doc: dict[str, Any], base_dir: str, environ: Mapping[str, str]) -> None:
    for section in ("secrets", "configs"):
        entries = doc.get(section)
        if isinstance(entries, Mapping):
            doc[section] = {
                name: {**conf, "file": _abs_path(conf["file"], base_dir, environ)}
                if isinstance(conf, Mapping) and isinstance(conf.get("file"), str)
                else conf
                for name, conf in entries.items()
            }


class _Resolver:
    """Loads files (cached by path) and resolves ``extends`` chains; records problems."""

    def __init__(self, environ: Mapping[str, str], read_file: ReadFile | None, problems: Problems) -> None:
        self.environ = environ
        self.read_file = read_file
        self.problems = problems
        self.docs: dict[str, dict[str, Any] | None] = {}

    def _on_unset(self, name: str) -> None:
        self.problems.warn(f"variable {name} is not set: a blank string is used")

    def load(self, file: ComposeFile) -> dict[str, Any] | None:
        """One file parsed, interpolated, with absolute paths; None when it cannot be parsed."""
        try:
            docs = parse_yaml_documents(file.text, file.name)
        except ConfigError as exc:
            self.problems.add(exc)
            return None
        if not all(isinstance(d, Mapping) for d in docs):
            self.problems.error("compose", f"{file.name}: expected a mapping at the top level")
            return None
        doc: Mapping[str, Any] = docs[0] if len(docs) == 1 else {}
        if len(docs) > 1:  # several documents in one file: merged in order, like several files
            for each in docs:
                if any(not isinstance(key, str) for key in each):
                    doc = each
                    break
                doc = merge_documents(doc, each)
        for key in doc:
            if not isinstance(key, str):
                self.problems.error("compose", f"{file.name}: top-level key {key!r} must be a string")
                return None
        errors: list[ConfigError] = []
        result = interpolate_collect(dict(doc), self.environ, "", errors, self._on_unset)
        for error in errors:
            self.problems.add(error)
        result = cast_types(result)
        services = result.get("services")
        if isinstance(services, Mapping):
            result["services"] = {
                name: _service_paths(conf, file.base_dir, self.environ) for name, conf in services.items()
            }
        _top_file_paths(result, file.base_dir, self.environ)
        return dict(result)

    def _other(self, path: str, where: str, base_dir: str | None = None) -> dict[str, Any] | None:
        """The file at ``path``, its relative paths resolved against ``base_dir`` (default: its own
        directory; an ``include`` entry's ``project_directory``)."""
        key = path if base_dir is None else f"{path}\0{base_dir}"
        if key not in self.docs:
            self.docs[key] = None
            if self.read_file is None:
                self.problems.error(where, f"cannot read {path!r}: no files were given with the Compose file")
                return None
            try:
                text = self.read_file(path)
            except ConfigError as exc:
                self.problems.error(where, exc.message)
                return None
            except (OSError, KeyError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not found"
                self.problems.error(where, f"cannot read {path!r}: {reason}")
                return None
            self.docs[key] = self.load(ComposeFile(path, text, base_dir or posixpath.dirname(path)))
        return self.docs[key]

    def extends(self, doc: dict[str, Any], file_key: str) -> None:
        """Resolve every ``extends`` of ``doc``'s services in place (``doc`` is this resolver's copy)."""
        services = doc.get("services")
        if not isinstance(services, Mapping):
            return
        resolved = {name: self._service(doc, file_key, name, []) for name in services}
        doc["services"] = resolved

    def _service(self, doc: Mapping[str, Any], file_key: str, name: str, chain: list[tuple[str, str]]) -> Any:
        conf = doc["services"][name]
        path = f"services.{name}.extends"
        if not isinstance(conf, Mapping) or "extends" not in conf:
            return conf
        if (file_key, name) in chain or len(chain) > MAX_EXTENDS_DEPTH:
            self.problems.error(
                path, "circular extends: " + " -> ".join(n for _, n in [*chain, (file_key, name)])
            )
            return {k: v for k, v in conf.items() if k != "extends"}
        spec = conf["extends"]
        if isinstance(spec, str):
            spec = {"service": spec}
        if not isinstance(spec, Mapping) or not isinstance(spec.get("service"), str):
            self.problems.error(path, "expected a service name or {service: NAME, file: PATH}")
            return {k: v for k, v in conf.items() if k != "extends"}
        unknown = [k for k in spec if k not in ("service", "file")]
        if unknown:
            self.problems.error(f"{path}.{unknown[0]}", "unknown key (service and file are allowed)")
        base_doc: Mapping[str, Any] | None = doc
        base_key = file_key
        if isinstance(spec.get("file"), str):
            base_key = spec["file"]
            base_doc = self._other(base_key, f"{path}.file")
        own = {k: v for k, v in conf.items() if k != "extends"}
        if base_doc is None:
            return own
        base_services = base_doc.get("services")
        target = spec["service"]
        if not isinstance(base_services, Mapping) or target not in base_services:
            where = f" in {base_key}" if base_key != file_key else ""
            self.problems.error(f"{path}.service", f"service {target!r} not found{where}")
            return own
        base = self._service(base_doc, base_key, target, [*chain, (file_key, name)])
        if not isinstance(base, Mapping):
            return own
        base = {k: v for k, v in base.items() if k != "extends"}
        return merge_service(normalize_service(base), normalize_service(own))


def _active(conf: Any, profiles: Sequence[str]) -> bool:
    wanted = conf.get("profiles") if isinstance(conf, Mapping) else None
    if isinstance(wanted, Override):
        wanted = wanted.value
    if not wanted:
        return True
    if not isinstance(wanted, list):
        return True  # reported by validation
    # no profile given: the empty profile is the active one (``COMPOSE_PROFILES`` unset splits to [""] in
    # docker compose), so ``profiles: ["", dev]`` runs by default and not under --profile other
    active = profiles or ("",)
    return "*" in active or any(p in active for p in wanted)


def _include_resolver(
    resolver: _Resolver, entry: Any, path: str, file_key: str, where: str
) -> tuple[_Resolver, str | None]:
    """The resolver of one included file and its ``project_directory`` when the entry gives one (the
    directory its relative paths resolve against; default: the included file's own). Its variables are
    the including project's, then those of the entry's ``env_file`` (default: the ``.env`` of its project
    directory) for the variables the project does not set, as compose-go does."""
    conf = entry if isinstance(entry, Mapping) else {}
    here = posixpath.dirname(file_key)
    project = conf.get("project_directory")
    project_dir = (
        _abs_path(project, here, resolver.environ) if isinstance(project, str) else posixpath.dirname(path)
    )
    given = conf.get("env_file")
    names = [given] if isinstance(given, str) else given if isinstance(given, list) else None
    files = (
        [(_abs_path(n, here, resolver.environ), True) for n in names if isinstance(n, str)]
        if names is not None
        else [(posixpath.join(project_dir, ".env"), False)]
    )
    extra: dict[str, str] = {}
    for env_path, required in files:
        try:
            if resolver.read_file is None:
                raise FileNotFoundError(env_path)
            extra.update(parse_dotenv(resolver.read_file(env_path), env_path, {**extra, **resolver.environ}))
        except ConfigError as exc:
            resolver.problems.error(f"{where}.env_file", exc.message)
        except (OSError, KeyError):
            if required:
                resolver.problems.error(f"{where}.env_file", f"cannot read {env_path!r}")
    given_dir = project_dir if isinstance(project, str) else None
    if not extra:
        return resolver, given_dir
    return _Resolver({**extra, **resolver.environ}, resolver.read_file, resolver.problems), given_dir


def _include(
    resolver: _Resolver, doc: dict[str, Any], file_key: str, chain: tuple[str, ...]
) -> dict[str, Any]:
    """``include:`` entries (paths or ``{path: ...}``) loaded and merged under ``doc``. ``file_key``'s
    directory is where the entries' relative paths resolve (an including entry's ``project_directory``,
    as Compose's loader works there); ``chain`` holds the files being included (normalised): a cycle
    is refused."""
    entries = doc.pop("include", None)
    if entries is None:
        return doc
    if not isinstance(entries, list):
        resolver.problems.error("include", "expected a list of files")
        return doc
    merged: dict[str, Any] = {}
    for i, entry in enumerate(entries):
        where = f"include[{i}]"
        paths = entry.get("path") if isinstance(entry, Mapping) else entry
        if isinstance(entry, Mapping) and set(entry) - {"path", "env_file", "project_directory"}:
            resolver.problems.error(where, "unknown key (path, env_file and project_directory are allowed)")
        for path in [paths] if isinstance(paths, str) else paths if isinstance(paths, list) else [None]:
            if not isinstance(path, str):
                resolver.problems.error(where, "expected a file path")
                continue
            path = _abs_path(path, posixpath.dirname(file_key), resolver.environ)
            if posixpath.normpath(path) in chain:
                resolver.problems.error(where, "include cycle detected: " + " -> ".join([*chain, path]))
                continue
            child, project_dir = _include_resolver(resolver, entry, path, file_key, where)
            other = child._other(path, where, project_dir)
            if other is not None:
                other = dict(other)
                child.extends(other, path)
                inner_key = posixpath.join(project_dir, posixpath.basename(path)) if project_dir else path
                merged = merge_documents(
                    merged, _include(child, other, inner_key, (*chain, posixpath.normpath(path)))
                )
    return merge_documents(merged, doc) if merged else doc


def resolve_model(
    files: Sequence[ComposeFile],
    environ: Mapping[str, str],
    read_file: ReadFile | None,
    problems: Problems,
    profiles: Sequence[str] = (),
) -> tuple[dict[str, Any], list[str]]:
    """The merged, interpolated model of ``files`` without the services of inactive profiles (returned
    second); problems are recorded."""
    resolver = _Resolver(environ, read_file, problems)
    model: dict[str, Any] = {}
    # every file's relative paths are the project directory's, the first file's (Compose's "all paths
    # in the files are relative to the first configuration file specified with -f"; Swarm's loader too)
    project_dir = files[0].base_dir if files else ""
    for file in files:
        doc = resolver.load(ComposeFile(file.name, file.text, project_dir))
        if doc is None:
            continue
        key = posixpath.join(file.base_dir, posixpath.basename(file.name)) if file.base_dir else file.name
        resolver.docs.setdefault(key, doc)
        resolver.extends(doc, key)
        # an include entry's path (and its env_file, project_directory) is the project directory's too
        doc = _include(
            resolver,
            doc,
            posixpath.join(project_dir, posixpath.basename(file.name)) if project_dir else key,
            (posixpath.normpath(key),),
        )
        model = merge_documents(model, doc)
    model = strip_markers(model)
    skipped: list[str] = []
    services = model.get("services")
    if isinstance(services, Mapping):
        skipped = sorted((n for n, c in services.items() if not _active(c, profiles)), key=str)
        if skipped:
            problems.warn(
                f"services {', '.join(map(str, skipped))} skipped: their profiles are not active "
                "(use --profile)"
            )
        model["services"] = {n: c for n, c in services.items() if n not in skipped}
    return model, skipped
