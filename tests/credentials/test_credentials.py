"""Credentials: parsing, normalisation, discovery, and errors that name file and field."""

from __future__ import annotations

import json
import os
import pickle
from typing import Any

import pydantic
import pytest
from hypothesis import given
from hypothesis import strategies as st

import clarify_auth
from _hostile import basic_file
from clarify_auth import Credentials, CredentialsError
from conftest import BASIC_PASSWORD, SECRET, basic_dict, oauth_dict


def test_parses_client_credentials_file_with_extra_keys(write_json):
    """A file as Clarify ships it, extra keys included, loads into the model."""
    path = write_json(oauth_dict(name="My integration", createdAt="2026-01-01T00:00:00Z"))

    creds = Credentials.from_file(path)

    assert creds.api_url == "https://api.clarify.io/v1/"
    assert creds.integration == "test-integration"
    assert creds.credentials.type == "client-credentials"
    assert creds.credentials.client_id == "test-client"
    assert isinstance(creds.credentials.client_secret, pydantic.SecretStr)
    assert creds.credentials.client_secret.get_secret_value() == SECRET
    assert creds.token_url == "https://api.clarify.io/v1/oauth/token"


def test_parses_basic_auth_credentials():
    """basic-auth credentials load as BasicAuthCredentials."""
    creds = Credentials.from_dict(basic_dict())

    assert isinstance(creds.credentials, clarify_auth.BasicAuthCredentials)
    assert creds.credentials.type == "basic-auth"
    assert creds.credentials.client_secret.get_secret_value() == BASIC_PASSWORD


def test_accepts_snake_case_names():
    """snake_case names are accepted as well as the file's camelCase ones."""
    data = {
        "api_url": "https://eu.clarify.io/v1",
        "integration": "test-integration",
        "credentials": {"type": "basic-auth", "client_id": "u", "client_secret": "test-secret-p"},
    }

    creds = Credentials.from_dict(data)

    assert creds.api_url == "https://eu.clarify.io/v1/"
    assert creds.credentials.client_id == "u"


def test_api_url_defaults_to_clarify():
    """A file without apiUrl talks to https://api.clarify.io/v1/."""
    data = oauth_dict()
    del data["apiUrl"]

    assert Credentials.from_dict(data).api_url == "https://api.clarify.io/v1/"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://api.clarify.io/v1", "https://api.clarify.io/v1/"),
        ("https://api.clarify.io/v1/", "https://api.clarify.io/v1/"),
        ("https://api.clarify.io/v1///", "https://api.clarify.io/v1/"),
        ("  https://api.clarify.io/v1/ ", "https://api.clarify.io/v1/"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080/"),
        ("HTTPS://API.clarify.io/v1", "HTTPS://API.clarify.io/v1/"),
    ],
    ids=["no-slash", "one-slash", "many-slashes", "whitespace", "loopback-http", "upper-scheme"],
)
def test_api_url_is_normalised_to_one_trailing_slash(given, expected):
    """ApiUrl always ends in exactly one slash, so token_url and rpc join cleanly."""
    creds = Credentials.from_dict(oauth_dict(apiUrl=given))

    assert creds.api_url == expected
    assert creds.token_url == expected + "oauth/token"


def test_model_is_frozen(oauth_creds):
    """Credentials cannot be changed after loading."""
    with pytest.raises(pydantic.ValidationError):
        oauth_creds.integration = "other"  # type: ignore[misc]


def test_from_json_accepts_str_bytes_and_bom():
    """from_json takes str or bytes, with or without a UTF-8 byte order mark."""
    text = json.dumps(oauth_dict())

    for value in (text, text.encode(), "\ufeff" + text, b"\xef\xbb\xbf" + text.encode()):
        assert Credentials.from_json(value).integration == "test-integration"


def test_from_file_tolerates_bom_and_pathlike(tmp_path):
    """from_file reads UTF-8 with a BOM, from a str or a PathLike."""
    path = tmp_path / "ClarifyCredentials (1).json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(oauth_dict()).encode())

    assert Credentials.from_file(path).integration == "test-integration"
    assert Credentials.from_file(str(path)).integration == "test-integration"


