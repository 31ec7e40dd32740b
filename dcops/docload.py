"""Decode untrusted YAML/JSON text with its cost bounded before any parser runs.

Every file dcops reads from a user (job specs, site files, scenarios, profiles)
and every API body goes through here, so one hostile document costs
milliseconds, never minutes or gigabytes:

1. **size** -- the caller's byte limit;
2. **a linear pre-scan** of the raw text: a raw C1 control (U+0080-U+009F, NEL
   among them), line separator (U+2028) or paragraph separator (U+2029) is refused
   with its line (YAML folds a raw NEL inside a quoted string into a space, so a
   value would change silently; JSON keeps them, and readers of a rendered script
   split lines on them); flow nesting (``[``/``{``) deeper than :data:`MAX_DEPTH`
   is refused before a parser sees it (PyYAML's pure-Python scanner is
   super-linear on deep flow nesting);
3. **events** -- the document is parsed to events (libyaml's C parser when
   PyYAML has it) and refused if it holds an anchor or alias (no billion
   laughs), nests deeper than :data:`MAX_DEPTH` or holds more than
   :data:`MAX_NODES` nodes (the constructor is Python even with libyaml);
4. **construction** with the C ``CSafeLoader`` when available; integers over
   Python's 4,300-digit limit, non-string mapping keys (when asked) and
   recursion are input errors.

Every refusal is a :class:`DocumentError` (an :class:`~dcops.errors.InputError`,
exit code 2, HTTP 400) naming the source.
"""

from __future__ import annotations

import re
from itertools import accumulate
from typing import Any

from dcops.errors import InputError

MAX_DEPTH = 64
#: Nodes (scalars and collections) in one document: a job spec has hundreds; a
#: document of many thousands costs the (Python) constructor tens of milliseconds.
MAX_NODES = 20_000
MAX_BYTES = 4 * 1024 * 1024


class DocumentError(InputError):
    """A document refused before or while decoding it."""


class AliasError(DocumentError):
    """The document holds a YAML anchor or alias."""


class CharacterError(DocumentError):
    """The raw text holds a character some reader treats as a control or line break."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


#: Raw characters refused anywhere in a document (escaped forms such as ``"\u0085"``
#: reach the fields' own checks, which name the field): C1 controls, Zl, Zp.
_RAW_BREAKS = re.compile("[\x80-\x9f\u2028\u2029]")
_NAMES = {0x85: "NEL", 0x9B: "CSI", 0x2028: "LINE SEPARATOR", 0x2029: "PARAGRAPH SEPARATOR"}


def check_characters(text: str, *, source: str) -> None:
    """Refuse a raw C1 control, U+2028 or U+2029 (linear, C-speed), naming its line."""
    found = _RAW_BREAKS.search(text)
    if found is None:
        return
    code = ord(found.group())
    line = text.count("\n", 0, found.start()) + 1
    name = _NAMES.get(code, "C1 control")
    raise CharacterError(
        f"{source}:{line}: holds a raw U+{code:04X} ({name}), a character readers treat as "
        "a control or line break; remove it (or write it escaped where it is meant)",
        line,
    )


_STEPS = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")


def flow_depth(text: str) -> int:
    """The deepest run of ``[``/``{`` not yet closed (linear, C-speed; counts inside quotes
    too). A stray closer lowers the count: the event check after it catches what slips."""
    brackets = _NOT_BRACKETS.sub("", text)
    if not brackets:
        return 0
    return max(accumulate((_STEPS[ord(c)] for c in brackets), initial=0))


def prescan(text: str, *, source: str, max_depth: int = MAX_DEPTH) -> None:
    check_characters(text, source=source)
    if flow_depth(text) > max_depth:
        raise DocumentError(f"{source}: nested deeper than {max_depth} levels")


def _loaders() -> tuple[Any, Any]:
    import yaml

    if getattr(yaml, "__with_libyaml__", False):
        return yaml.CSafeLoader, yaml.CSafeLoader
    return yaml.SafeLoader, yaml.SafeLoader


def check_events(
    text: str, *, source: str, max_depth: int = MAX_DEPTH, max_nodes: int = MAX_NODES
) -> None:
    """Refuse anchors, aliases, deep nesting and too many nodes (one pass over parser events)."""
    import yaml

    parser, _ = _loaders()
    depth = 0
    for count, event in enumerate(yaml.parse(text, Loader=parser)):
        if count > max_nodes:
            raise DocumentError(f"{source}: more than {max_nodes} YAML nodes")
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise AliasError(f"{source}: YAML anchors and aliases are not accepted")
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > max_depth:
                raise DocumentError(f"{source}: nested deeper than {max_depth} levels")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _yaml_error(exc: Exception, source: str) -> DocumentError:
    mark = getattr(exc, "problem_mark", None)
    where = f"{source}:{mark.line + 1}" if mark is not None else source
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return DocumentError(f"{where}: not valid YAML/JSON: {problem}")


def _check_keys(node: object, source: str, path: str = "") -> None:
    stack: list[tuple[object, str]] = [(node, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if not isinstance(key, str):
                    raise DocumentError(
                        f"{source}: {where or '(top)'}: mapping key {key!r} is not a string "
                        "(quote it)"
                    )
                stack.append((value, f"{where}.{key}" if where else key))
        elif isinstance(item, list):
            stack.extend((v, f"{where}[{i}]") for i, v in enumerate(item))


def load_yaml(
    text: str,
    *,
    source: str,
    max_depth: int = MAX_DEPTH,
    string_keys: bool = False,
    multi: bool = False,
    loader: Any = None,
) -> Any:
    """One YAML (or JSON) document from ``text``, bounded as the module says.

    ``multi``: return the list of all documents. ``loader``: a SafeLoader
    subclass to construct with (e.g. one that refuses duplicate keys).
    """
    import yaml

    prescan(text, source=source, max_depth=max_depth)
    try:
        check_events(text, source=source, max_depth=max_depth)
        _, safe = _loaders()
        use = loader or safe
        docs = list(yaml.load_all(text, Loader=use)) if multi else yaml.load(text, Loader=use)  # noqa: S506
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, source) from exc
    except RecursionError as exc:
        raise DocumentError(f"{source}: nested too deeply") from exc
    except ValueError as exc:  # int() over Python's digit limit, bad timestamps ...
        raise DocumentError(f"{source}: a value cannot be read: {str(exc)[:120]}") from exc
    except TypeError as exc:  # unhashable keys ({[1]: x})
        raise DocumentError(f"{source}: a mapping key cannot be used: {exc}") from exc
    if string_keys:
        _check_keys(docs, source)
    return docs


def load_json(text: str, *, source: str, max_depth: int = MAX_DEPTH) -> Any:
    """One JSON document, with the same depth bound; big integers and NaN refused."""
    import json

    prescan(text, source=source, max_depth=max_depth)

    def no_constants(name: str) -> object:
        raise DocumentError(f"{source}: {name} is not valid JSON")

    try:
        return json.loads(text, parse_constant=no_constants)
    except RecursionError as exc:
        raise DocumentError(f"{source}: nested too deeply") from exc
    except ValueError as exc:
        raise DocumentError(f"{source}: not valid JSON: {str(exc)[:160]}") from exc
