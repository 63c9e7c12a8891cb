"""Type-checked by mypy --strict: clarify_auth.httpx reads well to a type checker."""

from __future__ import annotations

import httpx

import clarify_auth
import clarify_auth.httpx


def typed_httpx_usage(creds: clarify_auth.Credentials) -> None:
    """Exercise clarify_auth.httpx with its declared types."""
    auth: httpx.Auth = clarify_auth.httpx.ClarifyAuth(
        clarify_auth.Authenticator.from_credentials(creds)
    )
    with clarify_auth.httpx.Client(creds, api_version=None, timeout=(3.0, 10.0)) as client:
        response: httpx.Response = client.get("items")
        result: object = client.rpc("clarify.selectItems", {"query": {}})
        integration: str = client.integration
    with httpx.Client(auth=auth) as own:
        own.get(creds.api_url + "items")


async def typed_async_usage(creds: clarify_auth.Credentials) -> object:
    """The async client's rpc() is awaitable."""
    async with clarify_auth.httpx.AsyncClient(creds, timeout=httpx.Timeout(5.0)) as client:
        return await client.rpc("clarify.selectItems")
