"""SSH pieces that need no server: known_hosts rules, name resolution, settings, registry."""

from __future__ import annotations

from pathlib import Path

import paramiko
import pytest

from dcops.errors import ConfigError, UnknownNameError
from dcops.remote import get_runner, runner_names
from dcops.remote.known_hosts import KnownHosts, known_hosts_name
from dcops.remote.local import LocalRunner
from dcops.remote.ssh import SshRunner, SshSettings

pytestmark = pytest.mark.timeout(30)


def _line(names: str, key: paramiko.PKey) -> str:
    return f"{names} {key.get_name()} {key.get_base64()}\n"


@pytest.fixture(scope="module")
def keys() -> tuple[paramiko.PKey, paramiko.PKey]:
    return paramiko.ECDSAKey.generate(), paramiko.ECDSAKey.generate()


def test_known_hosts_verdicts(tmp_path: Path, keys: tuple[paramiko.PKey, paramiko.PKey]) -> None:
    good, other = keys
    hashed = paramiko.HostKeys.hash_host("secret-node")
    path = tmp_path / "known_hosts"
    path.write_text(
        "# comment\n\n"
        + _line("node-a,[10.0.0.1]:2222", good)
        + _line("node-b", other)
        + _line(hashed, good)
        + _line("gb200-r01-*,!gb200-r01-t18", good)
        + "@revoked * "
        + f"{other.get_name()} {other.get_base64()}\n"
        + "@cert-authority *.example ssh-ed25519 AAAA\n"
        + "garbage-line\n"
        + "bad ssh-ed25519 !!!notbase64\n"
    )
    kh = KnownHosts.load(path, required=True)
    assert kh.check("node-a", good) == "ok"
    assert kh.check("[10.0.0.1]:2222", good) == "ok"
    assert kh.check("node-a", other) == "revoked"  # revoked everywhere, even if not pinned
    assert kh.check("node-c", good) == "unknown"
    assert kh.check("secret-node", good) == "ok"
    assert kh.check("gb200-r01-t05", good) == "ok"
    assert kh.check("gb200-r01-t18", good) == "unknown"  # negated
    assert kh.check("NODE-A", good) == "ok"  # names are case-insensitive
    assert kh.known_types("node-a") == [good.get_name()]


def test_known_hosts_changed_key(tmp_path: Path, keys: tuple[paramiko.PKey, paramiko.PKey]) -> None:
    good, other = keys
    path = tmp_path / "kh"
    path.write_text(_line("node-a", good))
    assert KnownHosts.load(path, required=True).check("node-a", other) == "changed"


def test_known_hosts_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        KnownHosts.load(tmp_path / "nope", required=True)
    assert KnownHosts.load(tmp_path / "nope", required=False).known_types("x") == []


def test_known_hosts_name() -> None:
    assert known_hosts_name("n1", 22, None) == "n1"
    assert known_hosts_name("127.0.0.1", 2222, None) == "[127.0.0.1]:2222"
    assert known_hosts_name("127.0.0.1", 2222, "n1-alias") == "n1-alias"


def test_resolve_with_ssh_config(tmp_path: Path) -> None:
    (tmp_path / "kh").write_text("")
    cfg = tmp_path / "ssh_config"
    cfg.write_text(
        "Host sim-*\n    HostName 127.0.0.1\n    Port 2200\n    User ops\n"
        "    IdentityFile /keys/sim\n    HostKeyAlias %h-ignored-no-tokens\n"
        "Host gb200-*\n    HostName %h.mgmt.example\n"
    )
    runner = SshRunner(
        SshSettings(
            user="dcops",
            known_hosts=str(tmp_path / "kh"),
            ssh_config=str(cfg),
            identity_files=(),
        )
    )
    sim = runner.resolve("sim-r01-t05")
    assert (sim.hostname, sim.port, sim.user) == ("127.0.0.1", 2200, "ops")
    assert sim.identity_files == ("/keys/sim",)
    gb = runner.resolve("gb200-r01-t01")
    assert (gb.hostname, gb.port, gb.user) == ("gb200-r01-t01.mgmt.example", 22, "dcops")
    assert gb.host_key_name == "gb200-r01-t01.mgmt.example"
    plain = runner.resolve("other")
    assert plain.hostname == "other"


def test_settings_validation_and_bad_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        SshSettings(port=0)
    with pytest.raises(ConfigError):
        SshSettings(connect_timeout_s=0)
    with pytest.raises(ConfigError, match="known_hosts"):
        SshRunner(SshSettings(known_hosts=str(tmp_path / "missing")))
    (tmp_path / "kh").write_text("")
    with pytest.raises(ConfigError, match="ssh_config"):
        SshRunner(SshSettings(known_hosts=str(tmp_path / "kh"), ssh_config=str(tmp_path / "x")))
    (tmp_path / "notakey").write_text("hello\n")
    with pytest.raises(ConfigError, match="not a usable private key") as info:
        SshRunner(
            SshSettings(
                known_hosts=str(tmp_path / "kh"), identity_files=(str(tmp_path / "notakey"),)
            )
        )
    assert "hello" not in str(info.value)


def test_encrypted_key_is_refused_without_leaking(tmp_path: Path) -> None:
    key = paramiko.ECDSAKey.generate()
    key.write_private_key_file(str(tmp_path / "enc"), password="s3cret-pass")
    (tmp_path / "kh").write_text("")
    with pytest.raises(ConfigError, match="passphrase-protected") as info:
        SshRunner(
            SshSettings(known_hosts=str(tmp_path / "kh"), identity_files=(str(tmp_path / "enc"),))
        )
    assert "s3cret" not in str(info.value)


def test_registry(tmp_path: Path) -> None:
    assert runner_names() == ("local", "ssh")
    assert isinstance(get_runner("local"), LocalRunner)
    (tmp_path / "kh").write_text("")
    ssh = get_runner("ssh", SshSettings(known_hosts=str(tmp_path / "kh")))
    assert isinstance(ssh, SshRunner)
    with pytest.raises(UnknownNameError, match="known: local, ssh"):
        get_runner("telnet")
