"""Convert LANL's public failure data (LA-UR-05-7318) to dcops' failure CSV.

Usage: python convert_lanl.py LA-UR-05-7318-failure-data-1996-2005.csv SYSTEM... > out.csv

One output row per input row of the chosen systems: ``node`` is
``lanl-s<System>-n<nodenum, 3 digits>``, ``failed_at``/``repaired_at`` are
``Prob Started``/``Prob Fixed`` (the source gives local time without a zone;
written as-is, so dcops reads them as UTC: only durations matter here),
``cause`` is the category column that is filled (Facilities, Hardware, Human
Error, Network, Undetermined, Software) and its value.
"""

from __future__ import annotations

import csv
import sys
from datetime import datetime

CATEGORIES = ("Facilities", "Hardware", "Human Error", "Network", "Undetermined", "Software")


def main() -> None:
    path, systems = sys.argv[1], set(sys.argv[2:])
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(["node", "failed_at", "repaired_at", "cause"])
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row["System"] not in systems:
                continue
            start = datetime.strptime(row["Prob Started"], "%m/%d/%Y %H:%M")
            end = datetime.strptime(row["Prob Fixed"], "%m/%d/%Y %H:%M")
            cause = next((f"{c}: {row[c]}" for c in CATEGORIES if row[c].strip()), "")
            node = f"lanl-s{row['System']}-n{int(row['nodenum']):03d}"
            out.writerow([node, start.isoformat(), end.isoformat(), cause])


if __name__ == "__main__":
    main()
