"""Pure checks that keep a tenant inside its contract: names, env, scripts, paths.

These are defence in depth. The boundary that holds even when a check here is
fooled is the scheduler's own: the job runs as the tenant's unix user, whose
only Slurm association is the tenant's account, and in the tenant's Kubernetes
namespace under its LocalQueue. What these checks add is a clear refusal,
before anything is submitted, of every spec that *tries* to step outside.
"""

from __future__ import annotations

import os
import posixpath
import re
import shlex
from collections.abc import Callable, Iterable, Mapping

from dcops.errors import InputError

#: A DNS label (RFC 1123), ASCII only: job names, namespaces, queues.
DNS_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
#: Slurm / unix identifiers the bridge writes into #SBATCH lines.
SLURM_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
#: Characters a path may hold: no spaces, quotes, globs, '%' or shell syntax.
SAFE_PATH = re.compile(r"[A-Za-z0-9._@+=/-]{1,4096}")
RACK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
IMAGE_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@+-]{0,511}")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")

#: Variable prefixes the scheduler reads as options (identity, placement) or
#: that select devices under the container runtime; only the bridge sets them.
RESERVED_ENV_PREFIXES = ("SLURM_", "SBATCH_", "SALLOC_", "SRUN_", "DCOPS_", "NVIDIA_")
RESERVED_ENV_NAMES = frozenset({"CUDA_VISIBLE_DEVICES", "KUBECONFIG"})

_SBATCH_DIRECTIVE = re.compile(r"^\s*#\s*(SBATCH|PBS|BSUB|FLUX)\b", re.IGNORECASE)
_LAUNCHERS = frozenset({"srun", "sbatch", "salloc"})
_IDENTITY_LONG = frozenset(
    {
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
    }
)
_IDENTITY_SHORT = frozenset({"A", "M", "p", "q", "D"})
#: Launcher flags that take no value; any other option is assumed to take one,
#: so that a value is never mistaken for the program (which would end the scan).
_LAUNCHER_FLAGS = frozenset(
    {
        "-l",
        "--label",
        "-u",
        "--unbuffered",
        "-v",
        "--verbose",
        "-Q",
        "--quiet",
        "--exclusive",
        "--overlap",
        "--exact",
        "--pty",
        "-K",
        "--kill-on-bad-exit",
        "-X",
        "--disable-status",
        "-Z",
        "--no-allocate",
        "--wait-all-nodes",
        "-W",
        "--whole",
        "--container-writable",
        "--no-container-mount-home",
        "--container-remap-root",
        "--no-container-remap-root",
        "--spread-job",
        "--contiguous",
        "-O",
        "--overcommit",
        "-H",
        "--hold",
        "--parsable",
        "--test-only",
        "--requeue",
        "--no-requeue",
    }
)
_SCONTROL_IDENTITY = re.compile(
    r"(?i)\b(account|qos|partition|reservation|userid|uid|user|wckey|groupid)\s*="
)
_SACCTMGR_WRITE = re.compile(r"(?i)\b(add|create|modify|update|delete|remove)\b")
_RESERVED_ASSIGN = re.compile(r"(?<![$\w{])((?:SLURM|SBATCH|SALLOC|SRUN)_[A-Za-z0-9_]*)\s*\+?=")

Resolver = Callable[[str], str]


def realpath_resolver(path: str) -> str:
    """Resolve symlinks of the parts that exist (``os.path.realpath``, non-strict)."""
    return os.path.realpath(path)


def lexical_resolver(path: str) -> str:
    """No filesystem: only normalize ``.``/``..`` (for remote paths not visible here)."""
    return normalize_abs(path)


def has_control_or_non_ascii(text: str) -> bool:
    return not text.isascii() or any(ord(c) < 0x20 or ord(c) == 0x7F for c in text)


def check_name(value: str, pattern: re.Pattern[str], field: str, what: str) -> str:
    """Full-match ``value`` (never ``$``, which accepts a trailing newline)."""
    if has_control_or_non_ascii(value):
        raise InputError(f"{field}: {value!r} holds control or non-ASCII characters")
    if pattern.fullmatch(value) is None:
        raise InputError(f"{field}: {value!r} is not a valid {what}")
    return value


def check_env(env: Mapping[str, str], field: str = "env") -> None:
    """Env names must be plain identifiers and never a scheduler/runtime control variable."""
    for key, value in env.items():
        check_name(key, ENV_NAME, f"{field}.{key!r}", "environment variable name")
        if key.startswith(RESERVED_ENV_PREFIXES) or key in RESERVED_ENV_NAMES:
            raise InputError(
                f"{field}.{key}: reserved variable (Slurm/Kubernetes/container runtime read it "
                "as an option; identity and devices come from the tenant contract)"
            )
        if "\x00" in value:
            raise InputError(f"{field}.{key}: value holds a NUL byte")


