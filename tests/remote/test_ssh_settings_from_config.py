"""Every command builds its SSH settings from ``[ssh]`` in one place: no field is forgotten."""

from __future__ import annotations

import dataclasses

from dcops.config import SshConfig
from dcops.remote.ssh_settings import SshSettings


def test_every_ssh_config_field_reaches_the_settings() -> None:
    cfg = SshConfig(
        user="ops",
        port=2222,
        identity_files=("/k1", "/k2"),
        known_hosts="/etc/dcops/known_hosts",
        ssh_config="/etc/dcops/ssh_config",
        connect_timeout_s=3.5,
        command_timeout_s=42.0,
        max_connections=7,
    )
    settings = SshSettings.from_config(cfg)
    for field in dataclasses.fields(SshConfig):
        assert getattr(settings, field.name) == getattr(cfg, field.name), field.name
    defaults = SshSettings()
    assert (settings.look_for_keys, settings.remote_timeout) == (
        defaults.look_for_keys,
        defaults.remote_timeout,
    )
