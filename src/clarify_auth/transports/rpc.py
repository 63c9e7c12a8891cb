"""JSON-RPC 2.0 over HTTP as Clarify speaks it, for every transport: versions, results, errors."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from clarify_auth._errors import ConfigurationError, RPCError, RPCResponseError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = ["DEFAULT_API_VERSION", "checked_api_version", "rpc_request", "rpc_result"]

DEFAULT_API_VERSION = "1.1"
_API_VERSION = re.compile(r"[0-9]+\.[0-9]+(?:(?:alpha|beta|rc)[0-9]+)?")  # ASCII digits only


def checked_api_version(api_version: object) -> str | None:
    """Return ``api_version`` if it is ``MAJOR.MINOR[alphaN|betaN|rcN]`` or ``None``.

    Raises:
        ConfigurationError: Anything else.
    """
    if api_version is None:
        return None
    if not isinstance(api_version, str) or not _API_VERSION.fullmatch(api_version):
        raise ConfigurationError(
            "api_version must look like '1.1', '1.1beta1', '2.0alpha3' or '1.2rc1' "
            "(MAJOR.MINOR, optionally followed by alphaN, betaN or rcN), or be None"
        )
    return api_version


def rpc_request(method: str, params: Mapping[str, Any] | None, request_id: int) -> dict[str, Any]:
    """The JSON-RPC 2.0 request object."""
    return {"jsonrpc": "2.0", "method": method, "id": request_id, "params": params or {}}


def rpc_result(
    method: str, *, status: int, content_type: str | None, read_json: Callable[[], Any]
) -> Any:
    """The ``result`` of a 2xx JSON-RPC answer, or the error it carries.

    Raises:
        RPCError: The answer carried a JSON-RPC ``error`` member.
        RPCResponseError: The answer was not a JSON-RPC response.
    """
    try:
        body = read_json()
    except ValueError:
        raise RPCResponseError(
            f"{method}: the answer ({status}, {content_type or 'no content type'}) is not JSON"
        ) from None
    except RecursionError:
        raise RPCResponseError(f"{method}: the answer is JSON nested too deeply") from None
    if not isinstance(body, dict):
        raise RPCResponseError(f"{method}: the answer is not a JSON-RPC response object")
    if body.get("error") is not None:
        raise _rpc_error(method, body["error"])
    if "result" not in body:
        raise RPCResponseError(f"{method}: the answer has neither result nor error")
    return body["result"]


def _rpc_error(method: str, error: object) -> RPCError:
    if not isinstance(error, dict):
        return RPCResponseError(f"{method}: the answer's error member is not an object", error)
    code = error.get("code")
    message = error.get("message")
    return RPCError(
        code if isinstance(code, int) and not isinstance(code, bool) else None,
        message if isinstance(message, str) else f"{method} failed",
        error.get("data"),
    )
