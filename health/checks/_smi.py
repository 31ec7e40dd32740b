"""``nvidia-smi -q`` in both forms (``-x`` XML and the text report) as flat per-GPU fields.

::

    log = parse_smi(stdout)        # SmiLog, or raises SmiParseError
    log.top["driver_version"]      # XML: tag names; text: lower-cased labels
    log.gpus[0].fields["remapped_rows/remapped_row_pending"]      # XML
    log.gpus[0].fields["remapped rows/pending"]                   # text

Keys are the element path under ``<gpu>`` joined by ``/`` (XML), or the section
labels lower-cased and joined by ``/`` (text, where sections nest by 4-space
indentation). Values are the stripped text. A key printed twice keeps its first
value. GPUs are in the order printed, which is nvidia-smi's index order.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field


class SmiParseError(ValueError):
    """The text is neither nvidia-smi XML nor an ``nvidia-smi -q`` report."""


@dataclass(frozen=True)
class SmiGpu:
    index: int
    bus_id: str
    fields: dict[str, str] = field(default_factory=dict)

    def get(self, *keys: str) -> str | None:
        for key in keys:
            if key in self.fields:
                return self.fields[key]
        return None


@dataclass(frozen=True)
class SmiLog:
    format: str  # "xml" | "text"
    top: dict[str, str]
    gpus: tuple[SmiGpu, ...]


def parse_smi(text: str) -> SmiLog:
    """Either form, told apart by its first characters."""
    head = text.lstrip()[:200]
    if head.startswith("<?xml") or head.startswith("<nvidia_smi_log"):
        return parse_smi_xml(text)
    return parse_smi_text(text)


def parse_smi_xml(text: str) -> SmiLog:
    if "<!ENTITY" in text:
        raise SmiParseError("nvidia-smi XML must not declare entities")
    try:
        root = ET.fromstring(text)  # noqa: S314 - no entities (checked above), no external DTD fetch
    except ET.ParseError as exc:
        raise SmiParseError(f"not well-formed XML: {exc}") from exc
    if root.tag != "nvidia_smi_log":
        raise SmiParseError(f"root element is <{root.tag}>, not <nvidia_smi_log>")
    top = {child.tag: (child.text or "").strip() for child in root if child.tag != "gpu"}
    gpus: list[SmiGpu] = []
    for index, element in enumerate(root.findall("gpu")):
        fields: dict[str, str] = {}
        _flatten(element, "", fields)
        gpus.append(SmiGpu(index, element.get("id", ""), fields))
    return SmiLog("xml", top, tuple(gpus))


def _flatten(element: ET.Element, prefix: str, out: dict[str, str]) -> None:
    for child in element:
        key = f"{prefix}{child.tag}"
        if len(child):
            _flatten(child, key + "/", out)
        else:
            out.setdefault(key, (child.text or "").strip())


_GPU_HEADER = re.compile(r"^GPU\s+([0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-7])\s*$")
_INDENT = 4


def parse_smi_text(text: str) -> SmiLog:
    """The ``nvidia-smi -q [-d ...]`` report: ``Label : value`` lines nested by indentation."""
    if "NVSMI LOG" not in text:
        raise SmiParseError("no '==============NVSMI LOG==============' banner")
    top: dict[str, str] = {}
    gpus: list[SmiGpu] = []
    current: dict[str, str] | None = None
    stack: list[str] = []
    for raw in text.splitlines():
        line = raw.rstrip()
        stripped = line.strip()
        if not stripped or stripped.startswith("====="):
            continue
        header = _GPU_HEADER.match(line)
        if header is not None:
            current = {}
            gpus.append(SmiGpu(len(gpus), header.group(1), current))
            stack = []
            continue
        depth = (len(line) - len(line.lstrip(" "))) // _INDENT
        label, sep, value = stripped.partition(":")
        if current is None:
            if sep:
                top.setdefault(label.strip().lower(), value.strip())
            continue
        level = max(depth - 1, 0)  # GPU fields start one level in
        del stack[level:]
        if sep and label.strip():
            key = "/".join([*stack, label.strip().lower()])
            current.setdefault(key, value.strip())
        else:
            stack.append(stripped.lower())
    if not gpus and not top:
        raise SmiParseError("no fields found")
    return SmiLog("text", top, tuple(gpus))
