"""An authentication that gets no answer is the network's fault, never a refused key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import paramiko
import pytest

from dcops.errors import ConnectError
from dcops.remote.ssh import SshRunner, SshSettings
from dcops.remote.ssh_settings import SshTarget

pytestmark = pytest.mark.timeout(30)


class _Transport:
    """Stands in for paramiko.Transport in ``_authenticate``: answers as told."""

    def __init__(self, error: Exception, *, active: bool) -> None:
        self.error = error
        self.active = active
        self.tries = 0

    def auth_publickey(self, user: str, key: Any) -> list[str]:
        self.tries += 1
        raise self.error

    def is_active(self) -> bool:
        return self.active

    def is_authenticated(self) -> bool:
        return False


def _runner(tmp_path: Path) -> tuple[SshRunner, SshTarget]:
    keys = [tmp_path / "id_a", tmp_path / "id_b"]
    for key in keys:
        paramiko.ECDSAKey.generate().write_private_key_file(str(key))
    known = tmp_path / "known_hosts"
    known.write_text("")
    runner = SshRunner(SshSettings(identity_files=tuple(map(str, keys)), known_hosts=str(known)))
    target = SshTarget("node-a", "10.0.0.1", 22, "ops", tuple(map(str, keys)), "10.0.0.1")
    return runner, target


@pytest.mark.parametrize(
    ("error", "active"),
    [
        (paramiko.AuthenticationException("Authentication timeout."), True),
        (paramiko.AuthenticationException("Authentication failed."), False),
    ],
)
def test_no_answer_is_a_connect_error_not_a_refusal(
    tmp_path: Path, error: Exception, active: bool
) -> None:
    runner, target = _runner(tmp_path)
    transport = _Transport(error, active=active)
    with pytest.raises(ConnectError, match="no answer to public-key authentication as 'ops'"):
        runner._authenticate(transport, target)  # type: ignore[arg-type]
    assert transport.tries == 1  # no second key tried against a dead link


def test_a_refused_key_tries_the_next_then_says_refused(tmp_path: Path) -> None:
    runner, target = _runner(tmp_path)
    transport = _Transport(paramiko.AuthenticationException("Authentication failed."), active=True)
    with pytest.raises(ConnectError, match=r"authentication as 'ops' refused for 2 key\(s\)"):
        runner._authenticate(transport, target)  # type: ignore[arg-type]
    assert transport.tries == 2
