"""Storage outages as a retryable 503: the one place where Azure SDK transport failures are translated.

Every Table and Blob client the adapters use is wrapped by :func:`guarded` (the factory does it), so any SDK
call, including the lazy page fetches of a query and the chunk reads of a download, either succeeds, raises
the SDK's own error for a real answer (404, 409, 412...), or raises :class:`StorageUnavailable` when storage
could not be reached, timed out, or answered that it is busy. Callers and Logic Apps then see ``503`` with
``Retry-After`` and retry, instead of a ``500`` or a request held for minutes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar, cast

from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError
from azure.core.paging import ItemPaged, PageIterator
from azure.storage.blob import StorageStreamDownloader

from shared.errors import ServiceUnavailable

__all__ = ["STORAGE_RETRY_AFTER_SECONDS", "StorageUnavailable", "guarded", "storage_errors"]

logger = logging.getLogger(__name__)

ClientT = TypeVar("ClientT")

# Long enough for a restarted storage endpoint or a throttled partition to recover, short enough that a
# Logic App polling loop does not stall.
STORAGE_RETRY_AFTER_SECONDS = 10
# Statuses by which the storage service says "busy or broken, try again" (Azure's 503 Server Busy and 500
# Operation Timed Out; gateways in front of it answer 502 and 504).
_BUSY_STATUSES = frozenset({500, 502, 503, 504})
# SDK results that still talk to storage when used (pages are fetched and blobs read lazily).
_LAZY_RESULTS = (ItemPaged, PageIterator, StorageStreamDownloader)


class StorageUnavailable(ServiceUnavailable):
    """Table or Blob Storage is unreachable, timed out, or busy; the same request may succeed later.

    Attributes:
        retry_after: seconds the caller should wait before retrying (sent as ``Retry-After``).
    """

    code = "storage-unavailable"

    def __init__(self, detail: str = "Storage is temporarily unavailable; retry later.", *,
                 retry_after: float = STORAGE_RETRY_AFTER_SECONDS, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.retry_after = retry_after


@contextmanager
def storage_errors() -> Iterator[None]:
    """Translate SDK transport failures and busy answers inside the block into :class:`StorageUnavailable`.

    The SDK's text is neither shown nor chained: it names the account, table and keys (and would name a
    SAS signature if one were used). Only the error type and status are logged.
    """
    try:
        yield
    except (ServiceRequestError, ServiceResponseError) as exc:
        logger.warning("storage unreachable error=%s", type(exc).__name__)
        raise StorageUnavailable() from None
    except HttpResponseError as exc:
        if exc.status_code not in _BUSY_STATUSES:
            raise
        logger.warning("storage busy error=%s status=%s", type(exc).__name__, exc.status_code)
        raise StorageUnavailable() from None


class _Guard:
    """Forwards to an SDK object, running every call (and every lazy fetch) inside :func:`storage_errors`."""

    __slots__ = ("_target",)

    def __init__(self, target: object) -> None:
        self._target = target

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        return _guard_callable(value) if callable(value) else value

    def __iter__(self) -> Any:
        with storage_errors():
            iterator = iter(cast(Any, self._target))
        return self if iterator is self._target else _Guard(iterator)

    def __next__(self) -> Any:
        with storage_errors():
            return _guard_result(next(cast(Any, self._target)))


def _guard_result(value: Any) -> Any:
    return _Guard(value) if isinstance(value, _LAZY_RESULTS) else value


def _guard_callable(method: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        with storage_errors():
            return _guard_result(method(*args, **kwargs))

    return call


def guarded(client: ClientT) -> ClientT:
    """Wrap an SDK client so that every call through it is translated by :func:`storage_errors`.

    ``client`` is a ``TableClient`` or ``ContainerClient``; the result keeps its interface, so the adapters
    are written against the SDK types.
    """
    return cast(ClientT, _Guard(client))
