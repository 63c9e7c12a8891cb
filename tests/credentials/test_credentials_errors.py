"""Every way loading credentials fails is a CredentialsError that reaches no secret."""

from __future__ import annotations

import errno
import json
import os
import traceback
from pathlib import Path
from typing import Any

import pydantic
import pytest

from _hostile import basic_file
from clarify_auth import (
    BasicAuth,
    Credentials,
    CredentialsError,
    OAuthClientCredentials,
    load_credentials,
)
from conftest import SECRET, basic_dict, oauth_dict


def everything_reachable(exc: BaseException) -> str:
    """The text of an exception and of every exception chained to it, suppressed ones too.

    That is what a debugger, an error tracker or a careless ``except`` can show:
    str, repr and args, the formatted traceback, a JSON decoder's ``doc``, a
    codec's ``object``, and a ValidationError's input.
    """
    parts = ["".join(traceback.format_exception(exc))]
    pending: list[BaseException] = [exc]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        parts += [str(current), repr(current), repr(current.args), repr(vars(current))]
        parts += [repr(getattr(current, name, None)) for name in ("doc", "object")]
        if isinstance(current, pydantic.ValidationError):
            parts.append(repr(current.errors()))
        pending += [e for e in (current.__cause__, current.__context__) if e is not None]
    return "\n".join(parts)


def _with_credentials(**fields: Any) -> dict[str, Any]:
    data = oauth_dict()
    data["credentials"] = {**data["credentials"], **fields}
    return data


SECRET_DOCUMENTS = [
    ("basic-id-holds-pair", json.dumps({**basic_dict(), "credentials": {**basic_dict()["credentials"], "clientId": f"test-integration:{SECRET}"}})),
    ("duplicate-secret", json.dumps(oauth_dict())[:-2] + f', "clientSecret": "{SECRET}"}}}}'),
    ("api-url-query", json.dumps(oauth_dict(apiUrl=f"https://api.clarify.io/v1/?key={SECRET}"))),
    ("api-url-fragment", json.dumps(oauth_dict(apiUrl=f"https://api.clarify.io/v1/#{SECRET}"))),
    ("api-url-userinfo", json.dumps(oauth_dict(apiUrl=f"https://u:{SECRET}@api.clarify.io/v1/"))),
    ("secret-as-type", json.dumps(_with_credentials(type=SECRET))),
    ("secret-as-credentials", json.dumps(oauth_dict(credentials=SECRET))),
    ("secret-not-a-string", json.dumps(_with_credentials(clientSecret=[SECRET]))),
    ("integration-empty", json.dumps(oauth_dict(integration=""))),
    ("not-json", f"clientSecret: {SECRET}"),
    ("truncated", json.dumps(oauth_dict())[:-3]),
    ("huge-number", json.dumps(oauth_dict())[:-1] + ', "n": 1' + "0" * 5000 + "}"),
    ("array", json.dumps([oauth_dict()])),
]  # fmt: skip


@pytest.mark.parametrize(
    "text", [c[1] for c in SECRET_DOCUMENTS], ids=[c[0] for c in SECRET_DOCUMENTS]
)
def test_file_errors_reach_no_secret(tmp_path, text):
    """A bad file holding the secret gives a CredentialsError from which the secret cannot be reached, chained exceptions included."""
    path = tmp_path / "creds.json"
    path.write_text(text)

    with pytest.raises(CredentialsError) as info:
        Credentials.from_file(path)

    assert str(info.value).startswith(f"{path}: ")
    assert SECRET not in everything_reachable(info.value)


@pytest.mark.parametrize(
    "text", [c[1] for c in SECRET_DOCUMENTS], ids=[c[0] for c in SECRET_DOCUMENTS]
)
def test_json_variable_errors_reach_no_secret(monkeypatch, text):
    """The same documents in $CLARIFY_CREDENTIALS_JSON give errors naming the variable and reaching no secret."""
    monkeypatch.delenv("CLARIFY_CREDENTIALS", raising=False)
    monkeypatch.setenv("CLARIFY_CREDENTIALS_JSON", text)

    with pytest.raises(CredentialsError) as info:
        load_credentials()

    assert str(info.value).startswith("$CLARIFY_CREDENTIALS_JSON: ")
    assert SECRET not in everything_reachable(info.value)


def test_undecodable_bytes_reach_no_secret():
    """Bytes that are not UTF-8 give a position, and the codec's error (which holds the bytes) is not chained."""
    data = json.dumps(oauth_dict()).encode().replace(b"test-secret", b"\xfftest-secret")

    with pytest.raises(
        CredentialsError, match=r"not valid UTF-8 \(bad byte at position \d+\)"
    ) as info:
        Credentials.from_json(data)

    assert SECRET not in everything_reachable(info.value)


def test_from_dict_chains_no_validation_error():
    """from_dict's CredentialsError carries no ValidationError, whose errors() would hold the input."""
    data = oauth_dict(apiUrl=f"https://api.clarify.io/v1/?{SECRET}")

    with pytest.raises(CredentialsError) as info:
        Credentials.from_dict(data)

    assert info.value.__cause__ is None
    assert info.value.__context__ is None
    assert SECRET not in everything_reachable(info.value)


MODEL_VALIDATE_SECRETS = [
    ("basic-id-holds-pair", {**basic_dict(), "credentials": {**basic_dict()["credentials"], "clientId": f"test-integration:{SECRET}"}}),
    ("api-url-query", oauth_dict(apiUrl=f"https://api.clarify.io/v1/?{SECRET}")),
    ("api-url-empty-fragment", oauth_dict(apiUrl=f"https://{SECRET}.example/#")),
    ("secret-as-type", _with_credentials(type=SECRET)),
]  # fmt: skip


