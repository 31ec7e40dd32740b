"""The tenant's API client, apart from the CLI: token reading, URL rules, no token in repr."""

from __future__ import annotations

from pathlib import Path

import pytest

from dcops.errors import ConfigError
from scheduler.api.client import ApiClient, check_url, client_from_options, read_token


def test_a_token_file_readable_by_others_is_used_and_warned_about(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("tok-123\nignored\n")
    token.chmod(0o644)
    said: list[str] = []
    assert read_token(token, warn=said.append) == "tok-123"
    assert said == [f"{token} is readable by others; chmod 600 it"]
    token.chmod(0o600)
    said.clear()
    assert read_token(token, warn=said.append) == "tok-123" and said == []


def test_clear_text_is_for_loopback_only_and_the_token_never_shows() -> None:
    assert check_url("http://127.0.0.1:8080") == "http://127.0.0.1:8080"
    assert check_url("https://api.example.org") == "https://api.example.org"
    with pytest.raises(ConfigError, match="use https://"):
        check_url("http://api.example.org")
    with pytest.raises(ConfigError, match="expected http"):
        check_url("file:///etc/passwd")
    client = ApiClient("https://api.example.org", "s3cret")
    assert "s3cret" not in repr(client)


def test_no_url_no_client_and_a_token_file_alone_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DCOPS_API_URL", raising=False)
    assert client_from_options(None, None) is None
    with pytest.raises(ConfigError, match="needs --api"):
        client_from_options(None, tmp_path / "token")
    monkeypatch.setenv("DCOPS_TOKEN", "  from-env  ")
    made = client_from_options("https://api.example.org", None)
    assert made is not None and made.token == "from-env"
