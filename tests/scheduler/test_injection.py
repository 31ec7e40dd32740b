"""sbatch directive and identity injection: refused at admission, and harmless by construction.

The construction (options on the sbatch command line, directive zone closed before any
tenant text) is checked here on the rendered script and the sbatch argv; the real Slurm
rig proves it in tests/integration/test_injection_slurm.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dcops.errors import InputError
from dcops.measurements import CommandResult
from dcops.remote.local import LocalRunner
from scheduler.backends.slurm_cli import SlurmCliBackend
from scheduler.guards import check_argv, check_env, check_script, normalize_abs
from scheduler.slurm.render import DIRECTIVES_END, SlurmSite, render_slurm
from scheduler.spec import spec_from_dict
from scheduler.tenants.contract import AdmittedJob, admit
from tests.scheduler.conftest import make_tenant, spec_doc

ROOT = Path("/srv/tenants/acme")
TENANT = make_tenant(ROOT)

SCRIPTS = [
    "#SLURM --account=globex --qos=high --gres=gpu:8 --nodes=16\nhostname",
    "# a note \\\n#SBATCH --account=globex\nhostname",
    "  #slurm -A globex\nhostname",
    "#PBS -q high\nhostname",
    "srun -lA globex hostname",
    "srun -l -Aglobex hostname",
    "srun --accou=globex hostname",
    "srun --qo high hostname",
    "sbatch --part=debug job.sh",
    'eval "srun -A globex hostname"',
    "bash -c 'sbatch --account=globex x.sh'",
    "env SBATCH_ACCOUNT=globex sbatch x.sh",
    "read SBATCH_ACCOUNT < /tmp/a; sbatch x.sh",
    "read -r SLURM_QOS",
    "printf -v SBATCH_PARTITION %s debug",
    "declare -x SBATCH_QOS=high",
    "export SBATCH_ACCOUNT",
    "SBATCH_ACCOUNT+=x sbatch x.sh",
    "echo start\u2028#SBATCH -A x",
    "echo\u0085hi",
    "echo \u009b31m",
    "echo hi\r\n",
]


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_injections_are_refused(script: str) -> None:
    with pytest.raises(InputError) as err:
        check_script(script)
    assert "\n" not in str(err.value)


ARGVS = [
    ["sbatch", "-A", "globex", "x.sh"],
    ["srun", "--accou=globex", "hostname"],
    ["bash", "-c", "srun -lA globex hostname"],
    ["env", "SBATCH_QOS=high", "sbatch", "x.sh"],
    ["python", "train.py\u0085#SBATCH -A x"],
    ["echo", "\u2028"],
    ["echo", "\u2029"],
    ["echo", "a\u009bb"],
    ["echo", "\u202eevil"],
]


@pytest.mark.parametrize("argv", ARGVS)
def test_argv_injections_are_refused(argv: list[str]) -> None:
    with pytest.raises(InputError):
        check_argv(argv)


@pytest.mark.parametrize("value", ["a\nb", "a\u0085b", "a\u2028b", "\x9b", "a\rb"])
def test_env_values_with_line_breaks_are_refused(value: str) -> None:
    with pytest.raises(InputError) as err:
        check_env({"OK": value})
    assert value not in str(err.value)  # names, never values, in the message


@pytest.mark.parametrize(
    "script",
    [
        "srun -l hostname",
        "srun --label python train.py --account-file x",
        'echo "job $SLURM_JOB_ID on ${SLURM_NODELIST}"',
        "grep -A 3 error log.txt",
        "srun --export=ALL,OMP_NUM_THREADS=8 python train.py",
        "python - <<'EOF'\nprint('#SBATCH is only a comment here')\nEOF",
    ],
)
def test_ordinary_scripts_pass(script: str) -> None:
    check_script(script)


def _job(script: str) -> AdmittedJob:
    """An admitted job *without* the scan (as if it had been fooled)."""
    doc = spec_doc(script=script)
    del doc["command"]
    del doc["image"]
    spec = spec_from_dict(doc)
    ok = admit(spec_from_dict({**doc, "script": "true"}), TENANT, 0, resolve=normalize_abs)
    return AdmittedJob(**{**ok.__dict__, "spec": spec})


def directive_zone(script: str) -> list[str]:
    """The lines sbatch reads as directives: from the top up to the first command line."""
    zone = []
    for line in script.split("\n"):
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            break
        zone.append(line)
    return zone


@pytest.mark.parametrize("script", SCRIPTS[:4])
def test_tenant_text_never_reaches_the_directive_zone(script: str) -> None:
    sub = render_slurm(_job(script), SlurmSite())
    zone = directive_zone(sub.script)
    assert "globex" not in "\n".join(zone) and "high" not in "\n".join(zone)
    body = sub.script.split("\n")
    assert body[len(zone)] == DIRECTIVES_END  # the bridge's own line closes the zone
    assert [z for z in zone if "--account=" in z] == [f"#SBATCH --account={TENANT.slurm_account}"]


class _Recorder(LocalRunner):
    """A local runner that starts nothing: records each argv, answers as sbatch --parsable."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[list[str]] = []

    def run(self, host: str, argv: Any, **kwargs: Any) -> CommandResult:
        self.calls.append(list(argv))
        return CommandResult(host, tuple(argv), 0, "4242\n", "", 0.0)


def test_slurm_cli_passes_every_option_on_the_sbatch_command_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runner = _Recorder()
    backend = SlurmCliBackend(runner=runner, site=SlurmSite(), switch_user="none")
    monkeypatch.setattr(backend.switch, "env", lambda user: {"USER": user})
    job = _job("#SLURM --account=globex\nhostname")
    backend.submit(job)
    argv = runner.calls[-1]
    assert argv[:2] == ["sbatch", "--parsable"]
    assert f"--account={TENANT.slurm_account}" in argv
    assert f"--qos={TENANT.slurm_qos}" in argv
    assert "--partition=gb200" in argv
    assert any(a.startswith("--output=/srv/tenants/acme/") for a in argv)
    assert "--gres=gpu:4" in argv


_LINES = st.one_of(
    st.sampled_from(["#SBATCH -A x", "#SLURM --qos=y", "# c \\", "", "  ", "#!/bin/sh", "\t#x"]),
    st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=20),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_LINES, min_size=1, max_size=8))
def test_directive_zone_is_the_bridges_alone_whatever_the_script(lines: list[str]) -> None:
    """By construction: whatever the tenant writes, sbatch's zone holds only our header."""
    job = _job("\n".join(lines) or "x")
    sub = render_slurm(job, SlurmSite())
    zone = directive_zone(sub.script)
    header = sub.script.split(DIRECTIVES_END, 1)[0].rstrip("\n").split("\n")
    assert zone == header
    assert [z for z in zone if z.startswith("#SBATCH")] == [
        "#SBATCH " + arg for arg in sub.sbatch_args
    ]