@pytest.mark.parametrize(
    "data", [c[1] for c in MODEL_VALIDATE_SECRETS], ids=[c[0] for c in MODEL_VALIDATE_SECRETS]
)
def test_model_validate_errors_show_no_secret(data):
    """model_validate's ValidationError shows no secret in its message, repr or traceback."""
    with pytest.raises(pydantic.ValidationError) as info:
        Credentials.model_validate(data)

    shown = str(info.value) + repr(info.value) + "".join(traceback.format_exception(info.value))
    assert SECRET not in shown


# -- never a foreign exception ----------------------------------------------------


class _BadFspath:
    def __fspath__(self) -> Any:
        return 3


def _fail_with(exc: BaseException):
    def fail(*args: object, **kwargs: object) -> Any:
        raise exc

    return fail


def test_nul_in_path(tmp_path):
    """A path with a NUL character is a CredentialsError, not os.open's ValueError."""
    with pytest.raises(CredentialsError, match=r"not a valid path \(contains a NUL character\)"):
        Credentials.from_file(str(tmp_path / "a\0b.json"))


@pytest.mark.parametrize(
    "value", [b"clarify-credentials.json", _BadFspath()], ids=["bytes", "fspath-returns-int"]
)
def test_paths_that_are_not_text(value):
    """A bytes path, or an object whose __fspath__ returns neither str nor bytes, is a CredentialsError."""
    with pytest.raises(CredentialsError, match=r"expected a path \(str or os.PathLike\)"):
        Credentials.from_file(value)


def test_home_that_cannot_be_found(monkeypatch, tmp_path):
    """A ~ path when no home directory can be found is 'no such file', not Path's RuntimeError."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(Path, "expanduser", _fail_with(RuntimeError("no home")))

    with pytest.raises(CredentialsError) as info:
        Credentials.from_file("~/clarify-credentials.json")

    assert str(info.value) == f"{Path.cwd() / '~' / 'clarify-credentials.json'}: no such file"


def test_read_error_after_open(monkeypatch, write_json):
    """An I/O error while reading is a CredentialsError naming the file."""
    path = write_json(oauth_dict())
    monkeypatch.setattr(os, "read", _fail_with(OSError(errno.EIO, "Input/output error")))

    with pytest.raises(CredentialsError) as info:
        Credentials.from_file(path)

    assert str(info.value) == f"{path}: cannot read (Input/output error)"


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (IsADirectoryError(errno.EISDIR, "Is a directory"), "is a directory, not a regular file"),
        (OSError(errno.ENXIO, "No such device or address"), "cannot read (No such device or address)"),
        (OSError(errno.ELOOP, "Too many levels of symbolic links"), "cannot read (Too many levels of symbolic links)"),
    ],
    ids=["is-a-directory", "no-device-gone", "link-loop"],
)  # fmt: skip
def test_open_errors(monkeypatch, tmp_path, error, expected):
    """Whatever os.open raises (Windows' IsADirectoryError, ENXIO for a file since removed, ELOOP) is a CredentialsError."""
    path = tmp_path / "absent.json"
    monkeypatch.setattr(os, "open", _fail_with(error))

    with pytest.raises(CredentialsError) as info:
        Credentials.from_file(path)

    assert str(info.value) == f"{path}: {expected}"


def test_discovery_that_cannot_look_at_the_default_file(monkeypatch, tmp_path):
    """When ./clarify-credentials.json cannot even be looked at, reading it says why: a CredentialsError."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CLARIFY_CREDENTIALS", raising=False)
    monkeypatch.delenv("CLARIFY_CREDENTIALS_JSON", raising=False)
    monkeypatch.setattr(Path, "exists", _fail_with(PermissionError(errno.EACCES, "denied")))

    with pytest.raises(CredentialsError, match=r"clarify-credentials\.json: no such file"):
        load_credentials()


def test_lone_surrogates_are_named_as_invalid_text():
    """A string with a lone surrogate (valid JSON, invalid Unicode) is a CredentialsError naming the field."""
    text = json.dumps(oauth_dict(integration="\ud800"))

    with pytest.raises(CredentialsError, match=r"^integration: must be valid Unicode text$"):
        Credentials.from_json(text)


# -- attacks an adversarial review found, beside the behaviour they attack --


@pytest.mark.parametrize("kind", ["basic-auth", "client-credentials"])
def test_a_client_secret_that_is_not_unicode_text_is_a_credentials_error(kind):
    r"""A clientSecret with a lone surrogate (valid JSON "\ud800") is a CredentialsError at load."""
    text = json.dumps(basic_file()).replace("test-secret-r2", "test-secret-r2\\ud800")
    text = text.replace("basic-auth", kind)

    with pytest.raises(CredentialsError, match=r"credentials\.clientSecret: must be valid Unicode"):
        Credentials.from_json(text)


@pytest.mark.parametrize("build", ["basic", "oauth"])
def test_a_non_unicode_secret_given_directly_is_a_credentials_error(build):
    """BasicAuth and OAuthClientCredentials refuse a secret that is not text, naming no value."""
    secret = "test-secret-r2\ud800"

    def make():
        if build == "basic":
            return BasicAuth("u", secret)
        return OAuthClientCredentials(
            "c", secret, token_url="https://x.example/t", audience="https://x.example/"
        )

    with pytest.raises(CredentialsError, match="valid Unicode"):
        make()