def test_model_validate_is_plain_pydantic_and_hides_input():
    """model_validate raises pydantic's ValidationError, whose text shows no secret."""
    data = oauth_dict(integration=7)

    with pytest.raises(pydantic.ValidationError) as info:
        Credentials.model_validate(data)

    assert SECRET not in str(info.value)
    assert SECRET not in repr(info.value)


def test_repr_and_dump_hide_the_secret(oauth_creds, basic_creds):
    """Neither repr, str nor a JSON dump of credentials shows the secret."""
    for creds in (oauth_creds, basic_creds):
        shown = repr(creds) + str(creds) + creds.model_dump_json() + repr(creds.credentials)

        assert SECRET not in shown
        assert BASIC_PASSWORD not in shown
        assert "**********" in shown


def test_credentials_pickle(oauth_creds):
    """Credentials survive pickle with the secret intact."""
    copy = pickle.loads(pickle.dumps(oauth_creds))

    assert copy == oauth_creds
    assert copy.credentials.client_secret.get_secret_value() == SECRET


# -- bad input -----------------------------------------------------------------


def _without(data: dict[str, Any], *path: str) -> dict[str, Any]:
    target = data
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return data


def _with(data: dict[str, Any], value: Any, *path: str) -> dict[str, Any]:
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return data


BAD_DOCUMENTS = [
    ("no-integration", _without(oauth_dict(), "integration"), "integration: required"),
    ("empty-integration", _with(oauth_dict(), "", "integration"), "integration: must not be empty"),
    ("blank-integration", _with(oauth_dict(), "  ", "integration"), "integration: must not be empty"),
    ("integration-number", _with(oauth_dict(), 12, "integration"), "integration: must be a string"),
    ("no-credentials", _without(oauth_dict(), "credentials"), "credentials: required"),
    ("credentials-string", _with(oauth_dict(), SECRET, "credentials"), "credentials: must be an object"),
    ("credentials-list", _with(oauth_dict(), [SECRET], "credentials"), "credentials: must be an object"),
    ("no-type", _without(oauth_dict(), "credentials", "type"), "credentials.type: required"),
    ("unknown-type", _with(oauth_dict(), "oauth", "credentials", "type"), "credentials.type: unknown type"),
    ("type-number", _with(oauth_dict(), 3, "credentials", "type"), "credentials.type"),
    ("no-client-id", _without(oauth_dict(), "credentials", "clientId"), "credentials.clientId: required"),
    ("empty-client-id", _with(oauth_dict(), "", "credentials", "clientId"), "credentials.clientId: must not be empty"),
    ("no-secret", _without(oauth_dict(), "credentials", "clientSecret"), "credentials.clientSecret: required"),
    ("empty-secret", _with(oauth_dict(), "", "credentials", "clientSecret"), "credentials.clientSecret: must not be empty"),
    ("secret-number", _with(oauth_dict(), 1234, "credentials", "clientSecret"), "credentials.clientSecret: must be a string"),
    ("basic-no-secret", _without(basic_dict(), "credentials", "clientSecret"), "credentials.clientSecret: required"),
    ("api-url-relative", oauth_dict(apiUrl="api.clarify.io/v1"), "apiUrl: must be an absolute http(s) URL"),
    ("api-url-ftp", oauth_dict(apiUrl="ftp://api.clarify.io/v1"), "apiUrl: must be an absolute http(s) URL"),
    ("api-url-no-host", oauth_dict(apiUrl="https:///v1"), "apiUrl: must be an absolute http(s) URL"),
    ("api-url-bad-port", oauth_dict(apiUrl="https://api.clarify.io:x/v1"), "apiUrl: must be an absolute http(s) URL"),
    ("api-url-query", oauth_dict(apiUrl="https://api.clarify.io/v1?a=1"), "apiUrl: must not have a query"),
    ("api-url-empty-query", oauth_dict(apiUrl="https://api.clarify.io/v1/?"), "apiUrl: must not have a query or a fragment"),
    ("api-url-fragment", oauth_dict(apiUrl="https://api.clarify.io/v1/#top"), "apiUrl: must not have a query or a fragment"),
    ("api-url-empty-fragment", oauth_dict(apiUrl="https://api.clarify.io/v1/#"), "apiUrl: must not have a query or a fragment"),
    ("api-url-secret-in-query", oauth_dict(apiUrl=f"https://api.clarify.io/v1/?key={SECRET}"), "apiUrl: must not have a query or a fragment"),
    ("basic-client-id-colon", _with(basic_dict(), "test-integration:", "credentials", "clientId"), "credentials.clientId: must not contain ':'"),
    ("basic-client-id-is-pair", _with(basic_dict(), f"test-integration:{SECRET}", "credentials", "clientId"), "credentials.clientId: must not contain ':'"),
    ("api-url-userinfo", oauth_dict(apiUrl=f"https://u:{SECRET}@api.clarify.io/v1"), "apiUrl: must not carry a user name"),
    ("api-url-number", oauth_dict(apiUrl=5), "apiUrl: must be a string"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("data", "expected"), [c[1:] for c in BAD_DOCUMENTS], ids=[c[0] for c in BAD_DOCUMENTS]
)
def test_bad_documents_name_file_and_field(write_json, data, expected):
    """Each bad field gives a CredentialsError naming the file and the dotted JSON path."""
    path = write_json(data)

    with pytest.raises(CredentialsError) as info:
        Credentials.from_file(path)

    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert expected in message
    assert SECRET not in message
    assert info.value.__cause__ is None or SECRET not in repr(info.value.__cause__)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, clarify_auth.ClarifyAuthError)


