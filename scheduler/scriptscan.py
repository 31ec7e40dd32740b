"""Scan tenant shell text and argv for attempts to choose Slurm identity (pure, defence in depth).

This scan is **not** the boundary. The boundary is built by construction:

* the bridge passes every option it sets on the ``sbatch`` command line (or as
  slurmrestd/pyslurm job fields), which Slurm ranks above ``SBATCH_*``
  variables and ``#SBATCH`` directives;
* the rendered script ends the directive zone with an executable line before
  any tenant text, so nothing a tenant writes is ever read as a directive;
* the job runs as the tenant's Unix user, whose only Slurm association is the
  tenant's account, so a nested ``sbatch``/``srun`` that names another account
  or QOS is refused by Slurm itself.

What this module adds is a clear refusal, at admission, of text that visibly
*tries*: directive lines (``#SBATCH``, ``#SLURM``, ``#PBS`` ...) on any physical
line or continued line, identity options to ``srun``/``sbatch``/``salloc``
(long options and their getopt abbreviations such as ``--accou=``, short
options also inside clusters such as ``-lA x``), the same inside ``eval``,
``bash -c`` and ``env`` words, and writes to ``SLURM_*``/``SBATCH_*``/
``SALLOC_*``/``SRUN_*`` variables by assignment, ``export``/``declare``,
``read`` or ``printf -v``. Indirection (``$launcher -A x``, ``source file``,
text built at run time) cannot be decided by a scan: there the association
of the tenant's Unix user is what holds.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Sequence

_DIRECTIVE = re.compile(r"^\s*#\s*(SBATCH|SLURM|PBS|BSUB|FLUX|COBALT|MSUB|DW|BB)\b", re.IGNORECASE)
_LAUNCHERS = frozenset({"srun", "sbatch", "salloc"})
_SHELLS = frozenset({"bash", "sh", "dash", "zsh", "ksh"})
IDENTITY_LONG = (
    "account",
    "qos",
    "partition",
    "reservation",
    "uid",
    "gid",
    "wckey",
    "clusters",
    "cluster-constraint",
    "export-file",
    "chdir",
    "user",
    "get-user-env",
)
IDENTITY_SHORT = frozenset({"A", "M", "p", "q", "D"})
#: Short launcher flags that take no value (anything else takes one).
_SHORT_FLAGS = frozenset("luvQKXZWOHIhEks")
#: Long launcher flags that take no value; any other option is assumed to take one,
#: so that a value is never mistaken for the program (which would end the scan).
_LONG_FLAGS = frozenset(
    {
        "label",
        "unbuffered",
        "verbose",
        "quiet",
        "exclusive",
        "overlap",
        "exact",
        "pty",
        "kill-on-bad-exit",
        "disable-status",
        "no-allocate",
        "wait-all-nodes",
        "whole",
        "container-writable",
        "no-container-mount-home",
        "container-remap-root",
        "no-container-remap-root",
        "spread-job",
        "contiguous",
        "overcommit",
        "hold",
        "parsable",
        "test-only",
        "requeue",
        "no-requeue",
    }
)
_SCONTROL_IDENTITY = re.compile(
    r"(?i)\b(account|qos|partition|reservation|userid|uid|user|wckey|groupid)\s*="
)
_SACCTMGR_WRITE = re.compile(r"(?i)\b(add|create|modify|update|delete|remove)\b")
RESERVED_VAR = re.compile(r"(?:SLURM|SBATCH|SALLOC|SRUN)_[A-Za-z0-9_]*")
_RESERVED_ASSIGN = re.compile(r"(?<![$\w{!])((?:SLURM|SBATCH|SALLOC|SRUN)_[A-Za-z0-9_]*)\s*\+?=")
#: Builtins whose operands name variables they write.
_VAR_WRITERS = frozenset(
    {"export", "declare", "typeset", "local", "readonly", "read", "mapfile", "readarray"}
)
_MAX_NESTING = 4


def directive_line(line: str) -> str | None:
    """The directive keyword if ``line`` reads as a batch-system directive, else None."""
    match = _DIRECTIVE.match(line)
    return match.group(1).upper() if match else None


def physical_lines(script: str) -> list[str]:
    """Lines as bash and sbatch split them: on ``\\n`` only (never ``str.splitlines``)."""
    return script.split("\n")


def logical_lines(script: str) -> list[tuple[int, str]]:
    """Lines with backslash continuations joined, numbered from 1."""
    out: list[tuple[int, str]] = []
    buf, start = "", 0
    for number, line in enumerate(physical_lines(script), start=1):
        if not buf:
            start = number
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        out.append((start, buf + line))
        buf = ""
    if buf:
        out.append((start, buf))
    return out


_PLAIN_WORDS = re.compile(r"[;&|()]+|[^\s;&|()]+")
_NEEDS_LEXER = re.compile(r"[\"'\\#]")


def shell_words(line: str) -> list[str]:
    """Shell words, with ; & | ( ) as words of their own; comments dropped."""
    if _NEEDS_LEXER.search(line) is None:  # no quoting or comments: the same words, fast
        return _PLAIN_WORDS.findall(line)
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    try:
        return list(lexer)
    except ValueError:  # unbalanced quotes: fall back to whitespace
        return [w for w in re.split(r"[\s;&|()]+", line) if w]


#: Launcher options that are themselves prefixes of an identity option: getopt takes
#: the exact match, so they are not abbreviations (``--export`` is not ``--export-file``).
_EXACT_NOT_IDENTITY = frozenset({"export"})


def _long_identity(name: str) -> str | None:
    """``name`` (before ``=``) or a getopt abbreviation of it names an identity option."""
    if not name or name in _EXACT_NOT_IDENTITY:
        return None
    for option in IDENTITY_LONG:
        if option == name or option.startswith(name):
            return option
    return None


def launcher_identity_option(args: Sequence[str]) -> str | None:
    """Scan a launcher's own options (up to the program) for identity options."""
    skip_value = False
    for tok in args:
        if skip_value:
            skip_value = False
            continue
        if tok == "--" or not tok.startswith("-") or tok == "-":
            return None
        if tok.startswith("--"):
            name, has_value, _ = tok[2:].partition("=")
            found = _long_identity(name)
            if found is not None:
                shown = f"--{name}" if found == name else f"--{name} (abbreviates --{found})"
                return f"option {shown}"
            skip_value = not has_value and name not in _LONG_FLAGS
            continue
        cluster = tok[1:]
        for i, char in enumerate(cluster):
            if char in IDENTITY_SHORT:
                return f"option -{char}" + (f" (in {tok})" if len(cluster) > 1 else "")
            if char not in _SHORT_FLAGS:
                skip_value = i == len(cluster) - 1  # -pX carries its value; -p takes the next
                break
    return None


