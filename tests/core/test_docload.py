"""Bounded decoding: hostile documents are refused in milliseconds, as input errors."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from dcops.docload import DocumentError, flow_depth, load_json, load_yaml
from dcops.errors import InputError
from dcops.yamlfile import YamlFileError, load_located_text
from tests.cli.test_cli_core import dcops

LAUGHS = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{c}: &{c} [{','.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)
HOSTILE = {
    "billion-laughs": LAUGHS,
    "deep-flow": "x: " + "[" * 5000 + "]" * 5000,
    "deep-flow-unclosed": "{" * 20000,
    "deep-block": "".join(" " * i + "- \n" for i in range(0, 400)),
    "huge-int": "n: " + "9" * 5000,
    "non-string-key": "env: {1: x}",
    "unhashable-key": "? [1, 2]\n: x\n",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_yaml_is_an_input_error_and_fast(name: str) -> None:
    start = time.perf_counter()
    with pytest.raises(InputError):
        load_yaml(HOSTILE[name], source="doc", string_keys=True)
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("name", sorted(set(HOSTILE) - {"non-string-key"}))
def test_located_loader_refuses_the_same(name: str) -> None:
    start = time.perf_counter()
    with pytest.raises(YamlFileError):
        load_located_text(HOSTILE[name])
    assert time.perf_counter() - start < 1.0


def test_json_depth_and_big_ints() -> None:
    with pytest.raises(DocumentError, match="deeper"):
        load_json("[" * 100 + "]" * 100, source="b")
    with pytest.raises(DocumentError):
        load_json('{"n": ' + "9" * 5000 + "}", source="b")
    assert load_json(json.dumps({"a": [1, {"b": 2}]}), source="b") == {"a": [1, {"b": 2}]}


def test_ordinary_documents_still_load() -> None:
    doc = load_yaml("name: x\nscript: |\n  if [[ -f a ]]; then echo {}; fi\n", source="d")
    assert doc["name"] == "x"
    assert flow_depth("[[a]] {b} [") == 2


@pytest.mark.parametrize(
    "body",
    [
        HOSTILE["billion-laughs"],
        HOSTILE["deep-flow"],
        HOSTILE["huge-int"],
        "name: x\nresources: {nodes: 1.0, time_limit: 1h}\ncommand: [a]\n",
        "name: x\nresources: {memory: 1.0, time_limit: 1h}\ncommand: [a]\n",
        "name: x\nresources: {time_limit: 1h}\ncommand: [a]\nenv: {1: x}\n",
    ],
)
def test_cli_render_exits_2_not_3(tmp_path: Path, body: str) -> None:

    spec = tmp_path / "job.yaml"
    spec.write_text(body)
    tenant = tmp_path / "t.yaml"
    tenant.write_text(
        "name: acme\nslurm_account: a\nslurm_qos: q\nslurm_partitions: [p]\nunix_users: [u]\n"
        "k8s_namespace: tenant-acme\nk8s_local_queue: lq\ngpu_quota: 8\n"
        f"output_roots: [{tmp_path}]\n"
    )
    start = time.perf_counter()
    proc = dcops("jobs", "render", str(spec), "--tenant-file", str(tenant), "--backend", "slurm")
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1
    assert time.perf_counter() - start < 10


@pytest.mark.parametrize("char", ["\u0085", "\u0080", "\u009f", "\u2028", "\u2029"])
def test_raw_line_breaks_are_refused_with_their_line(char: str) -> None:
    text = f'a: 1\nb: "x{char}y"\n'
    with pytest.raises(DocumentError, match=rf"^doc:2: holds a raw U\+{ord(char):04X}"):
        load_yaml(text, source="doc")
    with pytest.raises(DocumentError, match=r"^doc:1: "):
        load_json(json.dumps({"b": f"x{char}y"}, ensure_ascii=False), source="doc")
    with pytest.raises(YamlFileError) as located:
        load_located_text(text)
    assert located.value.line == 2 and "U+" in located.value.what


def test_escaped_line_breaks_reach_the_fields_checks() -> None:
    """Only the raw character is refused; the escaped form is parsed (admission then
    refuses it in the field that holds it, naming the field)."""
    assert load_yaml('b: "x\\u0085y"', source="d") == {"b": "x\u0085y"}
    assert load_json('{"b": "x\\u2028y"}', source="d") == {"b": "x\u2028y"}