@pytest.mark.parametrize(
    ("data", "expected"), [c[1:] for c in BAD_DOCUMENTS], ids=[c[0] for c in BAD_DOCUMENTS]
)
def test_bad_documents_from_dict_name_field(data, expected):
    """from_dict reports the same dotted path, without a file name."""
    with pytest.raises(CredentialsError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        Credentials.from_dict(data)


AMBIGUOUS_FOR_PYDANTIC = [
    ("api-url-empty-query", oauth_dict(apiUrl="https://api.clarify.io/v1/?"), ("apiUrl",)),
    ("api-url-empty-fragment", oauth_dict(apiUrl="https://api.clarify.io/v1/#"), ("apiUrl",)),
    ("basic-client-id-is-pair", _with(basic_dict(), f"test-integration:{SECRET}", "credentials", "clientId"), ("credentials", "basic-auth", "clientId")),
]  # fmt: skip


@pytest.mark.parametrize(
    ("data", "loc"),
    [c[1:] for c in AMBIGUOUS_FOR_PYDANTIC],
    ids=[c[0] for c in AMBIGUOUS_FOR_PYDANTIC],
)
def test_model_validate_refuses_ambiguous_values_without_echoing_them(data, loc):
    """model_validate applies the apiUrl and basic-auth clientId rules too, as a ValidationError that quotes no value."""
    with pytest.raises(pydantic.ValidationError) as info:
        Credentials.model_validate(data)

    assert [error["loc"] for error in info.value.errors()] == [loc]
    assert SECRET not in str(info.value)
    assert SECRET not in repr(info.value)
    assert "test-integration:" not in str(info.value)


def test_client_id_with_a_colon_is_fine_for_oauth():
    """Only Basic Auth splits user from password at ':'; an OAuth clientId may contain one."""
    data = _with(oauth_dict(), "test:client", "credentials", "clientId")

    assert Credentials.from_dict(data).credentials.client_id == "test:client"


_TYPE_ID = '"type": "client-credentials", "clientId": "test-client"'
_CREDS = '"credentials": {' + _TYPE_ID + f', "clientSecret": "{SECRET}"}}'
DUPLICATED_KEYS = [
    ("top-level", '{"apiUrl": "https://api.clarify.io/v1/", "integration": "i", "apiUrl": "https://evil.example/", ' + _CREDS + "}", "apiUrl: duplicate key"),
    ("same-value", '{"integration": "i", "integration": "i", ' + _CREDS + "}", "integration: duplicate key"),
    ("nested", '{"integration": "i", "credentials": {' + _TYPE_ID + ', "clientSecret": "' + SECRET + '", "clientSecret": "test-secret-other"}}', "credentials.clientSecret: duplicate key"),
    ("type", '{"integration": "i", "credentials": {"type": "basic-auth", ' + _TYPE_ID + ', "clientSecret": "' + SECRET + '"}}', "credentials.type: duplicate key"),
    ("ignored-key", '{"name": "a", "name": "b", "integration": "i", ' + _CREDS + "}", "name: duplicate key"),
    ("in-array", '{"tags": [{}, {"a": 1, "a": 2}], "integration": "i", ' + _CREDS + "}", "tags[1].a: duplicate key"),
    ("odd-key", '{"a b": 1, "a b": 2, "integration": "i", ' + _CREDS + "}", '"a b": duplicate key'),
    ("two", '{"integration": "i", "integration": "j", "credentials": {' + _TYPE_ID + ', "clientSecret": "' + SECRET + '", "clientSecret": "x"}}', "integration: duplicate key; credentials.clientSecret: duplicate key"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "expected"), [c[1:] for c in DUPLICATED_KEYS], ids=[c[0] for c in DUPLICATED_KEYS]
)
def test_duplicate_keys_are_refused_naming_their_path(tmp_path, text, expected):
    """A key given twice in one object, at any level, is a CredentialsError naming the file and the key's dotted path, never a value."""
    path = tmp_path / "creds.json"
    path.write_text(text)

    with pytest.raises(CredentialsError) as info:
        Credentials.from_file(path)

    assert str(info.value) == f"{path}: {expected}"
    assert SECRET not in str(info.value)
    assert "evil" not in str(info.value)


def test_duplicate_keys_are_refused_by_from_json():
    """from_json refuses duplicate keys too, with the same dotted path."""
    text = (
        '{"integration": "i", "credentials": {'
        + _TYPE_ID
        + ', "clientSecret": "x", "clientSecret": "y"}}'
    )

    with pytest.raises(CredentialsError, match=r"^credentials\.clientSecret: duplicate key$"):
        Credentials.from_json(text)


def test_several_bad_fields_are_all_named():
    """Every bad field is listed, not only the first."""
    data = {"integration": "", "credentials": {"type": "basic-auth", "clientId": ""}}

    with pytest.raises(CredentialsError) as info:
        Credentials.from_dict(data)

    message = str(info.value)
    assert "integration: must not be empty" in message
    assert "credentials.clientId: must not be empty" in message
    assert "credentials.clientSecret: required" in message


BAD_FILES = [
    ("empty", b"", "empty"),
    ("whitespace", b"  \n ", "empty"),
    ("not-json", b"clientSecret=" + SECRET.encode(), "not valid JSON"),
    ("truncated", json.dumps(oauth_dict()).encode()[:40], "not valid JSON"),
    ("array", b"[1, 2]", "expected a JSON object, got an array"),
    ("string", json.dumps(SECRET).encode(), "expected a JSON object, got a string"),
    ("number", b"42", "expected a JSON object, got a number"),
    ("null", b"null", "expected a JSON object, got null"),
    ("latin-1", '{"integration": "caf\xe9"}'.encode("latin-1"), "not valid UTF-8"),
    ("deep", b"[" * 60_000, "not valid JSON"),  # deeper than any recursion limit, under 64 KiB
]


@pytest.mark.parametrize(
    ("content", "expected"), [c[1:] for c in BAD_FILES], ids=[c[0] for c in BAD_FILES]
)
def test_bad_files_name_the_file(tmp_path, content, expected):
    """A file that is not a JSON object gives a CredentialsError naming it, without its content."""
    path = tmp_path / "creds.json"
    path.write_bytes(content)

    with pytest.raises(CredentialsError) as info:
        Credentials.from_file(path)

    assert str(info.value).startswith(f"{path}: ")
    assert expected in str(info.value)
    assert SECRET not in str(info.value)


def test_missing_file(tmp_path):
    """A missing file is named."""
    path = tmp_path / "absent.json"

    with pytest.raises(CredentialsError, match=r"absent\.json: no such file"):
        Credentials.from_file(path)


def test_directory(tmp_path):
    """A directory is not a credentials file."""
    with pytest.raises(CredentialsError, match="is a directory"):
        Credentials.from_file(tmp_path)


@pytest.mark.skipif(
    os.geteuid() == 0 if hasattr(os, "geteuid") else True, reason="root reads anything"
)
def test_unreadable_file(write_json):  # pragma: no cover - CI runs as root
    """A file without read permission is named."""
    path = write_json(oauth_dict())
    path.chmod(0)

    with pytest.raises(CredentialsError, match="permission denied"):
        Credentials.from_file(path)


def test_other_os_errors_are_wrapped(tmp_path):
    """Any other OSError (here: a name that is too long) becomes a CredentialsError."""
    path = tmp_path / ("x" * 5000)

    with pytest.raises(CredentialsError, match="cannot read"):
        Credentials.from_file(path)


def test_permission_error_is_wrapped(monkeypatch, write_json):
    """A PermissionError (unreadable file) becomes a CredentialsError naming the file."""
    path = write_json(oauth_dict())

    def deny(*args: object) -> int:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "open", deny)

    with pytest.raises(
        CredentialsError, match=r"creds|clarify-credentials.json: permission denied"
    ):
        Credentials.from_file(path)


