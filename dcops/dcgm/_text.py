"""The ``dcgmi diag`` human table (see :mod:`dcops.dcgm.diag`).

Two generations share the frame ``| Diagnostic | Result |`` with category rows
(``+-----  Hardware  ----+---+``):

* DCGM 3.x and older: ``| GPU Memory | Pass - All |``, ``| SM Stress | Fail - GPU: 0 |``
  (more scopes on rows with an empty name), ``| Warning | ... |`` messages.
* DCGM 4.x: a ``Metadata`` section (``DCGM Version``, ``Driver Version Detected``),
  ``| software | Fail |`` then one ``|  | GPU0: Fail |`` row per entity and
  ``| Warning: GPU0 | ... |`` messages, wrapped every 45 characters onto rows with
  an empty name. An empty status is how dcgmi prints "not run".

Only the first diagnostic table is read; whatever follows it (``dcgmi nvlink``
examples, shell prompts) is ignored. A text with no table but an ``Error:`` line is
a runtime error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from dcops.dcgm.types import (
    DcgmDiagResult,
    DcgmEntityResult,
    DcgmMessage,
    DcgmTest,
    DiagStatus,
    normalize_status,
    worst,
)

_HEADER = re.compile(r"^\s*\|\s*Diagnostic\s*\|\s*Result\s*\|\s*$")
_CATEGORY = re.compile(r"^\s*[+|]-+\s+(\S(?:.*?\S)?)\s+-+[+|]")
_BORDER = re.compile(r"^\s*\+[-=+]+\+\s*$")
_ROW = re.compile(r"^\s*\|(.*)\|\s*$")
_MESSAGE_NAME = re.compile(r"^(?:(Warning|Info)(?::\s*)?)?(?:(GPU|CPU)\s*(\d+))?$")
_GPU_IN_TEXT = re.compile(r"^GPU\s*(\d+)\b")
_ENTITY = re.compile(r"^(GPU|CPU)\s*(\d+):\s*(.*)$")
_SCOPED = re.compile(r"^([A-Za-z][A-Za-z ]*?)\s+-\s+(All|(?:GPUs?|CPUs?):?\s*[\d,\s]+)$")
_RUNTIME_ERROR = re.compile(r"^\s*Error:\s*(.+?)\s*$")
_WRAP = 45  # dcgmi wraps messages every 45 characters (DATA_INFO_TAG_LEN)


@dataclass
class _Msg:
    parts: list[str]
    kind: str  # "Warning" | "Info"


@dataclass
class _Result:
    gpu: int | None
    group: str | None
    raw: str
    messages: list[_Msg] = field(default_factory=list)


@dataclass
class _Test:
    name: str
    category: str | None
    raw: str  # the whole cell, e.g. "Pass - All"
    word: str  # its status word, e.g. "Pass"
    results: list[_Result] = field(default_factory=list)
    messages: list[_Msg] = field(default_factory=list)


def _status(raw: str) -> DiagStatus:
    return "skip" if raw == "" else normalize_status(raw)


def _join(parts: list[str]) -> str:
    out = ""
    prev = ""
    for part in parts:
        if out:
            out += part if len(prev) == _WRAP else " " + part
        else:
            out = part
        prev = part
    return out


def _messages(msgs: list[_Msg], kind: str) -> tuple[str, ...]:
    return tuple(_join(m.parts) for m in msgs if m.kind == kind)


def _build_test(test: _Test) -> DcgmTest:
    results = tuple(
        DcgmEntityResult(
            status=_status(r.raw),
            raw_status=r.raw,
            gpu=r.gpu,
            entity_group=r.group,
            warnings=tuple(DcgmMessage(t) for t in _messages(r.messages, "Warning")),
            info=_messages(r.messages, "Info"),
        )
        for r in test.results
    )
    status = worst([_status(test.word), *(r.status for r in results)]) or "error"
    return DcgmTest(
        name=test.name,
        category=test.category,
        status=status,
        raw_status=test.raw,
        results=results,
        warnings=tuple(DcgmMessage(t) for t in _messages(test.messages, "Warning")),
        info=_messages(test.messages, "Info"),
    )


def _scopes(value: str) -> tuple[str, list[int | None], str | None] | None:
    """``Fail - GPUs: 0, 1`` -> ("Fail", [0, 1], "GPU"); ``Pass - All`` -> all GPUs (None)."""
    m = _SCOPED.match(value)
    if not m:
        return None
    scope = m.group(2)
    if scope == "All":
        return m.group(1), [None], None
    group = "CPU" if scope.startswith("CPU") else "GPU"
    ids: list[int | None] = [int(x) for x in re.findall(r"\d+", scope)]
    return m.group(1), ids, group


class _TableReader:
    """Reads the rows of one table, test by test, keeping the message being wrapped."""

    def __init__(self) -> None:
        self.warnings: list[str] = []
        self.tests: list[_Test] = []
        self.meta: dict[str, str] = {}
        self.category: str | None = None
        self.test: _Test | None = None
        self.msg: _Msg | None = None

    def read(self, lines: list[str], first_lineno: int) -> None:
        for lineno, line in enumerate(lines, start=first_lineno):
            if m := _CATEGORY.match(line):
                self.category, self.test, self.msg = m.group(1), None, None
                continue
            if _BORDER.match(line):
                if "=" in line:
                    continue
                return  # the table's closing border
            row = _ROW.match(line)
            if row is None:
                self.warnings.append(f"line {lineno}: not a table row: {line.strip()!r}")
                return
            name, _, value = row.group(1).partition("|")
            self.row(lineno, name.strip(), value.strip())

    def row(self, lineno: int, name: str, value: str) -> None:
        test = self.test
        if self.category == "Metadata":
            self.meta[name] = value
        elif name and (mm := _MESSAGE_NAME.match(name)):
            # "Warning", "Info", "Warning: GPU0" (4.x), "Warning" + "GPU 0 ..." (3.x)
            # and a bare "GPU 3" name row.
            if test is None:
                self.warnings.append(f"line {lineno}: message outside a test: {value!r}")
                return
            self.msg = _Msg([value], mm.group(1) or "Warning")
            index = mm.group(3)
            if index is None and (gm := _GPU_IN_TEXT.match(value)):
                index = gm.group(1)
            target = None
            if index is not None:
                gpu = int(index)
                target = next((r for r in reversed(test.results) if r.gpu == gpu), None)
            (target.messages if target is not None else test.messages).append(self.msg)
        elif name:
            self.test = test = _Test(name, self.category, value, value)
            self.tests.append(test)
            self.msg = None
            if (scoped := _scopes(value)) is not None:
                word, ids, group = scoped
                test.word = word
                test.results.extend(_Result(g, group, word) for g in ids)
        elif test is None:
            self.warnings.append(f"line {lineno}: row outside a test: {value!r}")
        elif em := _ENTITY.match(value):
            test.results.append(_Result(int(em.group(2)), em.group(1), em.group(3).strip()))
            self.msg = None
        elif (scoped := _scopes(value)) is not None:
            word, ids, group = scoped
            test.results.extend(_Result(g, group, word) for g in ids)
            self.msg = None
        elif self.msg is not None:
            self.msg.parts.append(value)
        elif value:
            self.warnings.append(f"line {lineno}: row not understood: {value!r}")


def parse_text(text: str, source: str) -> DcgmDiagResult | None:
    """The first diagnostic table in ``text``; None when there is neither table nor error."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if _HEADER.match(line)), None)
    if start is None:
        for line in lines:
            if m := _RUNTIME_ERROR.match(line):
                return DcgmDiagResult(
                    source=source, format="text", tests=(), runtime_error=m.group(1)
                )
        return None
    reader = _TableReader()
    reader.read(lines[start + 1 :], start + 2)
    warnings = reader.warnings
    if not reader.tests:
        warnings.append("the table holds no test result")
    built = tuple(_build_test(t) for t in reader.tests)
    for t in built:
        if t.status == "error" or any(r.status == "error" for r in t.results):
            warnings.append(f"test {t.name!r}: status not understood: {t.raw_status!r}")
    return DcgmDiagResult(
        source=source,
        format="text",
        tests=built,
        dcgm_version=reader.meta.get("DCGM Version") or None,
        driver_version=reader.meta.get("Driver Version Detected") or None,
        warnings=tuple(warnings),
    )
