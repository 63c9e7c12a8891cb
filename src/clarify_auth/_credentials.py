"""The credentials file: its pydantic models, loading and discovery."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
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

from clarify_auth._credentials_io import json_kind, parse_json_object, prefix, read_file
from clarify_auth._errors import CredentialsError
from clarify_auth._urls import normalise_base_url

__all__ = [
    "DEFAULT_API_URL",
    "DEFAULT_CREDENTIALS_FILE",
    "ENV_VAR",
    "BasicAuthCredentials",
    "ClientCredentials",
    "Credentials",
    "load_credentials",
]

DEFAULT_API_URL = "https://api.clarify.io/v1/"
DEFAULT_CREDENTIALS_FILE = "clarify-credentials.json"
ENV_VAR = "CLARIFY_CREDENTIALS"

_MODEL_CONFIG = ConfigDict(
    frozen=True,
    populate_by_name=True,
    alias_generator=to_camel,
    extra="ignore",
    # pydantic echoes input values in messages by default; inputs hold secrets.
    hide_input_in_errors=True,
)

_NonEmptyStr = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
_Secret = Annotated[SecretStr, Field(min_length=1)]


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
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise CredentialsError(prefix(source) + _describe(exc)) from None

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
    """Find and load the credentials file.

    The first that applies wins:

    1. ``path``, when given: that file alone (missing is an error, no fallback).
    2. The environment variable ``CLARIFY_CREDENTIALS``, when set and not empty:
       the file it names alone (missing is an error naming the variable).
    3. ``./clarify-credentials.json`` in the current directory.

    Raises:
        CredentialsError: Nothing was found (the message says where it looked),
            or the file found is not valid credentials.
    """
    if path is not None:
        return Credentials.from_file(path)
    configured = os.environ.get(ENV_VAR, "")
    if configured.strip():
        file = Path(configured).expanduser()
        if not file.exists():
            raise CredentialsError(f"{file}: no such file (named by ${ENV_VAR})")
        return Credentials.from_file(file)
    default = Path(DEFAULT_CREDENTIALS_FILE)
    if default.exists():
        return Credentials.from_file(default)
    raise CredentialsError(
        f"no Clarify credentials found: ${ENV_VAR} is not set and "
        f"./{DEFAULT_CREDENTIALS_FILE} does not exist in {Path.cwd()}. "
        "Download the credentials file from the integration's page in Clarify "
        f"and save it as ./{DEFAULT_CREDENTIALS_FILE}, or set ${ENV_VAR} to its path."
    )


_TYPES = "'client-credentials' or 'basic-auth'"

_REASONS = {
    "missing": "required",
    "string_type": "must be a string",
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
