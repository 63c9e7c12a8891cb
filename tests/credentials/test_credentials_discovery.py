"""load_credentials: an explicit path, the environment, then ./clarify-credentials.json."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from clarify_auth import CredentialsError, load_credentials
from conftest import SECRET, basic_dict, oauth_dict

NAMED = "CLARIFY_CREDENTIALS"
INLINE = "CLARIFY_CREDENTIALS_JSON"


@pytest.fixture(autouse=True)
def no_configured_credentials(monkeypatch):
    """Each test starts with neither variable set, whatever the developer's shell has."""
    monkeypatch.delenv(NAMED, raising=False)
    monkeypatch.delenv(INLINE, raising=False)


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
@pytest.mark.parametrize("variable", [NAMED, INLINE])
def test_load_credentials_nothing_found_says_where_it_looked(monkeypatch, tmp_path, env, variable):
    """With nothing configured, the error names both variables and the absolute path of ./clarify-credentials.json."""
    monkeypatch.chdir(tmp_path)
    if env is not None:
        monkeypatch.setenv(variable, env)

    with pytest.raises(CredentialsError) as info:
        load_credentials()

    message = str(info.value)
    assert f"${NAMED} is" in message
    assert f"${INLINE} is" in message
    assert f"{Path.cwd() / 'clarify-credentials.json'} does not exist" in message


def test_load_credentials_expands_home(monkeypatch, tmp_path, write_json):
    """A path starting with ~ is expanded."""
    write_json(oauth_dict(integration="home"), "c.json")
    monkeypatch.setenv("HOME", str(tmp_path))

    assert load_credentials("~/c.json").integration == "home"


def test_json_variable_holds_the_contents(monkeypatch, tmp_path, write_json):
    """CLARIFY_CREDENTIALS_JSON, when set, is the file's contents and wins over ./clarify-credentials.json."""
    monkeypatch.chdir(tmp_path)
    write_json(oauth_dict(integration="cwd"))
    monkeypatch.setenv(INLINE, json.dumps(basic_dict(integration="inline")))

    creds = load_credentials()

    assert creds.integration == "inline"
    assert creds.credentials.type == "basic-auth"


def test_explicit_path_ignores_both_variables(monkeypatch, write_json):
    """An explicit path is loaded alone, even with both variables set (which alone would be an error)."""
    monkeypatch.setenv(NAMED, "/nowhere.json")
    monkeypatch.setenv(INLINE, "not json")
    path = write_json(oauth_dict(integration="explicit"))

    assert load_credentials(path).integration == "explicit"


def test_both_variables_set_is_an_error_naming_both(monkeypatch, write_json):
    """CLARIFY_CREDENTIALS and CLARIFY_CREDENTIALS_JSON both set is a CredentialsError naming both, quoting neither."""
    monkeypatch.setenv(NAMED, str(write_json(oauth_dict())))
    monkeypatch.setenv(INLINE, json.dumps(oauth_dict()))

    with pytest.raises(CredentialsError) as info:
        load_credentials()

    assert str(info.value) == (
        f"both ${NAMED} and ${INLINE} are set; set only one: the file's path or its contents"
    )


@pytest.mark.parametrize(
    ("named", "inline"), [("  ", "{}"), ("/x.json", " ")], ids=["named-blank", "inline-blank"]
)
def test_a_blank_variable_counts_as_unset(monkeypatch, tmp_path, write_json, named, inline):
    """A variable set to blanks does not count as set, so the other one applies."""
    path = write_json(oauth_dict(integration="named"))
    monkeypatch.setenv(NAMED, named.replace("/x.json", str(path)))
    monkeypatch.setenv(INLINE, inline.replace("{}", json.dumps(oauth_dict(integration="inline"))))

    assert load_credentials().integration == ("named" if named.strip() else "inline")


def _without_secret() -> dict[str, object]:
    data = oauth_dict()
    del data["credentials"]["clientSecret"]
    return data


def _duplicated_secret() -> str:
    text = json.dumps(oauth_dict())
    return text.replace('"clientSecret"', f'"clientSecret": "{SECRET}", "clientSecret"')


