"""Exceptions raised by clarify-auth.

Everything the SDK raises itself derives from one root, so that
``except ClarifyAuthError`` catches all of it::

    ClarifyAuthError(Exception)
    ├── CredentialsError(ClarifyAuthError, ValueError)   a credentials file or value is unusable
    ├── ConfigurationError(ClarifyAuthError, ValueError) an option passed to the SDK is invalid
    │   └── InsecureTransportError                       credentials would travel over plain http
    ├── TokenError(ClarifyAuthError)                     no access token could be obtained
    └── RPCError(ClarifyAuthError)                       a JSON-RPC call returned an error member
        └── RPCResponseError                             the answer was not a JSON-RPC response

Exceptions from ``requests`` raised by the user's own API calls (connection
errors, ``HTTPError``) pass through unwrapped. No message here ever contains a
secret: messages name a file, a field or a URL, never a value.
"""

from __future__ import annotations

from typing import TypeVar

__all__ = [
    "ClarifyAuthError",
    "ConfigurationError",
    "CredentialsError",
    "InsecureTransportError",
    "RPCError",
    "RPCResponseError",
    "TokenError",
    "shortened",
]


class ClarifyAuthError(Exception):
    """Root of every exception that clarify-auth raises itself."""


class CredentialsError(ClarifyAuthError, ValueError):
    """Credentials could not be loaded or are invalid.

    The message names the file (when there is one) and the dotted JSON path of
    each bad field, for example
    ``clarify-credentials.json: credentials.clientSecret: required``.
    """


class ConfigurationError(ClarifyAuthError, ValueError):
    """An option passed to the SDK is invalid (a URL, a timeout, a version)."""


class InsecureTransportError(ConfigurationError):
    """Credentials would be sent over plain ``http://`` to a host that is not loopback."""


class TokenError(ClarifyAuthError):
    """No access token could be obtained from the token endpoint.

    Attributes:
        status_code: HTTP status of the last answer, or ``None`` after a timeout
            or a dropped connection.
        error: The RFC 6749 ``error`` code (``"invalid_client"``, ...), or
            ``None`` when the body was not an RFC 6749 error.
        error_description: The RFC 6749 ``error_description``, or ``None``.
        retryable: Whether the failure was transient (a later call may succeed).
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        error: str | None = None,
        error_description: str | None = None,
        retryable: bool = False,
    ) -> None:
        """Create the error; the keyword arguments become attributes."""
        super().__init__(message)
        self.status_code = status_code
        self.error = error
        self.error_description = error_description
        self.retryable = retryable

    def __reduce__(self) -> tuple[object, ...]:
        """Pickle with the keyword attributes (exceptions cross process pools)."""
        return (
            _rebuild_token_error,
            (
                type(self),
                str(self),
                self.status_code,
                self.error,
                self.error_description,
                self.retryable,
            ),
        )


def _rebuild_token_error(
    cls: type[TokenError],
    message: str,
    status_code: int | None,
    error: str | None,
    error_description: str | None,
    retryable: bool,  # noqa: FBT001 - positional for pickle
) -> TokenError:
    return cls(
        message,
        status_code=status_code,
        error=error,
        error_description=error_description,
        retryable=retryable,
    )


class RPCError(ClarifyAuthError):
    """A JSON-RPC call returned an ``error`` member.

    Attributes:
        code: The JSON-RPC error code (an ``int``), or ``None`` when unknown.
        message: The JSON-RPC error message.
        data: The JSON-RPC error ``data`` member, or ``None``.
    """

    def __init__(self, code: int | None, message: str, data: object = None) -> None:
        """Create the error from the members of a JSON-RPC error object."""
        super().__init__(f"{message} (code {code})" if code is not None else message)
        self.code = code
        self.message = message
        self.data = data

    def __reduce__(self) -> tuple[object, ...]:
        """Pickle with code, message and data."""
        return (type(self), (self.code, self.message, self.data))


class RPCResponseError(RPCError):
    """The answer to a JSON-RPC call was not a valid JSON-RPC response."""

    def __init__(self, message: str, data: object = None) -> None:
        """Create the error; ``code`` is ``None`` since the server gave none."""
        super().__init__(None, message, data)

    def __reduce__(self) -> tuple[object, ...]:
        """Pickle with message and data."""
        return (type(self), (self.message, self.data))


_E = TypeVar("_E", bound=BaseException)


def shortened(error: _E) -> _E:
    """``error`` with no traceback below the SDK's public call, nor below its cause.

    Raised at the boundary (``raise shortened(exc) from exc.__cause__``), a
    rejected secret or an unreachable endpoint shows the user's call and the
    SDK's one raise, not the lifecycle, the retries and ``requests``' hooks in
    between. The direct cause keeps its type and message and prints without
    the chain below it (still there in ``__context__``); ``-v`` tells the rest.
    An error shared by many waiting threads stops collecting theirs.
    """
    if error.__cause__ is not None:
        # Its message says what happened (urllib3's and the socket's stay in __context__).
        error.__cause__.__suppress_context__ = True
    seen: set[int] = set()
    link = error.__cause__ or error.__context__
    while link is not None and id(link) not in seen:  # the chain below: urllib3's, socket's
        seen.add(id(link))
        link.with_traceback(None)
        link = link.__cause__ or link.__context__
    return error.with_traceback(None)
