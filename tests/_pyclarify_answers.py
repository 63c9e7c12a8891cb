"""Answers in the schemas Clarify's API 1.1 documents, for pyclarify's methods on FakeClarify.

``answer_like_clarify(fake)`` makes a ``FakeClarify`` answer ``clarify.selectItems``
with one item, and ``integration.insert`` and ``integration.saveSignals`` with
the summaries Clarify sends, built from the request's own input IDs.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clarify_auth.testing import FakeClarify

ITEM_ID = "c5i41fjsbu8cohpkcpvg"  # 20 characters of [a-v0-9], as Clarify's IDs are
INTEGRATION = "c5i41fjsbu8cohpkcpv0"  # pyclarify checks the integration ID's form too
_WHEN = "2026-11-01T21:50:06Z"


def _resource_id(text: str) -> str:
    digits = hashlib.sha1(text.encode()).digest()  # noqa: S324 - an ID, not security
    return "".join("0123456789abcdefghijklmnopqrstuv"[b % 32] for b in digits[:20])


def _meta() -> dict[str, Any]:
    return {
        "annotations": {},
        "attributesHash": "5e2f2ddbb4dcbe6a3df8b5e45cc2d1e4ef4ff4b0",
        "relationshipsHash": "5a6a5bb5c4ba6a8e1bc3e5c0fbbf2a8ad9c7d83d",
        "createdAt": _WHEN,
        "updatedAt": _WHEN,
    }


def item() -> dict[str, Any]:
    """One item, as clarify.selectItems returns it."""
    return {
        "type": "items",
        "id": ITEM_ID,
        "meta": _meta(),
        "attributes": {
            "name": "Boiler temperature",
            "description": "",
            "labels": {"site": ["north"]},
            "engUnit": "°C",
            "enumValues": {},
            "sourceType": "measurement",
            "valueType": "numeric",
            "sampleInterval": None,
            "gapDetection": "PT5M",
            "visible": True,
        },
        "relationships": {},
    }


def select_items(params: Any) -> dict[str, Any]:
    return {
        "meta": {"total": -1, "format": {"dataAsArray": True, "groupIncludedByType": True}},
        "data": [item()],
    }


def insert(params: Any) -> dict[str, Any]:
    """integration.insert: the signal each input ID went to, and whether it was created."""
    return {
        "signalsByInput": {
            input_id: {"id": _resource_id(input_id), "created": True}
            for input_id in params["data"]["series"]
        }
    }


def save_signals(params: Any) -> dict[str, Any]:
    """integration.saveSignals: each input ID's signal, created or updated."""
    return {
        "signalsByInput": {
            input_id: {"id": _resource_id(input_id), "created": True, "updated": False}
            for input_id in params["signalsByInput"]
        }
    }


def answer_like_clarify(fake: FakeClarify) -> FakeClarify:
    fake.on("clarify.selectItems", handler=select_items)
    fake.on("integration.insert", handler=insert)
    fake.on("integration.saveSignals", handler=save_signals)
    return fake