def check_argv(argv: Iterable[str], field: str = "command") -> None:
    for i, arg in enumerate(argv):
        if "\x00" in arg:
            raise InputError(f"{field}[{i}]: argument holds a NUL byte")
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in arg):
            # a line break inside an argument would start a new line of the batch script
            raise InputError(f"{field}[{i}]: {arg!r} holds control characters")
        if i == 0 and (arg.startswith("-") or not arg.strip()):
            raise InputError(
                f"{field}[0]: {arg!r} is not a program (a leading '-' would be read as a "
                "launcher option)"
            )


def _logical_lines(script: str) -> list[tuple[int, str]]:
    """Lines with backslash continuations joined, numbered from 1."""
    out: list[tuple[int, str]] = []
    buf, start = "", 0
    for number, line in enumerate(script.splitlines(), start=1):
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


def check_script(script: str, field: str = "script") -> None:
    """Refuse scheduler directives, identity options and Slurm variables in a script."""
    if "\x00" in script:
        raise InputError(f"{field}: holds a NUL byte")
    for number, line in _logical_lines(script):
        where = f"{field}:{number}"
        if _SBATCH_DIRECTIVE.search(line):
            raise InputError(
                f"{where}: scheduler directives (#SBATCH ...) are not allowed in a tenant "
                "script; the bridge sets every option from the spec and the tenant contract"
            )
        bad = _identity_in_slurm_call(line)  # tokenized: s""run and /usr/bin/srun count
        if bad is not None:
            raise InputError(
                f"{where}: {bad} chooses account/QOS/partition/user/reservation/cluster; "
                "those come only from the tenant contract"
            )
        assign = _RESERVED_ASSIGN.search(line)
        if assign is not None:
            raise InputError(
                f"{where}: setting {assign.group(1)} is not allowed (Slurm reads it as an option)"
            )


def _tokens(line: str) -> list[str]:
    """Shell words, with ; & | ( ) as words of their own; comments dropped."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    try:
        return list(lexer)
    except ValueError:  # unbalanced quotes: fall back to whitespace
        return re.split(r"[\s;&|()]+", line)


def _launcher_identity_option(args: list[str]) -> str | None:
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
            if name in _IDENTITY_LONG:
                return f"option --{name}"
            skip_value = not has_value and tok not in _LAUNCHER_FLAGS
        else:
            if tok[1:2] in _IDENTITY_SHORT:
                return f"option -{tok[1]}"
            skip_value = len(tok) == 2 and tok not in _LAUNCHER_FLAGS
    return None


def _identity_in_slurm_call(line: str) -> str | None:
    tokens = _tokens(line)
    for i, tok in enumerate(tokens):
        cmd = posixpath.basename(tok)
        if cmd in _LAUNCHERS:
            found = _launcher_identity_option(tokens[i + 1 :])
            if found is not None:
                return f"{found} to {cmd}"
        elif cmd == "scontrol":
            match = _SCONTROL_IDENTITY.search(" ".join(tokens[i + 1 :]))
            if match is not None:
                return f"scontrol {match.group(1)}="
        elif cmd == "sacctmgr" and _SACCTMGR_WRITE.search(" ".join(tokens[i + 1 :])):
            return "sacctmgr changing associations"
    return None


def normalize_abs(path: str) -> str:
    """``posixpath.normpath`` of an absolute path, collapsing a leading ``//`` too."""
    normal = posixpath.normpath(path)
    if normal.startswith("//"):
        normal = "/" + normal.lstrip("/")
    return normal


def is_within(path: str, root: str) -> bool:
    root = root.rstrip("/") or "/"
    return path == root or path.startswith(root + "/") or root == "/"


def check_path_text(path: str, field: str) -> None:
    if has_control_or_non_ascii(path):
        raise InputError(f"{field}: {path!r} holds control or non-ASCII characters")
    if SAFE_PATH.fullmatch(path) is None:
        raise InputError(
            f"{field}: {path!r} holds characters not allowed in a path "
            "(allowed: letters, digits and ._@+=/-)"
        )


def confine_path(
    path: str, roots: Iterable[str], *, base: str, field: str, resolve: Resolver
) -> str:
    """The resolved absolute form of ``path``, which must lie under one of ``roots``.

    Relative paths are taken from ``base``. ``..`` is normalized away first; then
    ``resolve`` (by default the real filesystem: symlinks of existing parts) must
    land under the same root, itself resolved the same way.
    """
    check_path_text(path, field)
    joined = path if path.startswith("/") else posixpath.join(base, path)
    normal = normalize_abs(joined)
    resolved = normalize_abs(resolve(normal))
    roots = list(roots)
    for root in roots:
        real_root = normalize_abs(resolve(root))
        lexically_inside = is_within(normal, normalize_abs(root)) or is_within(normal, real_root)
        if lexically_inside and is_within(resolved, real_root):
            return resolved
    listed = ", ".join(roots)
    if resolved != normal and any(is_within(normal, normalize_abs(r)) for r in roots):
        raise InputError(
            f"{field}: {path!r} resolves (through a symlink) to {resolved!r}, outside the "
            f"tenant's output roots ({listed})"
        )
    raise InputError(f"{field}: {path!r} is outside the tenant's output roots ({listed})")
