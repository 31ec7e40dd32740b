"""Decode NVLink5 XIDs 144-150 (Blackwell, GB200) from their IntrInfo and ErrorStatus.

The message reads ``<xid>, <subcomponent> <Fatal|Nonfatal> XC<n> i<n> Link <n>
(<IntrInfo> <ErrorStatus> <debug0> .. <debug4>)``. NVIDIA's catalog sheet "XID
144-150 Decode" (``data/nvlink5_decode.csv``) gives, per subcomponent and error
status, a 32-bit mask for IntrInfo (``0``/``1`` must match, ``-`` is free),
the immediate and investigatory buckets and the severity. The masks differ
before driver R575 (layout ``v1``: the subcode in IntrInfo[9:5]) and from R575
(``v2``: IntrInfo[6:0]); the message does not say which driver wrote it, so
:func:`decode` picks the layout whose subcomponent name or masks match, or the
one the caller names. Some rows have a second mask ("action 2", a promotable
error): when it matches, its bucket replaces the first.

Worked example (``tests/data/xid/SOURCES.md``): XID 149 ``NETIR_LINK_EVT``,
IntrInfo ``0x025625c6``: bits [9:0] ``0111000110`` match the v1 mask, bits
[25:20] ``100101`` pick the row -> RESET_GPU, INVESTIGATE_PEER_DEVICE, Link Fatal.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from dcops.xid.catalog import bucket_name, read_data

NVLINK5_XIDS = range(144, 151)
LAYOUTS = ("v1", "v2")

#: Worst first: when several rows match, the first of these wins.
_IMMEDIATE_RANK = ("RESET_GPU", "XID_154_EVAL", "CONTACT_SUPPORT", "IGNORE")


@dataclass(frozen=True)
class DecodeRow:
    xid: int
    names: tuple[str, str]  # subcomponent name in (v1, v2) messages
    masks: tuple[str, str]  # (v1, v2)
    statuses: tuple[int, ...]  # () = any
    immediate: str
    action2_masks: tuple[str, str]
    action2: str
    investigatory: str
    severity: str
    hw_sw: str
    local_remote: str

    @property
    def subcomponent(self) -> str:
        return self.names[0] if self.names[0] == self.names[1] else "/".join(self.names)


@dataclass(frozen=True)
class Nvlink5Decode:
    """What one NVLink5 XID means, by the catalog."""

    xid: int
    subcomponent: str  # the catalog's name (``V1/V2`` where they differ)
    layout: str  # v1 (< R575) or v2 (>= R575)
    intr_info: int
    error_status: int
    immediate: str
    investigatory: str
    severity: str
    hw_sw: str
    local_remote: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "xid": self.xid,
            "subcomponent": self.subcomponent,
            "layout": self.layout,
            "intr_info": f"0x{self.intr_info:08x}",
            "error_status": f"0x{self.error_status:08x}",
            "immediate": self.immediate,
            "investigatory": self.investigatory,
            "severity": self.severity,
            "hw_sw": self.hw_sw,
            "local_remote": self.local_remote,
        }


def _names(text: str) -> tuple[str, str]:
    parts = [p.strip() for p in text.split("/")]
    return (parts[0], parts[1]) if len(parts) == 2 else (text.strip(), text.strip())


def _statuses(text: str) -> tuple[int, ...]:
    return tuple(int(p, 16) for p in text.split("/") if p.strip())


@cache
def rows() -> tuple[DecodeRow, ...]:
    """The decode sheet, one row per (subcomponent, error status)."""
    out: list[DecodeRow] = []
    for r in read_data("nvlink5_decode.csv")[1:]:
        if len(r) < 13 or not r[0].strip().isdigit():
            continue
        out.append(
            DecodeRow(
                xid=int(r[0]),
                names=_names(r[1]),
                masks=(r[2].strip(), r[3].strip()),
                statuses=_statuses(r[4]),
                immediate=bucket_name(r[5]),
                action2_masks=(r[6].strip(), r[7].strip()),
                action2=bucket_name(r[8]),
                investigatory=bucket_name(r[9]),
                severity=" ".join(r[10].split()),
                hw_sw=r[11].strip(),
                local_remote=" ".join(r[12].split()),
            )
        )
    return tuple(out)


def mask_matches(mask: str, value: int) -> bool:
    """Whether ``value`` matches a catalog mask (MSB first; ``-`` bits are free)."""
    if not mask:
        return False
    width = len(mask)
    for pos, char in enumerate(mask):
        if char == "-":
            continue
        bit = (value >> (width - 1 - pos)) & 1
        if char != str(bit):
            return False
    return True


def _status_ok(row: DecodeRow, status: int, exact: bool) -> bool:
    if not row.statuses:
        return True
    if exact:
        return status in row.statuses
    return any(s and status & s == s for s in row.statuses)


def _rank(bucket: str) -> int:
    return _IMMEDIATE_RANK.index(bucket) if bucket in _IMMEDIATE_RANK else 0


def decode(
    xid: int,
    intr_info: int,
    error_status: int,
    *,
    subcomponent: str | None = None,
    layout: str | None = None,
) -> Nvlink5Decode | None:
    """The catalog's reading of one NVLink5 XID, or None when no row matches.

    ``layout`` (``v1``/``v2``) forces the driver generation; otherwise the
    subcomponent name in the message picks it where the names differ, else the
    layout whose masks match.
    """
    if xid not in NVLINK5_XIDS:
        return None
    if layout is not None and layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    candidates = [r for r in rows() if r.xid == xid]
    layouts = [layout] if layout else list(LAYOUTS)
    if subcomponent and layout is None:
        named = [r for r in candidates if subcomponent in r.names]
        if named:
            candidates = named
            by_name = {LAYOUTS[i] for r in named for i in (0, 1) if r.names[i] == subcomponent}
            layouts = [x for x in LAYOUTS if x in by_name]
    for lay in layouts:
        i = LAYOUTS.index(lay)
        found = _match(candidates, i, intr_info, error_status)
        if found is not None:
            row, immediate = found
            return Nvlink5Decode(
                xid=xid,
                subcomponent=row.subcomponent,
                layout=lay,
                intr_info=intr_info,
                error_status=error_status,
                immediate=immediate,
                investigatory=row.investigatory,
                severity=row.severity,
                hw_sw=row.hw_sw,
                local_remote=row.local_remote,
            )
    return None


def _match(
    candidates: list[DecodeRow], i: int, intr_info: int, status: int
) -> tuple[DecodeRow, str] | None:
    for exact in (True, False):
        hits: list[tuple[DecodeRow, str]] = []
        for row in candidates:
            if not _status_ok(row, status, exact):
                continue
            if row.action2 and mask_matches(row.action2_masks[i], intr_info):
                hits.append((row, row.action2))
            elif mask_matches(row.masks[i], intr_info):
                hits.append((row, row.immediate))
        if hits:
            return min(hits, key=lambda hit: _rank(hit[1]))
    return None