BAD_INLINE = [
    ("missing-secret", json.dumps(_without_secret()), "credentials.clientSecret: required"),
    ("bad-type", json.dumps(oauth_dict(integration=[SECRET])), "integration: must be a string"),
    ("secret-in-api-url", json.dumps(oauth_dict(apiUrl=f"https://api.clarify.io/v1/?{SECRET}")), "apiUrl: must not have a query or a fragment"),
    ("duplicate-key", _duplicated_secret(), "credentials.clientSecret: duplicate key"),
    ("array", json.dumps([oauth_dict()]), "expected a JSON object, got an array"),
    ("truncated", json.dumps(oauth_dict())[:-1], "not valid JSON"),
    ("a-path", "/home/me/clarify-credentials.json", f"not valid JSON (Expecting value at line 1 column 1); ${INLINE} holds the file's contents (to name the file, set ${NAMED})"),
    ("key-value", f"clientSecret={SECRET}", "not valid JSON"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("value", "expected"), [c[1:] for c in BAD_INLINE], ids=[c[0] for c in BAD_INLINE]
)
def test_json_variable_errors_name_the_variable_and_field_never_the_value(
    monkeypatch, value, expected
):
    """Whatever is wrong with CLARIFY_CREDENTIALS_JSON, the error names it and the field, and quotes none of it."""
    monkeypatch.setenv(INLINE, value)

    with pytest.raises(CredentialsError) as info:
        load_credentials()

    message = str(info.value)
    assert message.startswith(f"${INLINE}: ")
    assert expected in message
    assert SECRET not in message + repr(info.value)
    assert "/home/me" not in message


def test_missing_explicit_path_is_named_absolute(monkeypatch, tmp_path):
    """A missing file given by a relative path is named by its absolute path ("which directory is my notebook in?")."""
    monkeypatch.chdir(tmp_path)

    with pytest.raises(CredentialsError) as info:
        load_credentials("creds/clarify-credentials.json")

    assert str(info.value) == f"{Path.cwd() / 'creds' / 'clarify-credentials.json'}: no such file"


def test_missing_file_named_by_variable_is_named_absolute(monkeypatch, tmp_path):
    """A missing file named by CLARIFY_CREDENTIALS is named by its absolute path and the variable."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(NAMED, "gone.json")

    with pytest.raises(CredentialsError) as info:
        load_credentials()

    assert str(info.value) == f"{Path.cwd() / 'gone.json'}: no such file (named by ${NAMED})"


def test_unreadable_kind_named_by_variable_names_the_variable(monkeypatch, tmp_path):
    """A directory named by CLARIFY_CREDENTIALS is refused naming the variable too."""
    monkeypatch.setenv(NAMED, str(tmp_path))

    with pytest.raises(CredentialsError) as info:
        load_credentials()

    assert str(info.value) == f"{tmp_path}: is a directory, not a regular file (named by ${NAMED})"


def test_default_file_that_is_a_directory_is_reported(monkeypatch, tmp_path):
    """./clarify-credentials.json that is a directory is reported as such, not as nothing found."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "clarify-credentials.json").mkdir()

    with pytest.raises(CredentialsError, match="is a directory, not a regular file"):
        load_credentials()


@pytest.mark.skipif(os.name != "posix", reason="only POSIX removes the current directory")
def test_nothing_found_in_a_removed_directory(monkeypatch, tmp_path):
    """Discovery in a current directory that was removed is still a CredentialsError."""
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()

    with pytest.raises(CredentialsError) as info:
        load_credentials()

    assert "./clarify-credentials.json is nowhere: the current directory was removed" in str(
        info.value
    )


def test_variable_names_stay_exported():
    """The variable and file names are module constants, the old ones unchanged."""
    from clarify_auth.credentials import model as _credentials

    assert _credentials.ENV_VAR == NAMED
    assert _credentials.ENV_VAR_JSON == INLINE
    assert _credentials.DEFAULT_CREDENTIALS_FILE == "clarify-credentials.json"