@pytest.mark.parametrize("value", [None, 3, object()], ids=["none", "int", "object"])
def test_from_file_rejects_non_paths(value):
    """A value that is not a path gives a CredentialsError, not a TypeError."""
    with pytest.raises(CredentialsError, match="expected a path"):
        Credentials.from_file(value)


@pytest.mark.parametrize("value", [None, 3, ["{}"]], ids=["none", "int", "list"])
def test_from_json_rejects_non_text(value):
    """from_json of something that is neither str nor bytes is a CredentialsError."""
    with pytest.raises(CredentialsError, match="expected JSON text"):
        Credentials.from_json(value)


@pytest.mark.parametrize(
    "value", [None, [("integration", "x")], "text"], ids=["none", "pairs", "str"]
)
def test_from_dict_rejects_non_mappings(value):
    """from_dict of something that is not a mapping is a CredentialsError."""
    with pytest.raises(CredentialsError, match="expected a JSON object"):
        Credentials.from_dict(value)


def test_from_dict_accepts_any_mapping():
    """A read-only Mapping is as good as a dict."""
    from types import MappingProxyType

    assert Credentials.from_dict(MappingProxyType(oauth_dict())).integration == "test-integration"


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda c: st.lists(c) | st.dictionaries(st.text(), c),
        max_leaves=20,
    )
)
def test_any_json_value_gives_credentials_or_credentials_error(value):
    """Whatever JSON a file holds, the answer is Credentials or CredentialsError."""
    text = json.dumps(value)

    try:
        creds = Credentials.from_json(text)
    except CredentialsError as exc:
        assert str(exc)  # noqa: PT017 - either outcome is fine; an error must say why
    else:
        assert creds.integration


