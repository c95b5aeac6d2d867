"""``memory://NAME`` object store: a dict, for tests and benchmarks."""

from __future__ import annotations

import threading

from pipeline.errors import ImageRejected, SourceNotAllowed, SourceNotFound
from pipeline.objects.base import ObjectStore, check_key, check_prefix


class MemoryObjectStore(ObjectStore):
    scheme = "memory"

    def __init__(self, name: str = "default") -> None:
        self.name = name
        self._objects: dict[str, tuple[bytes, str]] = {}
        self._lock = threading.Lock()

    def locate(self, uri: str) -> str:
        prefix = f"memory://{self.name}/"
        if not uri.startswith(prefix):
            raise SourceNotAllowed(f"{uri} is not in memory store {self.name}",
                                   "path_outside_root")
        return check_key(uri[len(prefix):])


    def get(self, uri: str, max_bytes: int) -> bytes:
        with self._lock:
            found = self._objects.get(self.locate(uri))
        if found is None:
            raise SourceNotFound(f"no object at {uri}")
        if len(found[0]) > max_bytes:
            raise ImageRejected(f"source is {len(found[0])} bytes, more than the {max_bytes} "
                                "byte limit", "source_too_large")
        return found[0]

    def put(self, key: str, data: bytes, content_type: str) -> str:
        key = check_key(key)
        with self._lock:
            self._objects[key] = (bytes(data), content_type)
        return self.uri_for(key)

    def list_keys(self, prefix: str) -> list[str]:
        start = check_prefix(prefix)
        with self._lock:
            return sorted(k for k in self._objects if k.startswith(start))

    def delete(self, key: str) -> bool:
        with self._lock:
            return self._objects.pop(check_key(key), None) is not None

    def exists(self, uri: str) -> bool:
        with self._lock:
            return self.locate(uri) in self._objects

    def uri_for(self, key: str) -> str:
        return f"memory://{self.name}/{check_key(key)}"
