"""Type-checked by mypy --strict: clarify_auth.pyclarify's own signatures read well."""

from __future__ import annotations

import clarify_auth
import clarify_auth.pyclarify


def typed_pyclarify_usage(creds: clarify_auth.Credentials) -> None:
    """Build a client the ways the contract allows; its session is a ClarifySession."""
    with clarify_auth.pyclarify.Client(creds, api_version=None, timeout=(3.0, 10.0)) as client:
        session: clarify_auth.ClarifySession = client.session
        client.close()
    clarify_auth.pyclarify.Client("clarify-credentials.json", api_version="1.1")
    clarify_auth.pyclarify.Client()
