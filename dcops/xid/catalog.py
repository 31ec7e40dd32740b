"""NVIDIA's Xid catalog as data: every XID, its action buckets and the products it applies to.

The files under ``dcops/xid/data/`` are the sheets of NVIDIA's ``Xid-Catalog.xlsx``
(linked from the "Xid Errors" page of the GPU deployment and management
documentation), extracted to CSV unchanged (``tests/data/xid/SOURCES.md``):

- ``xids.csv``: one row per XID: mnemonic, description, applies to A100 / H100 /
  B100 / GB200, the *immediate* bucket (what brings the system back into
  service) and the *investigatory* bucket (what finds the cause), the driver
  from which it comes with an XID 154, trigger conditions;
- ``buckets.csv``: what each bucket means;
- ``nvlink5_decode.csv``: the NVLink5 (XID 144-150) decode, read by
  :mod:`dcops.xid.nvlink5`.

Re-check per driver release: replace the CSVs with the newer sheets.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

PRODUCTS = ("A100", "H100", "B100", "GB200")


def bucket_name(text: str) -> str:
    """A bucket as the catalog writes it, on one line (``''`` when the cell is empty)."""
    return " ".join(text.split())


@dataclass(frozen=True)
class CatalogEntry:
    """One XID of the catalog."""

    code: int
    mnemonic: str
    description: str
    applies_to: tuple[str, ...]  # of PRODUCTS
    immediate: str  # bucket, '' when the catalog gives none
    investigatory: str
    xid154_linkage: str
    trigger: str

    @property
    def gb200(self) -> bool:
        return "GB200" in self.applies_to

    def to_dict(self) -> dict[str, Any]:
        return {
            "xid": self.code,
            "mnemonic": self.mnemonic,
            "description": self.description,
            "applies_to": list(self.applies_to),
            "gb200": self.gb200,
            "immediate": self.immediate,
            "investigatory": self.investigatory,
            "xid154_linkage": self.xid154_linkage,
            "trigger": self.trigger,
        }


def read_data(name: str) -> list[list[str]]:
    """The rows (header first) of one of the catalog's CSV files."""
    text = resources.files("dcops.xid").joinpath("data", name).read_text(encoding="utf-8")
    return list(csv.reader(io.StringIO(text)))


@cache
def catalog() -> dict[int, CatalogEntry]:
    """Every XID of the catalog, by code."""
    rows = read_data("xids.csv")
    out: dict[int, CatalogEntry] = {}
    for row in rows[1:]:
        if len(row) < 12 or not row[1].strip().isdigit():
            continue
        code = int(row[1])
        applies = tuple(p for p, flag in zip(PRODUCTS, row[4:8], strict=True) if flag == "YES")
        out[code] = CatalogEntry(
            code=code,
            mnemonic=" ".join(row[2].split()),
            description=" ".join(row[3].split()),
            applies_to=applies,
            immediate=bucket_name(row[8]),
            investigatory=bucket_name(row[9]),
            xid154_linkage=" ".join(row[10].split()),
            trigger=" ".join(row[11].split()),
        )
    return out


@cache
def buckets() -> dict[str, str]:
    """What each resolution bucket means, by bucket name."""
    out: dict[str, str] = {}
    for row in read_data("buckets.csv")[1:]:
        if len(row) >= 2 and row[0].strip():
            out[bucket_name(row[0])] = row[1].strip()
    return out


def entry(code: int) -> CatalogEntry | None:
    return catalog().get(code)
