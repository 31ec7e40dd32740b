"""Load YAML while remembering where each key and item came from (for error messages).

``load_located(path)`` returns the plain data and a :class:`Locations` index that
answers "which line holds ``racks[1].nodes``?", so validation errors can name the
file, the line and the key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PathKey = tuple[str | int, ...]


@dataclass
class Locations:
    """1-based line numbers of every mapping key and sequence item, by data path."""

    lines: dict[PathKey, int] = field(default_factory=dict)

    def line(self, path: PathKey) -> int | None:
        """The line of ``path``, or of its nearest located parent."""
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), None)


def format_path(path: PathKey) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _index(node: yaml.Node, path: PathKey, locs: Locations) -> None:
    locs.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node)
            child = (*path, str(key))
            locs.lines[child] = key_node.start_mark.line + 1
            _index(value_node, child, locs)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index(item, (*path, i), locs)


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys instead of keeping the last."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


class YamlFileError(Exception):
    """Raised by :func:`load_located`; callers wrap it in their own InputError subclass."""

    def __init__(self, what: str, line: int | None) -> None:
        super().__init__(what)
        self.what = what
        self.line = line


def load_located(path: Path) -> tuple[Any, Locations]:
    """Parse one YAML document from ``path`` with line locations."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise YamlFileError("no such file", None) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise YamlFileError(f"cannot read: {exc}", None) from exc
    return load_located_text(text)


def load_located_text(text: str) -> tuple[Any, Locations]:
    from dcops.docload import CharacterError, DocumentError, check_events, prescan

    try:
        prescan(text, source="document")
        check_events(text, source="document")
    except CharacterError as exc:
        raise YamlFileError(str(exc).removeprefix(f"document:{exc.line}: "), exc.line) from exc
    except DocumentError as exc:
        raise YamlFileError(str(exc).removeprefix("document: "), None) from exc
    except yaml.MarkedYAMLError:
        pass  # reported below, with its line
    try:
        node = yaml.compose(text, Loader=_UniqueKeyLoader)
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise YamlFileError(f"invalid YAML: {problem}", line) from exc
    except yaml.YAMLError as exc:
        raise YamlFileError(f"invalid YAML: {exc}", None) from exc
    except RecursionError as exc:
        raise YamlFileError("nested too deeply", None) from exc
    except ValueError as exc:  # an integer over Python's 4,300-digit limit ...
        raise YamlFileError(f"a value cannot be read: {str(exc)[:120]}", None) from exc
    except TypeError as exc:  # an unhashable mapping key
        raise YamlFileError(f"a mapping key cannot be used: {exc}", None) from exc
    locs = Locations()
    if node is not None:
        _index(node, (), locs)
    return data, locs