@given(st.binary(max_size=200))
def test_any_bytes_give_credentials_error(data):
    """Arbitrary bytes never raise a foreign exception."""
    with pytest.raises(CredentialsError):
        Credentials.from_json(data)


def test_from_dict_names_the_kind_of_odd_values():
    """A value that is not JSON at all is named by its type."""
    with pytest.raises(CredentialsError, match="got object"):
        Credentials.from_dict(object())  # type: ignore[arg-type]


# -- attacks an adversarial review found, beside the behaviour they attack --


@pytest.mark.parametrize(
    "api_url",
    [
        "https://api.clarify.io/v1/\r\nX-Injected: 1",
        "https://api.clar\tify.io/v1/",
        "https://api clarify.io/v1/",
        "https://api.clarify.io\x00.example/v1/",
    ],
)
def test_an_api_url_with_whitespace_or_control_characters_is_refused(api_url):
    """An apiUrl with CR/LF, tab, space or NUL is not an absolute http(s) URL: CredentialsError at load."""
    with pytest.raises(CredentialsError, match="apiUrl"):
        Credentials.from_dict(basic_file(api_url))


def test_api_url_given_under_both_names_is_ambiguous():
    """A file with both apiUrl and api_url (different hosts) is as ambiguous as a duplicate key: CredentialsError."""
    data = basic_file()
    data["api_url"] = "https://evil.example/v1/"
    with pytest.raises(CredentialsError):
        Credentials.from_dict(data)
