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
import unicodedata
from collections.abc import Callable, Iterable, Mapping

from dcops.errors import InputError
from scheduler.scriptscan import (
    directive_line,
    identity_in_text,
    identity_in_words,
    logical_lines,
    may_hold_identity,
    physical_lines,
    shell_words,
)

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

Resolver = Callable[[str], str]


def realpath_resolver(path: str) -> str:
    """Resolve symlinks of the parts that exist (``os.path.realpath``, non-strict)."""
    return os.path.realpath(path)


def lexical_resolver(path: str) -> str:
    """No filesystem: only normalize ``.``/``..`` (for remote paths not visible here)."""
    return normalize_abs(path)


#: Bidirectional overrides/isolates: they make a line read differently than it runs.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def is_control(char: str) -> bool:
    """A character some reader treats as a line break or control.

    Unicode categories Cc (C0, DEL and C1: NEL U+0085, 8-bit CSI U+009B ...),
    Zl (U+2028) and Zp (U+2029), plus the bidirectional overrides.
    """
    return unicodedata.category(char) in ("Cc", "Zl", "Zp") or char in _BIDI_CONTROLS


def find_control(text: str, allowed: str = "") -> str | None:
    """The first control/line-break character of ``text`` not in ``allowed``, else None."""
    for char in text:
        if char not in allowed and is_control(char):
            return char
    return None


def has_control_or_non_ascii(text: str) -> bool:
    return not text.isascii() or find_control(text) is not None


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
        bad = find_control(value)
        if bad is not None:
            # a line break in a value would start a new line of a script or manifest reader
            raise InputError(
                f"{field}.{key}: value holds the control or line-break character U+{ord(bad):04X}"
            )


def check_argv(argv: Iterable[str], field: str = "command") -> None:
    argv = list(argv)
    for i, arg in enumerate(argv):
        bad = find_control(arg)
        if bad is not None:
            # a line break inside an argument would start a new line of the batch script
            raise InputError(
                f"{field}[{i}]: {arg!r} holds the control or line-break character U+{ord(bad):04X}"
            )
        if i == 0 and (arg.startswith("-") or not arg.strip()):
            raise InputError(
                f"{field}[0]: {arg!r} is not a program (a leading '-' would be read as a "
                "launcher option)"
            )
    found = identity_in_words(argv)
    if found is not None:
        raise InputError(
            f"{field}: {found} chooses account/QOS/partition/user/reservation/cluster or a "
            "Slurm variable; those come only from the tenant contract"
        )


def check_script(script: str, field: str = "script") -> None:
    """Refuse directives, identity options and Slurm variables in a script (defence in depth).

    The rendered script never lets tenant text into sbatch's directive zone
    (see :mod:`scheduler.slurm.render`); this refuses, with a line number, what
    visibly tries anyway (:mod:`scheduler.scriptscan`).
    """
    bad = find_control(script, allowed="\n\t")
    if bad == "\r":
        raise InputError(f"{field}: holds DOS line breaks (CR); save it with Unix line endings")
    if bad is not None:
        raise InputError(f"{field}: holds the control or line-break character U+{ord(bad):04X}")
    for number, line in enumerate(physical_lines(script), start=1):
        keyword = directive_line(line)
        if keyword is not None:
            raise InputError(
                f"{field}:{number}: scheduler directives (#{keyword} ...) are not allowed in a "
                "tenant script; the bridge sets every option from the spec and the tenant contract"
            )
    for number, line in logical_lines(script):
        where = f"{field}:{number}"
        keyword = directive_line(line)
        if keyword is not None:  # a continued comment line
            raise InputError(f"{where}: scheduler directives (#{keyword} ...) are not allowed")
        if not may_hold_identity(line):
            continue
        found = identity_in_words(shell_words(line))
        if found is not None:
            raise InputError(
                f"{where}: {found} chooses account/QOS/partition/user/reservation/cluster; "
                "those come only from the tenant contract"
            )
        assign = identity_in_text(line)
        if assign is not None:
            raise InputError(f"{where}: {assign} is not allowed (Slurm reads it as an option)")


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
