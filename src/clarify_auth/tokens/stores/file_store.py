"""A token cache shared by the processes of one user on one machine, through files.

One file per (token URL, client ID, audience, secret) in a per-user folder, written
atomically with mode 0600, and read back only when it can be trusted. An
inter-process lock (``filelock``) makes N cold processes cause one token request:
the first fetches, the rest read what it wrote.

Nothing on disk is believed blindly. The folder must belong to this user and be
writable by no one else (so no one else can swap what is in it); each entry is
opened without following links or blocking, then checked through the open
descriptor. Any failure of the file cache is a warning, never an exception: the
process goes on without the file.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import math
import os
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from clarify_auth._errors import ConfigurationError
from clarify_auth.tokens.stores.private_files import (
    UntrustedError,
    distrust_folder,
    make_private_folder,
    read_private_file,
    remove_stale_temporaries,
)
from clarify_auth.tokens.stores.protocol import StoredToken, warn_limited
from clarify_auth.tokens.token import AccessToken

if TYPE_CHECKING:
    from collections.abc import Iterator

    import filelock

    from clarify_auth.tokens.stores.protocol import StoreKey

__all__ = ["FileTokenCache"]

logger = logging.getLogger("clarify_auth")

_FORMAT_VERSION = 1
_DEFAULT_LOCK_TIMEOUT_S = 30.0
# A temporary file this old was left by a writer killed between write and
# rename; younger ones may belong to a process writing right now.
_STALE_TEMPORARY_S = 60.0
# The same fault of one folder is logged at most this often, so that a hot
# loop over a broken cache does not flood the log.
_WARNING_INTERVAL_S = 300.0


def _default_folder() -> Path:
    if sys.platform == "win32":  # pragma: no cover - POSIX CI
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "clarify-auth" / "tokens"


class FileTokenCache:
    """Share OAuth access tokens between processes on one machine.

    Pass one to ``OAuthClientCredentials(..., token_cache=...)`` or
    ``ClarifySession(..., token_cache=...)``. Processes that start cold together
    then send one token request between them: the first takes an inter-process
    lock and fetches, the others wait for the lock and read its token.

    Args:
        path: The folder for the cache files; ``None`` means a per-user default
            (``$XDG_CACHE_HOME/clarify-auth/tokens``, else ``~/.cache/...``).
        lock_timeout: Seconds to wait for another process's token request before
            fetching anyway (a process that hangs while holding the lock cannot
            block the others for longer). A killed process's lock is released
            by the operating system at once.

    The files hold access tokens (never the client secret), readable by their
    owner only. Missing folders are created with mode 0700. A folder owned by
    another user, or writable by group or others, is refused with one warning
    and the process goes on without the file cache. A file that is corrupt,
    truncated, expired, a link, owned by another user or readable by others is
    ignored and replaced, with a log line. A failing file system (read-only,
    permissions, full) is a warning too, never an exception.

    Example:
        >>> cache = FileTokenCache()  # doctest: +SKIP
        >>> session = ClarifySession(token_cache=cache)  # doctest: +SKIP
    """

    kind = "file"

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        lock_timeout: float = _DEFAULT_LOCK_TIMEOUT_S,
    ) -> None:
        """Choose the folder; nothing is touched on disk until a token is needed."""
        if not isinstance(lock_timeout, int | float) or not lock_timeout > 0:
            raise ConfigurationError("FileTokenCache: lock_timeout must be a positive number")
        self.path = Path(path).expanduser() if path is not None else _default_folder()
        self.lock_timeout = float(lock_timeout)

    def __repr__(self) -> str:
        """Show the folder."""
        return f"FileTokenCache(path={str(self.path)!r})"

    # -- the TokenStore protocol ----------------------------------------------------------

    def load(self, key: StoreKey) -> StoredToken | None:
        """The stored token, or ``None`` when there is none, it is untrusted or expired."""
        name = _entry_name(key)
        data = self._read(name)
        if data is None:
            return None
        try:
            return _parse(data)
        except (ValueError, TypeError, KeyError, ValidationError):
            self._warn_entry(name, "it is corrupt or truncated")
            return None

    def save(self, key: StoreKey, stored: StoredToken) -> None:
        """Write ``stored`` atomically (a temporary file renamed over the old one), mode 0600.

        Temporary files that writers killed before their rename left behind go first.
        """
        if not self._usable(create=True):
            return
        self._remove_stale_temporaries()
        wall = time.time()
        token = stored.token
        document = {
            "version": _FORMAT_VERSION,
            "access_token": token.access_token.get_secret_value(),
            "token_type": token.token_type,
            "scope": token.scope,
            "expires_in": token.expires_in,
            "refresh_at": wall + stored.refresh_in,
            "expires_at": wall + stored.expires_in,
            # When the token dies, as the endpoint said (AccessToken.expires_at).
            "token_expires_at": token.expires_at.timestamp(),
        }
        try:
            handle, temporary = tempfile.mkstemp(dir=self.path, prefix=".tmp-", suffix=".json")
            try:
                with os.fdopen(handle, "w", encoding="utf-8") as out:
                    json.dump(document, out)
                Path(temporary).replace(self.path / f"{_entry_name(key)}.json")
            except BaseException:
                with contextlib.suppress(OSError):
                    Path(temporary).unlink()
                raise
        except OSError as exc:
            self._warn("write", "token cache %s: cannot write (%s); going on without it", exc)

    def discard(self, key: StoreKey, access_token: str) -> None:
        """Remove the stored token if it is ``access_token`` (the server refused it)."""
        name = _entry_name(key)
        data = self._read(name)
        if data is None:
            return
        try:
            stored = json.loads(data)["access_token"]
        except (ValueError, TypeError, KeyError):
            return  # not a token; the next load() says so and the next save() replaces it
        if not isinstance(stored, str) or stored != access_token:
            return
        try:
            (self.path / f"{name}.json").unlink(missing_ok=True)
        except OSError as exc:
            self._warn("forget", "token cache %s: cannot remove a refused token (%s)", exc)

    def lock(self, key: StoreKey, *, hold: float = 0.0) -> contextlib.AbstractContextManager[bool]:
        """Hold the key's inter-process lock; yields False if that failed (go on anyway).

        ``hold`` is not needed here: the operating system releases the lock of
        a process that dies, and one that hangs is waited for ``lock_timeout``.
        """
        del hold
        return self._locked(_entry_name(key))

    def describe(self) -> str:
        """Say where the tokens are kept (for ``clarify-auth cache``)."""
        return f"files in {self.path}"

    def check(self, key: StoreKey) -> tuple[str | None, StoredToken | None]:
        """Look now: (what is wrong or None, the stored token), for ``clarify-auth cache``."""
        try:
            info = self.path.stat()
        except FileNotFoundError:
            return None, None  # nothing stored yet; the first token creates the folder
        except OSError as exc:
            return f"cannot look at {self.path} ({exc.strerror or type(exc).__name__})", None
        reason = distrust_folder(info)
        if reason is not None:
            return f"{self.path} is refused: {reason}", None
        return None, self.load(key)

    @contextlib.contextmanager
    def _locked(self, key: str) -> Iterator[bool]:
        """Hold the key's inter-process lock; yields False if that failed (go on anyway)."""
        lock = self._acquire(key) if self._usable(create=True) else None
        if lock is None:
            yield False
            return
        try:
            yield True
        finally:
            try:
                lock.release()
            except OSError as exc:
                self._warn("unlock", "token cache %s: cannot unlock (%s)", exc)

    def _acquire(self, key: str) -> filelock.BaseFileLock | None:
        # Imported here: it takes ~40 ms, paid only by processes that use the cache.
        import filelock  # noqa: PLC0415

        try:
            lock = filelock.FileLock(
                self.path / f"{key}.lock", timeout=self.lock_timeout, mode=0o600
            )
            lock.acquire()
        except filelock.Timeout:
            logger.warning(
                "token cache lock %s held for more than %.0f s by another process; "
                "fetching a token without it",
                self.path / f"{key}.lock",
                self.lock_timeout,
            )
        except OSError as exc:  # after Timeout, which is an OSError too
            self._warn("lock", "token cache %s: cannot lock (%s); going on unlocked", exc)
        else:
            return lock
        return None

    # -- the folder -----------------------------------------------------------------------

    def _usable(self, *, create: bool) -> bool:
        """Whether the folder exists (made, mode 0700, if ``create``) and can be trusted."""
        try:
            if create:
                make_private_folder(self.path)
            info = self.path.stat()
        except OSError as exc:
            if create or not isinstance(exc, FileNotFoundError):  # else: nothing stored yet
                self._warn("folder", "token cache %s cannot be used (%s); going on without it", exc)
            return False
        reason = distrust_folder(info)
        if reason is not None:
            # Once per folder and process: the folder is not going to change by itself.
            warn_limited(
                (str(self.path), "refused"),
                math.inf,
                "token cache folder %s refused: %s; going on without the file cache",
                self.path,
                reason,
            )
            return False
        return True

    def _remove_stale_temporaries(self) -> None:
        """Delete the temporary files (live tokens) of writers killed before their rename."""
        try:
            remove_stale_temporaries(self.path, older_than=time.time() - _STALE_TEMPORARY_S)
        except OSError as exc:
            self._warn("sweep", "token cache %s: cannot remove old temporary files (%s)", exc)

    # -- entries --------------------------------------------------------------------------

    def _read(self, key: str) -> bytes | None:
        """The entry's bytes if it is a trustworthy file; None (with a warning if bad) if not."""
        if not self._usable(create=False):
            return None
        try:
            return read_private_file(self.path / f"{key}.json")
        except FileNotFoundError:
            return None
        except UntrustedError as exc:
            self._warn_entry(key, str(exc))
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                self._warn_entry(key, "it is a symbolic link, not a regular file")
            else:
                self._warn_entry(key, f"cannot read it ({exc.strerror or type(exc).__name__})")
        return None

    def _warn_entry(self, key: str, reason: str) -> None:
        file = self.path / f"{key}.json"
        warn_limited(
            (str(file), reason),
            _WARNING_INTERVAL_S,
            "token cache %s ignored and will be replaced: %s",
            file,
            reason,
        )

    def _warn(self, topic: str, message: str, exc: OSError) -> None:
        """Log a fault of the folder (``message`` takes the folder and the bare reason)."""
        reason = exc.strerror or type(exc).__name__
        warn_limited((str(self.path), topic), _WARNING_INTERVAL_S, message, self.path, reason)

    def __getstate__(self) -> dict[str, Any]:
        """Pickle the settings only (there is no open file or lock to carry)."""
        return {"path": self.path, "lock_timeout": self.lock_timeout}

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore the settings."""
        self.path = state["path"]
        self.lock_timeout = state["lock_timeout"]


def _entry_name(key: StoreKey) -> str:
    """The entry's file name: part of the key's digest, which includes no secret."""
    return key.digest[:40]


def _parse(data: bytes) -> StoredToken | None:
    document = json.loads(data)
    if not isinstance(document, dict) or document.get("version") != _FORMAT_VERSION:
        raise ValueError
    refresh_at, expires_at = float(document["refresh_at"]), float(document["expires_at"])
    token_expires_at = float(document.get("token_expires_at", expires_at))
    if not all(math.isfinite(value) for value in (refresh_at, expires_at, token_expires_at)):
        raise ValueError
    token = AccessToken.model_validate(
        {
            **{k: document[k] for k in ("access_token", "token_type", "scope", "expires_in")},
            "expires_at": datetime.fromtimestamp(token_expires_at, timezone.utc),
        }
    )
    wall = time.time()
    if expires_at <= wall:
        return None  # expired: not an error, just of no use
    # A stored lifetime longer than the token's own would mean a tampered file.
    remaining = min(expires_at - wall, token.expires_in)
    return StoredToken(token, refresh_in=min(refresh_at - wall, remaining), expires_in=remaining)
