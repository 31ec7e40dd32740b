"""Parse one kernel log line holding an XID (``NVRM: Xid (PCI:...): N, ...``).

Layouts seen in the field (any prefix -- dmesg time, journal fields -- is skipped):

- ``NVRM: Xid (PCI:0000:3b:00): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus.``
  (r535+; older drivers print ``pid=1234, <message>`` or no pid);
- NVLink5 (144-150): ``NVRM: Xid (PCI:0018:01:00): 149, NETIR_LINK_EVT  Fatal   XC0 i0 Link 17
  (0x025625c6 0x00000000 0x00000000 0x00000000 0x00000000 0x00000000)``: subcomponent,
  fatal or not, cross-contain, injected, link, then IntrInfo, ErrorStatus and debug words;
- XID 154: ``... 154, GPU recovery action changed from 0x0 (None) to 0x1 (GPU Reset Required)``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from dcops.errors import InputError

_XID = re.compile(r"Xid \((?P<pci>[^)]*)\):\s*(?P<code>\d+)(?:,\s*(?P<rest>.*))?$")
_PID = re.compile(r"^pid=(?P<pid>[^,]*),\s*")
_NAME = re.compile(r"^name=(?P<name>[^,]*),\s*")
_PCI = re.compile(
    r"(?:PCI:)?(?P<dom>[0-9a-fA-F]{4,8}):(?P<bus>[0-9a-fA-F]{2}):(?P<dev>[0-9a-fA-F]{2})"
)
_NVLINK5 = re.compile(
    r"^(?P<sub>[A-Za-z][A-Za-z0-9_]*)\s+(?P<sev>Fatal|Nonfatal|Non-fatal)?\s*"
    r"(?:XC(?P<xc>\d+)\s*)?(?:i(?P<inj>\d+)\s*)?(?:Link\s+(?P<link>\d+)\s*)?"
    r"\((?P<regs>[^)]*)\)"
)


@dataclass(frozen=True)
class XidLine:
    """One XID line, split into what the driver printed."""

    code: int
    pci: str  # ``dddd:bb:dd`` lower case, or the text inside the parentheses
    message: str
    pid: str | None = None
    process: str | None = None
    subcomponent: str | None = None  # NVLink5
    fatal: bool | None = None  # NVLink5: the message says Fatal / Nonfatal
    link: int | None = None
    registers: tuple[int, ...] = field(default_factory=tuple)  # IntrInfo, ErrorStatus, debug...

    def to_dict(self) -> dict[str, Any]:
        return {
            "xid": self.code,
            "pci": self.pci,
            "message": self.message,
            "pid": self.pid,
            "process": self.process,
            "subcomponent": self.subcomponent,
            "fatal": self.fatal,
            "link": self.link,
            "registers": [f"0x{r:08x}" for r in self.registers],
        }


def normalize_pci(text: str) -> str:
    found = _PCI.search(text)
    if found is None:
        return text.strip()
    dom = found.group("dom").lower()[-4:]
    return f"{dom}:{found.group('bus').lower()}:{found.group('dev').lower()}"


def find_xid(text: str) -> XidLine | None:
    """The XID in ``text`` (a kernel log line), or None when it holds none."""
    match = _XID.search(text.strip())
    if match is None:
        return None
    rest = (match.group("rest") or "").strip()
    pid = name = None
    if (found := _PID.match(rest)) is not None:
        pid, rest = found.group("pid").strip("'\""), rest[found.end() :]
    if (found := _NAME.match(rest)) is not None:
        name, rest = found.group("name"), rest[found.end() :]
    code = int(match.group("code"))
    line = XidLine(code, normalize_pci(match.group("pci")), rest.strip(), pid, name)
    nv = _NVLINK5.match(rest.strip())
    if nv is None:
        return line
    try:
        regs = tuple(int(r, 16) for r in nv.group("regs").split())
    except ValueError:
        return line
    sev = nv.group("sev")
    return XidLine(
        code=code,
        pci=line.pci,
        message=line.message,
        pid=pid,
        process=name,
        subcomponent=nv.group("sub"),
        fatal=None if sev is None else sev == "Fatal",
        link=int(nv.group("link")) if nv.group("link") else None,
        registers=regs,
    )


def parse_xid_line(text: str) -> XidLine:
    """Like :func:`find_xid`, but a line without an XID is an input error."""
    found = find_xid(text)
    if found is None:
        shown = " ".join(text.split())[:120]
        raise InputError(f"not an XID line (expected 'NVRM: Xid (PCI:...): N, ...'): {shown!r}")
    return found
