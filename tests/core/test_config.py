"""Config precedence: defaults < file < env < flags; bad values are one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from dcops.config import Config, load_config
from dcops.errors import ConfigError


def test_defaults_follow_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "d"))
    cfg = load_config(environ={})
    assert cfg.site is None
    assert cfg.state_path == tmp_path / "d" / "dcops" / "state.db"
    assert cfg.source == ("defaults",)


def test_precedence(tmp_path: Path) -> None:
    file = tmp_path / "c.toml"
    file.write_text(
        'site = "file.yaml"\ndata_dir = "/srv/dcops"\n[ssh]\nuser = "fileuser"\n'
        'port = 2222\nidentity_files = ["/k1"]\n'
    )
    cfg = load_config(
        file,
        environ={"DCOPS_SSH_USER": "envuser", "DCOPS_SITE": "env.yaml"},
        overrides={"site": "flag.yaml", "data_dir": None},
    )
    assert cfg.site == "flag.yaml"  # flag beats env beats file
    assert cfg.ssh.user == "envuser"  # env beats file
    assert cfg.ssh.port == 2222 and cfg.ssh.identity_files == ("/k1",)  # file beats default
    assert cfg.data_dir == Path("/srv/dcops")  # a None flag does not override
    assert cfg.source == ("defaults", str(file), "environment", "flags")


def test_config_file_from_env_and_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "c.toml"
    file.write_text('actor = "ops-bot"\n')
    assert load_config(environ={"DCOPS_CONFIG": str(file)}).actor == "ops-bot"
    xdg = tmp_path / "xdg"
    (xdg / "dcops").mkdir(parents=True)
    (xdg / "dcops" / "config.toml").write_text('actor = "xdg-bot"\n')
    monkeypatch.setenv("XDG_CONFIG_HOME", str(xdg))
    assert load_config(environ={}).actor == "xdg-bot"


def test_env_lists_and_numbers() -> None:
    cfg = load_config(
        environ={
            "DCOPS_SSH_IDENTITY_FILES": "/a, /b",
            "DCOPS_SSH_CONNECT_TIMEOUT_S": "2.5",
            "DCOPS_RIG_DIR": "/ignored",
        }
    )
    assert cfg.ssh.identity_files == ("/a", "/b")
    assert cfg.ssh.connect_timeout_s == 2.5


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("bogus = 1\n", "unknown key 'bogus'"),
        ("[ssh]\ncolour = 1\n", "unknown key 'ssh.colour'"),
        ("[ssh]\nport = 'x'\n", "ssh.port: bad value"),
        ("[ssh]\nport = 2.5\n", "ssh.port: bad value"),
        ("ssh = 3\n", "must be a table"),
        ("site = \n", "invalid TOML"),
    ],
)
def test_bad_files(tmp_path: Path, text: str, fragment: str) -> None:
    file = tmp_path / "c.toml"
    file.write_text(text)
    with pytest.raises(ConfigError, match=fragment) as info:
        load_config(file, environ={})
    assert str(info.value).startswith(str(file))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml", environ={})


def test_bad_env_value() -> None:
    with pytest.raises(ConfigError, match=r"environment: ssh\.port"):
        load_config(environ={"DCOPS_SSH_PORT": "twenty"})


def test_config_is_immutable() -> None:
    cfg = Config()
    with pytest.raises(AttributeError):
        cfg.site = "x"  # type: ignore[misc]  # deliberately: a read-only property
