"""Which failures are worth retrying: transient ones (I/O hiccups, a locked file or database, a
dropped connection), never data errors (a contract, a rule, a bad setting: the same input fails the
same way). The Dagster layer retries the first kind and fails the second at once."""

from __future__ import annotations

import errno

#: OS errors that a later attempt can get past
TRANSIENT_ERRNOS = frozenset({
    errno.EAGAIN, errno.EWOULDBLOCK, errno.EBUSY, errno.EINTR, errno.ETIMEDOUT, errno.ECONNRESET,
    errno.ECONNREFUSED, errno.ECONNABORTED, errno.EPIPE, errno.ESTALE, errno.EIO, errno.EMFILE, errno.ENFILE,
    errno.EDEADLK, errno.ENOLCK, errno.EHOSTUNREACH, errno.ENETUNREACH,
})
#: words in the message of a database or driver error that mean "someone else holds it" or "try again"
_LOCKED = ("database is locked", "could not set lock", "lock on file", "conflicting lock", "resource temporarily",
           "could not connect", "connection refused", "server closed the connection", "deadlock detected")


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def is_transient(exc: BaseException) -> bool:
    """True when ``exc`` (or what caused it) is an I/O or locking failure a retry may get past."""
    for e in _chain(exc):
        if isinstance(e, (TimeoutError, ConnectionError, BlockingIOError, InterruptedError)):
            return True
        if isinstance(e, OSError) and e.errno in TRANSIENT_ERRNOS:
            return True
        name = type(e).__name__
        if name in ("IOException", "OperationalError", "InterfaceError") and any(
                word in str(e).lower() for word in _LOCKED):
            return True  # duckdb.IOException (lock), sqlite3/SQLAlchemy OperationalError (locked, connection)
    return False
