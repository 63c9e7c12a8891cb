"""load_credentials: an explicit path, the environment, then ./clarify-credentials.json."""

from __future__ import annotations

import json

import pytest

from clarify_auth import CredentialsError, load_credentials
from conftest import basic_dict, oauth_dict


def test_load_credentials_uses_path_alone(write_json, monkeypatch, tmp_path):
    """An explicit path is loaded even when the variable and ./ file exist."""
    other = write_json(oauth_dict(integration="from-env"), "env.json")
    monkeypatch.setenv("CLARIFY_CREDENTIALS", str(other))
    explicit = write_json(oauth_dict(integration="explicit"), "explicit.json")

    assert load_credentials(explicit).integration == "explicit"


def test_load_credentials_missing_path_does_not_fall_back(write_json, monkeypatch, tmp_path):
    """A missing explicit path is an error even when ./clarify-credentials.json exists."""
    monkeypatch.chdir(tmp_path)
    write_json(oauth_dict())

    with pytest.raises(CredentialsError, match=r"missing\.json: no such file"):
        load_credentials(tmp_path / "missing.json")


def test_load_credentials_from_env(write_json, monkeypatch, tmp_path):
    """CLARIFY_CREDENTIALS names the file when no path is given."""
    monkeypatch.chdir(tmp_path)
    write_json(oauth_dict(integration="cwd"))
    env_file = write_json(oauth_dict(integration="env"), "elsewhere.json")
    monkeypatch.setenv("CLARIFY_CREDENTIALS", str(env_file))

    assert load_credentials().integration == "env"


def test_load_credentials_env_missing_names_variable(monkeypatch, tmp_path, write_json):
    """A missing file named by the variable is an error naming the variable, with no fallback."""
    monkeypatch.chdir(tmp_path)
    write_json(oauth_dict())
    monkeypatch.setenv("CLARIFY_CREDENTIALS", str(tmp_path / "gone.json"))

    with pytest.raises(CredentialsError) as info:
        load_credentials()

    assert "CLARIFY_CREDENTIALS" in str(info.value)
    assert "gone.json" in str(info.value)


def test_load_credentials_env_bad_file_names_file(monkeypatch, tmp_path):
    """A bad file named by the variable is reported with its path and field."""
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(oauth_dict(integration="")))
    monkeypatch.setenv("CLARIFY_CREDENTIALS", str(path))

    with pytest.raises(CredentialsError, match=r"bad\.json: integration: must not be empty"):
        load_credentials()


def test_load_credentials_from_cwd(monkeypatch, tmp_path, write_json):
    """Without path or variable, ./clarify-credentials.json is loaded."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CLARIFY_CREDENTIALS", raising=False)
    write_json(basic_dict(integration="here"))

    assert load_credentials().integration == "here"


@pytest.mark.parametrize("env", [None, "", "  "], ids=["unset", "empty", "blank"])
def test_load_credentials_nothing_found_says_where_it_looked(monkeypatch, tmp_path, env):
    """With nothing configured, the error names the variable and ./clarify-credentials.json."""
    monkeypatch.chdir(tmp_path)
    if env is None:
        monkeypatch.delenv("CLARIFY_CREDENTIALS", raising=False)
    else:
        monkeypatch.setenv("CLARIFY_CREDENTIALS", env)

    with pytest.raises(CredentialsError) as info:
        load_credentials()

    assert "CLARIFY_CREDENTIALS" in str(info.value)
    assert "./clarify-credentials.json" in str(info.value)


def test_load_credentials_expands_home(monkeypatch, tmp_path, write_json):
    """A path starting with ~ is expanded."""
    write_json(oauth_dict(integration="home"), "c.json")
    monkeypatch.setenv("HOME", str(tmp_path))

    assert load_credentials("~/c.json").integration == "home"
