"""``file://DIR`` object store: a local folder, written by temp file + rename."""

from __future__ import annotations

import os
import stat
import threading
import time
from pathlib import Path
from urllib.parse import quote, unquote, urlparse

from pipeline.errors import ImageRejected, SourceNotAllowed, SourceNotFound, StorageUnavailable
from pipeline.objects.base import ObjectStore, check_key, check_prefix

#: Name prefix of the temp file a write renames into place (a crash can leave one).
TEMP_PREFIX = ".tmp-"


def path_from_file_uri(uri: str) -> Path:
    """``file:///abs/path`` or ``file://./rel`` -> Path (relative to the CWD)."""
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        raise SourceNotAllowed(f"not a file:// URI: {uri!r}", "bad_scheme")
    raw = unquote(parsed.netloc + parsed.path)
    if "\0" in raw:  # no file has one; the system calls would raise ValueError
        raise SourceNotAllowed(f"{uri!r} names a path with a NUL byte", "bad_source")
    return Path(raw)


#: Linux: a descriptor's real path is readable under /proc/self/fd (see _open_inside).
_PROC_FD = hasattr(os, "O_PATH") and os.path.isdir("/proc/self/fd")


def _open_regular(path: Path | str, check_first: int | None = None) -> int:
    """Open ``path`` for reading if it is a regular file (``check_first``: a descriptor of
    the same file, checked before the open). A FIFO or device is refused, never waited
    on: O_NONBLOCK, and with ``check_first`` never opened at all."""
    if check_first is not None and not stat.S_ISREG(os.fstat(check_first).st_mode):
        raise SourceNotAllowed("source is not a regular file", "not_a_regular_file")
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC |
                 getattr(os, "O_NOCTTY", 0))
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise SourceNotAllowed("source is not a regular file", "not_a_regular_file")
    return fd


def file_uri(absolute: Path) -> str:
    """``file://`` URI of an absolute path, keeping ``=`` readable (``dt=2026-01-01``)."""
    return "file://" + quote(str(absolute), safe="/=")


#: Most folders a store remembers having made (one per job, so the set is bounded).
MADE_DIRS_REMEMBERED = 4096


