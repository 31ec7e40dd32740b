"""``dcgmi diag -j`` JSON, both shapes (see :mod:`dcops.dcgm.diag`).

DCGM 4.x (dcgmi ``Diag.cpp`` HelperJsonBuildOutput; fixture from DCGM 4.2.3)::

    {"DCGM Diagnostic": {"test_categories": [{"category", "tests": [{"name",
        "results": [{"entity_group", "entity_group_id", "entity_id", "status",
                     "warnings": [{"warning", "error_id", "error_category",
                                   "error_severity"}], "info": [str]}],
        "test_summary": {"status", "warnings", "info"}}]}]},
     "entity_groups": [{"entity_group", "entity_group_id",
                        "entities": [{"entity_id", "device_id", "serial_num"}]}],
     "metadata": {"version", "Driver Version Detected"}}

DCGM 3.x and older (nvvs ``NvvsCommon.h`` format comment, dcgm JsonResult tests)::

    {"DCGM GPU Diagnostic": {"test_categories": [{"category", "tests": [{"name",
        "results": [{"gpu_ids": "0,1,2" | 0, "status", "warnings": [str | {...}],
                     "info": str | [str]}]}]}], "version", "runtime_error"?},
     "Driver Version Detected", "GPU Device IDs": [..], "GPU Device Serials": {..}}

Real 3.x output holds ``null`` entries between tests; they are skipped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from dcops.dcgm.types import (
    DcgmDiagResult,
    DcgmEntityResult,
    DcgmGpu,
    DcgmMessage,
    DcgmTest,
    DiagStatus,
    normalize_status,
    worst,
)

ROOT_4 = "DCGM Diagnostic"
ROOT_3 = "DCGM GPU Diagnostic"


def find_json_doc(text: str) -> dict[str, Any] | None:
    """The JSON object in ``text`` (dcgmi may print a line before it), or None."""
    start = text.find("{")
    end = text.rfind("}")
    if start < 0 or end <= start:
        return None
    try:
        doc = json.loads(text[start : end + 1])
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def is_dcgm_doc(doc: Mapping[str, Any]) -> bool:
    return isinstance(doc.get(ROOT_4), Mapping) or isinstance(doc.get(ROOT_3), Mapping)


def parse_json_doc(doc: Mapping[str, Any], source: str) -> DcgmDiagResult:
    v4 = isinstance(doc.get(ROOT_4), Mapping)
    body: Mapping[str, Any] = doc[ROOT_4] if v4 else doc[ROOT_3]
    raw_meta = doc.get("metadata")
    meta: Mapping[str, Any] = raw_meta if isinstance(raw_meta, Mapping) else {}
    warnings: list[str] = []
    tests: list[DcgmTest] = []
    categories = body.get("test_categories")
    if categories is not None and not isinstance(categories, list):
        warnings.append("test_categories is not a list")
        categories = []
    for cat in categories or []:
        if not isinstance(cat, Mapping):
            continue
        category = _str(cat.get("category"))
        for test in cat.get("tests") or []:
            if isinstance(test, Mapping):
                tests.append(_test(test, category, warnings))
    version = _first_str(meta.get("version"), body.get("version"), doc.get("version"))
    driver = _first_str(
        meta.get("Driver Version Detected"),
        doc.get("Driver Version Detected"),
        body.get("Driver Version Detected"),
    )
    runtime_error = _first_str(body.get("runtime_error"), doc.get("runtime_error"))
    if not tests and not runtime_error:
        warnings.append("the report holds no test result")
    for t in tests:
        unknown = sorted({r.raw_status for r in t.results if r.status == "error"})
        if t.status == "error" or unknown:
            shown = ", ".join(repr(u) for u in unknown) or repr(t.raw_status)
            warnings.append(f"test {t.name!r}: status not understood: {shown}")
    return DcgmDiagResult(
        source=source,
        format="json-4" if v4 else "json-3",
        tests=tuple(tests),
        dcgm_version=version,
        driver_version=driver,
        gpus=_gpus(doc, body),
        runtime_error=runtime_error,
        reported_overall=_first_str(doc.get("Overall Result"), body.get("Overall Result")),
        warnings=tuple(warnings),
    )


def _test(test: Mapping[str, Any], category: str | None, warnings: list[str]) -> DcgmTest:
    name = _str(test.get("name")) or "<unnamed>"
    results: list[DcgmEntityResult] = []
    for res in test.get("results") or []:
        if isinstance(res, Mapping):
            results.extend(_results(res))
    summary = test.get("test_summary")
    raw_status: str | None = None
    test_warnings: tuple[DcgmMessage, ...] = ()
    test_info: tuple[str, ...] = ()
    status: DiagStatus
    if isinstance(summary, Mapping):
        raw = summary.get("status")
        raw_status = raw if isinstance(raw, str) else None
        status = normalize_status(raw)
        test_warnings = _messages(summary.get("warnings"))
        test_info = _info(summary.get("info"))
        if results:
            # The summary never hides a worse per-GPU result.
            status = worst([status, *(r.status for r in results)]) or status
    elif results:
        status = worst([r.status for r in results]) or "error"
    else:
        status = "skip"
        warnings.append(f"test {name!r} has no result: taken as not run (skip)")
    return DcgmTest(
        name=name,
        category=category,
        status=status,
        raw_status=raw_status,
        results=tuple(results),
        warnings=test_warnings,
        info=test_info,
    )


def _results(res: Mapping[str, Any]) -> list[DcgmEntityResult]:
    raw = res.get("status")
    raw_status = raw if isinstance(raw, str) else repr(raw)
    status = normalize_status(raw)
    warnings = _messages(res.get("warnings"))
    info = _info(res.get("info"))
    group = _str(res.get("entity_group"))
    if "entity_id" in res:
        ids: list[int | None] = [_int(res.get("entity_id"))]
    else:
        ids = list(_gpu_ids(res.get("gpu_ids", res.get("gpu_id")))) or [None]
        group = group or ("GPU" if ids != [None] else None)
    return [
        DcgmEntityResult(
            status=status,
            raw_status=raw_status,
            gpu=gpu,
            entity_group=group,
            warnings=warnings,
            info=info,
        )
        for gpu in ids
    ]


def _gpu_ids(value: object) -> tuple[int, ...]:
    if isinstance(value, bool):
        return ()
    if isinstance(value, int):
        return (value,)
    if isinstance(value, str):
        return tuple(int(p) for p in value.replace(" ", "").split(",") if p.isdigit())
    if isinstance(value, list):
        return tuple(i for v in value for i in _gpu_ids(v))
    return ()


def _messages(value: object) -> tuple[DcgmMessage, ...]:
    if isinstance(value, str):
        return (DcgmMessage(value),)
    if not isinstance(value, list):
        return ()
    out: list[DcgmMessage] = []
    for item in value:
        if isinstance(item, str):
            out.append(DcgmMessage(item))
        elif isinstance(item, Mapping):
            text = _first_str(item.get("warning"), item.get("message"), item.get("msg")) or ""
            out.append(
                DcgmMessage(
                    text,
                    error_id=_int(item.get("error_id", item.get("error_code"))),
                    error_category=_int(item.get("error_category")),
                    error_severity=_int(item.get("error_severity")),
                )
            )
    return tuple(out)


def _info(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(v for v in value if isinstance(v, str))
    return ()


def _gpus(doc: Mapping[str, Any], body: Mapping[str, Any]) -> tuple[DcgmGpu, ...]:
    gpus: list[DcgmGpu] = []
    for group in doc.get("entity_groups") or []:
        if not isinstance(group, Mapping):
            continue
        kind = _str(group.get("entity_group")) or "GPU"
        for ent in group.get("entities") or []:
            if not isinstance(ent, Mapping):
                continue
            index = _int(ent.get("entity_id"))
            if index is not None:
                gpus.append(
                    DcgmGpu(index, _str(ent.get("device_id")), _str(ent.get("serial_num")), kind)
                )
    if gpus:
        return tuple(gpus)
    ids = doc.get("GPU Device IDs", body.get("GPU Device IDs"))
    serials = doc.get("GPU Device Serials", body.get("GPU Device Serials"))
    serial_map = serials if isinstance(serials, Mapping) else {}
    if isinstance(ids, list):
        for index, dev in enumerate(ids):
            gpus.append(DcgmGpu(index, _str(dev), _str(serial_map.get(str(index)))))
    return tuple(gpus)


def _str(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _first_str(*values: object) -> str | None:
    for value in values:
        text = _str(value)
        if text:
            return text
    return None


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None
