"""The one retry after a 401, as a ``requests`` response hook of the OAuth authenticator."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from requests.cookies import extract_cookies_to_jar

if TYPE_CHECKING:
    import requests

    from clarify_auth.transports.requests.authenticators import Authenticator

__all__ = ["retry_after_401"]

logger = logging.getLogger("clarify_auth")


def retry_after_401(
    authenticator: Authenticator, response: requests.Response, **kwargs: Any
) -> requests.Response:
    """After a 401 on our Bearer token: drop it, and send the request once more with a new one.

    A request whose body cannot be sent again gets its 401 back; the next
    request a new token. A 401 from another origin never touches the token.
    """
    request = response.request
    if response.status_code != 401 or getattr(request, "_clarify_auth_retried", False):  # noqa: PLR2004
        return response
    sent = request.headers.get("Authorization")
    # No header: requests stripped it on a redirect to another host. Never re-add it there.
    if sent is None or not sent.startswith("Bearer ") or not authenticator.signs(request.url or ""):
        return response
    authenticator.refused(sent)
    if request.body is not None and not isinstance(request.body, bytes | str):
        # A stream cannot be sent twice: return the 401, but the next request
        # gets a new token instead of the one the server just refused.
        logger.info("request to %s got 401; dropped the token (the body cannot be resent)",
                    request.url)  # fmt: skip
        return response
    logger.info("request to %s got 401; fetching a new token and retrying once", request.url)
    retry = request.copy()
    retry.headers["Authorization"] = authenticator.authorization()
    retry._clarify_auth_retried = True  # type: ignore[attr-defined]  # noqa: SLF001
    response.content  # noqa: B018 - read the body so the connection can be reused
    response.close()
    cookies = getattr(retry, "_cookies", None)
    if cookies is not None:
        extract_cookies_to_jar(cookies, request, response.raw)  # type: ignore[no-untyped-call]
        retry.prepare_cookies(cookies)
    if response.connection is None:  # pragma: no cover - only for hand-made responses
        return response
    new = response.connection.send(retry, **kwargs)
    new.history.append(response)
    new.request = retry
    return new
