"""Clarify for ``httpx``, sync and async (extra ``httpx``).

``pip install 'clarify-auth[httpx]'``. Three names:

- :class:`ClarifyAuth`: an ``httpx.Auth`` around any
  :class:`~clarify_auth.Authenticator`, for your own ``httpx.Client`` or
  ``httpx.AsyncClient``;
- :class:`Client` and :class:`AsyncClient`: the ``httpx`` counterparts of
  :class:`~clarify_auth.ClarifySession`, with ``base_url`` set to the API,
  ``X-API-Version`` on every request and ``rpc()``.

They share the token with everything else in the process that uses the same
credentials (one token request for a ``ClarifySession``, a ``Client`` and an
``AsyncClient`` together), send credentials only to the API's origin, and
retry once after a 401. ``Client`` and ``AsyncClient`` send their token
requests through their own transport (a ``ClarifyAuth`` does when given
``client=``); the async fetch awaits on the event loop with no thread and is
bound to no event loop: it works across ``asyncio.run()`` calls and under trio.

Example:
    >>> import clarify_auth.httpx
    >>> with clarify_auth.httpx.Client("clarify-credentials.json") as client:  # doctest: +SKIP
    ...     items = client.rpc("clarify.selectItems", {"query": {"limit": 10}})
"""

from __future__ import annotations

try:
    import anyio
    import httpx
except ImportError:  # pragma: no cover - tested in a subprocess without httpx
    # One traceback that names the extra, the thing to install, not which of its
    # packages happened to be missing first.
    msg = "clarify_auth.httpx needs the 'httpx' extra: pip install 'clarify-auth[httpx]'"
    raise ImportError(msg, name="clarify_auth.httpx") from None

from clarify_auth.transports.httpx.auth import ClarifyAuth
from clarify_auth.transports.httpx.clients import AsyncClient, Client

__all__ = ["AsyncClient", "ClarifyAuth", "Client"]

del anyio, httpx  # imported above only to tell a missing extra apart
