"""A keyed collection of records that tells its listeners what changed; the plain core under each Qt model."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import Generic, Protocol, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
K_contra = TypeVar("K_contra", bound=Hashable, contravariant=True)


class CollectionListener(Protocol[K_contra]):
    def collection_reset(self) -> None: ...
    def record_added(self, key: K_contra) -> None: ...
    def record_changed(self, key: K_contra) -> None: ...
    def record_removed(self, key: K_contra) -> None: ...


class Collection(Generic[K, V]):
    """Records by key, in insertion order. Listeners hear every change at once; coalescing is theirs."""

    def __init__(self, key: Callable[[V], K]) -> None:
        self._key = key
        self.items: dict[K, V] = {}
        self._listeners: list[CollectionListener[K]] = []

    def subscribe(self, listener: CollectionListener[K]) -> None:
        self._listeners.append(listener)

    def unsubscribe(self, listener: CollectionListener[K]) -> None:
        self._listeners.remove(listener)

    def __len__(self) -> int:
        return len(self.items)

    def __contains__(self, key: object) -> bool:
        return key in self.items

    def get(self, key: K) -> V | None:
        return self.items.get(key)

    def values(self) -> Iterable[V]:
        return self.items.values()

    def reset(self, records: Iterable[V]) -> None:
        self.items = {self._key(r): r for r in records}
        for listener in self._listeners:
            listener.collection_reset()

    def upsert(self, record: V) -> V | None:
        """Insert or replace; returns the record it replaced (None when new)."""
        key = self._key(record)
        old = self.items.get(key)
        self.items[key] = record
        for listener in self._listeners:
            if old is None:
                listener.record_added(key)
            else:
                listener.record_changed(key)
        return old

    def remove(self, key: K) -> V | None:
        old = self.items.pop(key, None)
        if old is not None:
            for listener in self._listeners:
                listener.record_removed(key)
        return old
