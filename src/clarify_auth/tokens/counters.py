"""What one client's token cost a process: fetches, hits per tier, store failures."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TokenCounters"]


@dataclass(frozen=True, slots=True)
class TokenCounters:
    """What one client's token cost this process so far (``authenticator.counters``).

    Attributes:
        fetches: Tokens this process fetched from the token endpoint (a fetch
            the endpoint made retry counts once).
        process_hits: Times a token held in the process was used (no I/O).
        store_hits: Times a token was taken from the store (another process
            or machine fetched it).
        store_failures: Store operations that failed (the process went on
            without the store).
        store: What kind of store is in use (``"file"``, ``"redis"``, a user
            store's class name), or ``None``.
    """

    fetches: int = 0
    process_hits: int = 0
    store_hits: int = 0
    store_failures: int = 0
    store: str | None = None