def _writes_reserved_var(cmd: str, args: Sequence[str]) -> str | None:
    if cmd == "printf":
        for i, tok in enumerate(args[:-1]):
            if tok == "-v" and RESERVED_VAR.fullmatch(args[i + 1]):
                return args[i + 1]
        return None
    if cmd in _VAR_WRITERS:
        for tok in args:
            if tok in (";", "&", "|", "&&", "||", "(", ")"):
                break
            name = tok.split("=", 1)[0]
            if RESERVED_VAR.fullmatch(name):
                return name
    return None


def identity_in_words(words: Sequence[str], depth: int = 0) -> str | None:
    """What in these shell words chooses Slurm identity or writes a Slurm variable."""
    for i, tok in enumerate(words):
        cmd = posixpath.basename(tok)
        rest = list(words[i + 1 :])
        if cmd in _LAUNCHERS:
            found = launcher_identity_option(rest)
            if found is not None:
                return f"{found} to {cmd}"
        elif cmd == "scontrol":
            match = _SCONTROL_IDENTITY.search(" ".join(rest))
            if match is not None:
                return f"scontrol {match.group(1)}="
        elif cmd == "sacctmgr" and _SACCTMGR_WRITE.search(" ".join(rest)):
            return "sacctmgr changing associations"
        written = _writes_reserved_var(cmd, rest)
        if written is not None:
            return f"{cmd} writing {written}"
        if depth < _MAX_NESTING and (
            cmd == "eval" or (cmd in _SHELLS and rest[:1] == ["-c"]) or cmd in ("su", "sudo")
        ):
            text = " ".join(rest[1:] if cmd in _SHELLS else rest)
            found = identity_in_text(text, depth + 1)
            if found is not None:
                return f"{found} (inside {cmd})"
        assign = _RESERVED_ASSIGN.search(tok)
        if assign is not None and not tok.startswith("$"):
            return f"setting {assign.group(1)}"
    return None


#: A line none of these words appear in (quotes and backslashes removed) cannot hold a
#: finding; only the others are tokenized (shlex is slow: scripts of 10k lines).
_TRIGGER = re.compile(
    r"srun|sbatch|salloc|scontrol|sacctmgr|\b(?:export|declare|typeset|local|readonly|read|"
    r"mapfile|readarray|printf|eval|bash|sh|dash|zsh|ksh|su|sudo)\b|SLURM_|SBATCH_|SALLOC_|SRUN_"
)
_QUOTING = re.compile(r"[\"'\\]")


def may_hold_identity(line: str) -> bool:
    return _TRIGGER.search(_QUOTING.sub("", line)) is not None


def identity_in_text(text: str, depth: int = 0) -> str | None:
    """:func:`identity_in_words` over each logical line of ``text``, plus raw assignments."""
    for _, line in logical_lines(text):
        if not may_hold_identity(line):
            continue
        found = identity_in_words(shell_words(line), depth)
        if found is not None:
            return found
        assign = _RESERVED_ASSIGN.search(line)
        if assign is not None:
            return f"setting {assign.group(1)}"
    return None