class LocalObjectStore(ObjectStore):
    """Objects as files under ``root``; URIs are absolute ``file://`` URIs."""

    scheme = "file"

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).resolve()
        self._root_text = str(self.root)
        self._root_prefix = self._root_text.rstrip("/") + "/"
        # Folders put() knows exist (saves a mkdir per output after a job's first). Every
        # job has its own folder, so the set is cleared whenever it fills (bounded memory).
        self._made_dirs: set[Path] = set()

    @classmethod
    def from_url(cls, url: str) -> LocalObjectStore:
        return cls(path_from_file_uri(url))

    def locate(self, uri: str) -> Path:
        path = os.path.realpath(path_from_file_uri(uri))
        if not self._inside_text(path):
            raise SourceNotAllowed(f"{uri!r} is outside the allowed root {self.root}",
                                   "path_outside_root")
        return Path(path)

    def claims(self, uri: str) -> bool:
        # Lexical only (get() resolves symlinks when it opens the file): this
        # runs for every ingest event, and realpath costs a stat per path component.
        try:
            return self._lexically_inside(path_from_file_uri(uri))
        except SourceNotAllowed:
            return False

    def key_of(self, uri: str) -> str | None:
        try:
            path = os.path.normpath(os.path.abspath(path_from_file_uri(uri)))
        except SourceNotAllowed:
            return None
        if not path.startswith(self._root_prefix):
            return None
        try:
            return check_key(path[len(self._root_prefix):])
        except SourceNotAllowed:
            return None

    def _lexically_inside(self, path: Path) -> bool:
        return self._inside_text(os.path.normpath(os.path.abspath(path)))

    def _inside_text(self, path: str) -> bool:
        return path == self._root_text or path.startswith(self._root_prefix)

    def get(self, uri: str, max_bytes: int) -> bytes:
        try:
            fd = self._open_inside(uri)
            with os.fdopen(fd, "rb") as handle:
                status = os.fstat(handle.fileno())
                if status.st_size > max_bytes:
                    raise ImageRejected(f"source is {status.st_size} bytes, more than the "
                                        f"{max_bytes} byte limit", "source_too_large")
                # Read the known size, not max_bytes: a buffer of max_bytes would be
                # mapped and unmapped for every source. A file that grew meanwhile is
                # read on up to the limit, as before.
                data = handle.read(status.st_size + 1)
                if len(data) > status.st_size:
                    data += handle.read(max_bytes + 1 - len(data))
                    if len(data) > max_bytes:
                        raise ImageRejected(f"source grew past the {max_bytes} byte limit "
                                            "while it was read", "source_too_large")
                return data
        except FileNotFoundError:
            raise SourceNotFound(f"no object at {uri}") from None
        except IsADirectoryError:
            raise SourceNotFound(f"{uri} is a directory, not an object") from None
        except PermissionError as exc:
            raise SourceNotAllowed(f"cannot read {uri}: {exc.strerror}") from None

    def _open_inside(self, uri: str) -> int:
        """A read-only descriptor of the regular file ``uri`` names, which must lie
        inside the root once every symlink is resolved; SourceNotAllowed otherwise."""
        if not _PROC_FD:
            return _open_regular(self.locate(uri))
        # The kernel resolves the path once, into a handle that opens nothing (O_PATH: a
        # device or FIFO is never opened), and the check reads where that handle really
        # points: no window for a symlink swapped between the check and the read, as
        # realpath-then-open had, and five system calls instead of one per component.
        # The lexical check first: a name outside the root must not even learn whether
        # its file exists (not found vs not allowed).
        path = path_from_file_uri(uri)  # bad_source, not a refusal by place
        if not self._lexically_inside(path):
            raise SourceNotAllowed(f"{uri!r} is outside the allowed root {self.root}",
                                   "path_outside_root")
        handle = os.open(path, os.O_PATH | os.O_CLOEXEC)
        try:
            linked = f"/proc/self/fd/{handle}"
            if not self._inside_text(os.readlink(linked)):
                raise SourceNotAllowed(f"{uri!r} resolves outside the allowed root "
                                       f"{self.root}", "path_outside_root")
            return _open_regular(linked, check_first=handle)
        finally:
            os.close(handle)

    def put(self, key: str, data: bytes, content_type: str) -> str:
        path = self.root / check_key(key)  # root is resolved and keys cannot escape it
        # One writer per thread and key at a time, so this name is never shared.
        tmp = path.parent / f"{TEMP_PREFIX}{path.name}-{os.getpid()}-{threading.get_ident()}"
        try:
            if path.parent not in self._made_dirs:
                self._make_dir(path.parent)
            try:
                self._write(tmp, path, data)
            except FileNotFoundError:  # the folder was removed since (lake prune): again
                self._make_dir(path.parent)
                self._write(tmp, path, data)
        except OSError as exc:
            raise StorageUnavailable(f"cannot write {path}: {exc.strerror}") from exc
        return file_uri(path)

    def _make_dir(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        if len(self._made_dirs) >= MADE_DIRS_REMEMBERED:
            self._made_dirs.clear()  # at worst a folder in use is made again (exist_ok)
        self._made_dirs.add(folder)

    @staticmethod
    def _write(tmp: Path, path: Path, data: bytes) -> None:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def list_keys(self, prefix: str) -> list[str]:
        base = self.root / check_prefix(prefix)
        if not base.is_dir():
            return []
        return sorted(path.relative_to(self.root).as_posix() for path in base.rglob("*")
                      if path.is_file() and not path.name.startswith(TEMP_PREFIX))

    def remove_stale_temp(self, max_age: float, now: float | None = None) -> int:
        now = time.time() if now is None else now
        removed = 0
        for path in self.root.rglob(f"{TEMP_PREFIX}*"):
            try:
                if path.is_file() and not path.is_symlink() and \
                        now - path.lstat().st_mtime > max_age:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:  # finished (renamed) or removed meanwhile
                continue
        return removed

    def delete(self, key: str) -> bool:
        path = self.root / check_key(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise StorageUnavailable(f"cannot delete {path}: {exc.strerror}") from exc
        return True

    def exists(self, uri: str) -> bool:
        return self.locate(uri).is_file()

    def uri_for(self, key: str) -> str:
        return file_uri(self.root / check_key(key))
