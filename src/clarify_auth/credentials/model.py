"""The credentials file: its pydantic models, loading and discovery."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    SecretStr,
    StringConstraints,
    Tag,
    ValidationError,
    field_validator,
)
from pydantic.alias_generators import to_camel

from clarify_auth._errors import CredentialsError
from clarify_auth._urls import normalise_base_url
from clarify_auth.credentials.files import (
    absolute_path,
    json_kind,
    parse_json_object,
    prefix,
    read_file,
)

__all__ = [
    "DEFAULT_API_URL",
    "DEFAULT_CREDENTIALS_FILE",
    "ENV_VAR",
    "ENV_VAR_JSON",
    "BasicAuthCredentials",
    "ClientCredentials",
    "Credentials",
    "load_credentials",
]

DEFAULT_API_URL = "https://api.clarify.io/v1/"
DEFAULT_CREDENTIALS_FILE = "clarify-credentials.json"
ENV_VAR = "CLARIFY_CREDENTIALS"  # the path of a credentials file
ENV_VAR_JSON = "CLARIFY_CREDENTIALS_JSON"  # the contents of one

_MODEL_CONFIG = ConfigDict(
    frozen=True,
    populate_by_name=True,
    alias_generator=to_camel,
    extra="ignore",
    # pydantic echoes input values in messages by default; inputs hold secrets.
    hide_input_in_errors=True,
)

_NonEmptyStr = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


def _encodable(value: SecretStr) -> SecretStr:
    # A lone surrogate ("\ud800") is valid JSON but no text: it would fail far
    # from here, when the secret is first encoded, in an error that holds it.
    try:
        value.get_secret_value().encode("utf-8")
    except UnicodeEncodeError:
        msg = "must be valid Unicode text"
        raise ValueError(msg) from None
    return value


_Secret = Annotated[SecretStr, Field(min_length=1), AfterValidator(_encodable)]


class ClientCredentials(BaseModel):
    """OAuth 2.0 client credentials (``"type": "client-credentials"``)."""

    model_config = _MODEL_CONFIG

    type: Literal["client-credentials"] = "client-credentials"
    client_id: _NonEmptyStr
    client_secret: _Secret


class BasicAuthCredentials(BaseModel):
    """Basic Auth credentials (``"type": "basic-auth"``).

    ``client_id`` is the Basic Auth user name (the integration ID) and
    ``client_secret`` the password. The same pair logs in to Clarify's MQTT broker.
    """

    model_config = _MODEL_CONFIG

    type: Literal["basic-auth"] = "basic-auth"
    client_id: _NonEmptyStr
    client_secret: _Secret

    @field_validator("client_id")
    @classmethod
    def _no_colon_in_user_name(cls, value: str) -> str:
        if ":" in value:
            # RFC 7617: the user name ends at the first ':', so the server would
            # read a different user and password than the file holds.
            msg = "must not contain ':' (a Basic Auth user name ends at the first ':')"
            raise ValueError(msg)
        return value


_CREDENTIAL_TYPES = ("client-credentials", "basic-auth")


def _credential_type(value: object) -> str | None:
    """The union tag; anything unknown is None, so pydantic never quotes the value.

    pydantic's own discriminator echoes an unknown tag in its message even with
    hide_input_in_errors, and a mistaken paste could put the secret there.
    """
    tag = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return tag if tag in _CREDENTIAL_TYPES else None


_CredentialsUnion = Annotated[
    Annotated[ClientCredentials, Tag("client-credentials")]
    | Annotated[BasicAuthCredentials, Tag("basic-auth")],
    Discriminator(
        _credential_type,
        custom_error_type="credentials_type",
        custom_error_message="credentials must be an object whose type is "
        "'client-credentials' or 'basic-auth'",
    ),
]


class Credentials(BaseModel):
    """The contents of a Clarify credentials file.

    Load one with :meth:`from_file`, :meth:`from_json`, :meth:`from_dict` or
    :func:`load_credentials`; each raises :class:`CredentialsError` naming the
    file and field on bad input. Both the camelCase JSON names and snake_case
    names are accepted; unknown keys are ignored. The secret is a
    ``pydantic.SecretStr`` and never shows in ``repr``.

    Example:
        >>> creds = Credentials.from_dict({
        ...     "integration": "test-integration",
        ...     "credentials": {"type": "client-credentials",
        ...                     "clientId": "test-client", "clientSecret": "test-secret-x"},
        ... })
        >>> creds.token_url
        'https://api.clarify.io/v1/oauth/token'
    """

    model_config = _MODEL_CONFIG

    api_url: str = DEFAULT_API_URL
    integration: _NonEmptyStr
    credentials: _CredentialsUnion

    @field_validator("api_url")
    @classmethod
    def _normalise_api_url(cls, value: str) -> str:
        return normalise_base_url(value)

    @property
    def token_url(self) -> str:
        """The OAuth 2.0 token endpoint, ``api_url + "oauth/token"``."""
        return self.api_url + "oauth/token"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str | None = None) -> Credentials:
        """Validate an already-parsed JSON object.

        Args:
            data: The parsed object.
            source: What to name in error messages (a file name), if anything.

        Raises:
            CredentialsError: The object is not valid credentials.
        """
        if not isinstance(data, Mapping):
            raise CredentialsError(
                prefix(source) + f"expected a JSON object, got {json_kind(data)}"
            )
        if not isinstance(data, dict):
            data = dict(data)
        twice = _named_twice(data)
        if twice:
            problems = "; ".join(
                f"{path}: given under both its JSON and Python names" for path in twice
            )
            raise CredentialsError(prefix(source) + problems)
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = _describe(exc)
        # Raised out here, not in the handler, so that the ValidationError is not
        # chained on as __context__: its errors() hold the input, secret included.
        raise CredentialsError(prefix(source) + problems)

    @classmethod
    def from_json(cls, text: str | bytes | bytearray, *, source: str | None = None) -> Credentials:
        """Parse and validate the JSON text of a credentials file (a BOM is tolerated).

        Raises:
            CredentialsError: The text is not JSON, not an object, has a key
                given twice, or is not valid credentials.
        """
        data = parse_json_object(text, source=source)
        return cls.from_dict(data, source=source)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Credentials:
        """Read a credentials file as UTF-8 (a BOM is tolerated).

        Only a regular file of at most 64 KiB is read: a FIFO, a device or a
        huge file is refused at once, never a hang or a memory blow-up.

        Raises:
            CredentialsError: The file is missing, unreadable, not a regular
                file, too big, or not valid credentials. The message names the
                file by its absolute path.
        """
        name, data = read_file(path)
        return cls.from_json(data, source=name)


def load_credentials(path: str | os.PathLike[str] | None = None) -> Credentials:
    """Find and load the credentials.

    The first that applies wins:

    1. ``path``, when given: that file alone (missing is an error, no fallback).
    2. The environment variable ``CLARIFY_CREDENTIALS``, when set and not blank:
       the file it names alone (missing is an error naming the variable).
    3. The environment variable ``CLARIFY_CREDENTIALS_JSON``, when set and not
       blank: the file's contents themselves, for containers and CI where a
       secret comes as a variable (errors name the variable and the field,
       never the value).
    4. ``./clarify-credentials.json`` in the current directory.

    Both variables set is an error: which one was meant is anybody's guess.

    Raises:
        CredentialsError: Nothing was found (the message says where it looked:
            both variables and the absolute path of ./clarify-credentials.json),
            both variables are set, or what was found is not valid credentials.
    """
    if path is not None:
        return Credentials.from_file(path)
    named = os.environ.get(ENV_VAR, "")
    inline = os.environ.get(ENV_VAR_JSON, "")
    if named.strip() and inline.strip():
        raise CredentialsError(
            f"both ${ENV_VAR} and ${ENV_VAR_JSON} are set; "
            "set only one: the file's path or its contents"
        )
    if named.strip():
        name, data = read_file(named, named_by=ENV_VAR)
        return Credentials.from_json(data, source=name)
    if inline.strip():
        return _from_inline_json(inline)
    default = Path(absolute_path(DEFAULT_CREDENTIALS_FILE))
    if _present(default):
        return Credentials.from_file(default)
    looked = f"{default} does not exist"
    if not default.is_absolute():
        looked = f"./{DEFAULT_CREDENTIALS_FILE} is nowhere: the current directory was removed"
    raise CredentialsError(
        f"no Clarify credentials found: {_unset(ENV_VAR)}, {_unset(ENV_VAR_JSON)}, "
        f"and {looked}. Download the credentials file from the "
        "integration's page in Clarify and save it there, set "
        f"${ENV_VAR} to its path, or set ${ENV_VAR_JSON} to its contents."
    )


def _from_inline_json(text: str) -> Credentials:
    try:
        return Credentials.from_json(text, source=f"${ENV_VAR_JSON}")
    except CredentialsError as exc:
        if text.lstrip("\ufeff \t\r\n").startswith("{"):
            raise
        problem = str(exc)
    # Most likely a path where the contents belong; say so without showing it.
    hint = f"${ENV_VAR_JSON} holds the file's contents (to name the file, set ${ENV_VAR})"
    raise CredentialsError(f"{problem}; {hint}")


def _present(path: Path) -> bool:
    try:
        return path.exists() or path.is_symlink()  # a broken link is reported as such
    except OSError:  # cannot even look (a permission): reading it will say why
        return True


def _unset(variable: str) -> str:
    return f"${variable} is empty" if variable in os.environ else f"${variable} is not set"


def _named_twice(data: dict[str, Any]) -> list[str]:
    """Fields given as both ``apiUrl`` and ``api_url`` (say): which one wins is a guess."""

    def both(fields: Any, where: dict[str, Any], prefix: str) -> list[str]:
        return [
            prefix + to_camel(field)
            for field in fields
            if field != to_camel(field) and field in where and to_camel(field) in where
        ]

    found = both(Credentials.model_fields, data, "")
    inner = data.get("credentials")
    if isinstance(inner, dict):
        found += both(ClientCredentials.model_fields, inner, "credentials.")
    return found


_TYPES = "'client-credentials' or 'basic-auth'"

_REASONS = {
    "missing": "required",
    "string_type": "must be a string",
    "string_unicode": "must be valid Unicode text",
    "string_too_short": "must not be empty",
    "too_short": "must not be empty",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "dict_type": "must be an object",
    "literal_error": f"must be {_TYPES}",
}


def _describe(exc: ValidationError) -> str:
    """Turn a ValidationError into 'path: reason; ...' without any input value."""
    problems = []
    # The input is looked at to choose words, never shown.
    for error in exc.errors(include_url=False, include_context=False):
        path = _dotted(error["loc"])
        kind = error["type"]
        if kind == "credentials_type":
            given = error.get("input")
            if not isinstance(given, dict):
                problems.append(f"{path}: must be an object")
            elif "type" not in given:
                problems.append(f"{path}.type: required ({_TYPES})")
            else:
                problems.append(f"{path}.type: unknown type, expected {_TYPES}")
            continue
        if kind == "value_error":
            # Our own validators' messages; they never quote the value.
            reason = str(error["msg"]).removeprefix("Value error, ")
        else:
            reason = _REASONS.get(kind, "invalid")
        problems.append(f"{path}: {reason}")
    return "; ".join(problems)


def _dotted(loc: tuple[int | str, ...]) -> str:
    """JSON path of an error location, in the file's camelCase, without union tags."""
    parts = [
        to_camel(part) if isinstance(part, str) else f"[{part}]"
        for part in loc
        if part not in {"client-credentials", "basic-auth"}
    ]
    return ".".join(parts) if parts else "(top level)"
