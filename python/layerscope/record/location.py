"""Where a run's store lives: a local directory, or any fsspec URL (``s3://``, ``gs://``,
``memory://``, ``file://``).

The store's protocol needs only what an object store gives: write a whole file, read a whole file
(or a byte range, lazily), list a "directory", delete. Local directories additionally get fsync and
atomic renames (see ``store``); object stores get the manifest-last rule alone, since a PUT is
atomic: a reader sees an epoch's manifest only after every file it names is complete.

fsspec and the filesystem package a URL needs (``s3fs`` for ``s3://``) are optional: they are
imported when such a URL is given, and a missing one is named in the error. Remote calls get
bounded timeouts (connect 5 s, read 30 s, two attempts for S3), so bad credentials or an
unreachable endpoint raise the filesystem's error with the URL instead of hanging.

>>> loc = open_location("memory://runs/exp1")     # doctest: +SKIP
>>> loc.write_bytes("run.json", b"{}")             # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path
from typing import Any

import numpy as np

# Per protocol: the options that bound a remote call's time (merged under the user's own).
TIMEOUTS: dict[str, dict[str, Any]] = {
    "s3": {
        "config_kwargs": {
            "connect_timeout": 5,
            "read_timeout": 30,
            "retries": {"max_attempts": 2, "mode": "standard"},
        },
        # A follower must see new objects: no listing cache.
        "use_listings_cache": False,
    },
    "gs": {"timeout": 30},
}


class StoreError(OSError):
    """The store could not be created, written or read; the message names the path and the cause."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def is_url(store: str | os.PathLike[str]) -> bool:
    return isinstance(store, str) and "://" in store and not store.startswith("file://")


class Location:
    """A store's root: relative paths (``"epochs/000001/epoch.json"``) under it."""

    url: str
    local: Path | None = None

    def read_bytes(self, rel: str) -> bytes:
        raise NotImplementedError

    def write_bytes(self, rel: str, data: bytes, durable: bool = True) -> None:
        """Write ``data`` whole and durably (a reader never sees a partial file at ``rel``);
        ``durable=False``: whole, but not fsynced (a note between processes, whose content a
        durable file repeats)."""
        raise NotImplementedError

    def exists(self, rel: str) -> bool:
        raise NotImplementedError

    def listdir(self, rel: str) -> list[str]:
        """Names directly under ``rel`` (files and "directories"); [] if there is none."""
        raise NotImplementedError

    def remove(self, rel: str) -> None:
        raise NotImplementedError

    def rmtree(self, rel: str) -> None:
        raise NotImplementedError

    def refresh(self) -> None:
        """Forget cached listings (a follower polls for what another process wrote)."""

    def load_array(self, rel: str, mmap: bool = False) -> np.ndarray:
        raise NotImplementedError

    def read_range(self, rel: str, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of a file (a packed tensor; see ``store``)."""
        return self.read_bytes(rel)[start:end]

    def reference(self, rel: str) -> Any:
        """What a ``Held`` keeps to read ``rel`` back later: a local ``Path`` or a lazy reader."""
        return StoredArray(self, rel)

    def describe(self, rel: str = "") -> str:
        return f"{self.url.rstrip('/')}/{rel}" if rel else self.url


class LocalLocation(Location):
    def __init__(self, path: Path) -> None:
        self.local = path
        self.url = str(path)

    def read_bytes(self, rel: str) -> bytes:
        assert self.local is not None
        return (self.local / rel).read_bytes()

    def write_bytes(self, rel: str, data: bytes, durable: bool = True) -> None:
        assert self.local is not None
        path = self.local / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)

    def exists(self, rel: str) -> bool:
        assert self.local is not None
        return (self.local / rel).exists()

    def listdir(self, rel: str) -> list[str]:
        assert self.local is not None
        try:
            return [p.name for p in (self.local / rel).iterdir()]
        except (FileNotFoundError, NotADirectoryError):
            return []

    def remove(self, rel: str) -> None:
        assert self.local is not None
        (self.local / rel).unlink(missing_ok=True)

    def rmtree(self, rel: str) -> None:
        import shutil

        assert self.local is not None
        shutil.rmtree(self.local / rel, ignore_errors=True)

    def load_array(self, rel: str, mmap: bool = False) -> np.ndarray:
        assert self.local is not None
        return np.load(self.local / rel, mmap_mode="r" if mmap else None)

    def read_range(self, rel: str, start: int, end: int) -> bytes:
        assert self.local is not None
        with open(self.local / rel, "rb") as f:
            f.seek(start)
            return f.read(end - start)

    def reference(self, rel: str) -> Any:
        assert self.local is not None
        return self.local / rel


class FsspecLocation(Location):
    def __init__(self, url: str, storage_options: dict[str, Any] | None = None) -> None:
        self.url = url.rstrip("/")
        protocol = url.split("://", 1)[0]
        try:
            import fsspec
        except ImportError:
            raise StoreError(
                f"layerscope: the store {url} is a URL, which needs the fsspec package "
                f"(pip install fsspec{' s3fs' if protocol in ('s3', 's3a') else ''})"
            ) from None
        options = {**TIMEOUTS.get(protocol, {}), **(storage_options or {})}
        if protocol == "s3" and "config_kwargs" in (storage_options or {}):
            options["config_kwargs"] = {
                **TIMEOUTS["s3"]["config_kwargs"],
                **storage_options["config_kwargs"],  # type: ignore[index]
            }
        try:
            self.fs, self.root = fsspec.core.url_to_fs(url, **options)
        except ImportError as e:
            from fsspec.registry import known_implementations

            cls = known_implementations.get(protocol, {}).get("class", "")
            package = cls.split(".")[0] or protocol
            raise StoreError(
                f"layerscope: the store {url} needs the {package} package for {protocol}:// URLs "
                f"(pip install {package}); {e}"
            ) from None
        except ValueError as e:  # an unknown protocol
            raise StoreError(f"layerscope: cannot open the store {url}: {e}") from None
        self.root = self.root.rstrip("/")

    def _p(self, rel: str) -> str:
        return f"{self.root}/{rel}" if rel else self.root

    def read_bytes(self, rel: str) -> bytes:
        try:
            return bytes(self.fs.cat_file(self._p(rel)))
        except FileNotFoundError:
            raise FileNotFoundError(f"{self.describe(rel)} does not exist") from None

    def write_bytes(self, rel: str, data: bytes, durable: bool = True) -> None:
        self.fs.pipe_file(self._p(rel), data)

    def exists(self, rel: str) -> bool:
        return bool(self.fs.exists(self._p(rel)))

    def listdir(self, rel: str) -> list[str]:
        try:
            entries = self.fs.ls(self._p(rel), detail=False)
        except FileNotFoundError:
            return []
        prefix = self._p(rel).rstrip("/") + "/"
        names = []
        for e in entries:
            e = str(e).rstrip("/")
            name = e[len(prefix) :] if e.startswith(prefix) else e.rsplit("/", 1)[-1]
            if name and "/" not in name:
                names.append(name)
        return names

    def remove(self, rel: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(self._p(rel))

    def rmtree(self, rel: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm(self._p(rel), recursive=True)

    def refresh(self) -> None:
        self.fs.invalidate_cache()

    def load_array(self, rel: str, mmap: bool = False) -> np.ndarray:
        return np.load(io.BytesIO(self.read_bytes(rel)), allow_pickle=False)

    def read_range(self, rel: str, start: int, end: int) -> bytes:
        if end <= start:
            return b""
        try:
            return bytes(self.fs.cat_file(self._p(rel), start=start, end=end))
        except FileNotFoundError:
            raise FileNotFoundError(f"{self.describe(rel)} does not exist") from None


class StoredArray:
    """A tensor file in a remote store, read on first use (``Held.path`` of a remote run)."""

    def __init__(self, location: Location, rel: str) -> None:
        self.location, self.rel = location, rel

    def load(self, mmap: bool = False) -> np.ndarray:
        return self.location.load_array(self.rel, mmap)

    def __str__(self) -> str:
        return self.location.describe(self.rel)


class PackedArray:
    """A small tensor stored inside an epoch's pack file (``store``: one file for all of them),
    at byte ``start`` of it; read on first use (memory-mapped locally when ``mmap``)."""

    def __init__(
        self, location: Location, rel: str, start: int, dtype: str, shape: tuple[int, ...]
    ) -> None:
        self.location, self.rel, self.start = location, rel, start
        self.dtype, self.shape = np.dtype(dtype), tuple(shape)

    def load(self, mmap: bool = False) -> np.ndarray:
        n = int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize
        if mmap and self.location.local is not None and n:
            return np.memmap(
                self.location.local / self.rel, self.dtype, "r", self.start, self.shape
            )
        data = bytearray(self.location.read_range(self.rel, self.start, self.start + n))
        if len(data) != n:
            raise OSError(f"{self} is cut short ({len(data)} of {n} bytes)")
        return np.frombuffer(data, self.dtype).reshape(self.shape)

    def __str__(self) -> str:
        return f"{self.location.describe(self.rel)} at byte {self.start}"


class ShardedArray:
    """A parameter written as one file per rank (FSDP2 shards): concatenated along ``dim`` when read."""

    def __init__(self, parts: list[Any], dim: int, shape: tuple[int, ...]) -> None:
        self.parts, self.dim, self.shape = parts, dim, shape

    def load(self, mmap: bool = False) -> np.ndarray:
        arrays = [load_array(p) for p in self.parts]
        out = np.concatenate(arrays, axis=self.dim) if len(arrays) > 1 else np.asarray(arrays[0])
        return out.reshape(self.shape)

    def __str__(self) -> str:
        return f"{len(self.parts)} shards from {self.parts[0]}"


def load_array(where: Any, mmap: bool = False) -> np.ndarray:
    """Read a ``Held.path``: a local file (memory-mapped when ``mmap``), or a lazy remote reader."""
    if isinstance(where, (str, os.PathLike)):
        return np.load(where, mmap_mode="r" if mmap else None)
    return where.load(mmap)


def open_location(
    store: str | os.PathLike[str], storage_options: dict[str, Any] | None = None
) -> Location:
    """A ``Location`` for a local path (``str``/``Path``/``file://``) or an fsspec URL."""
    if isinstance(store, str) and store.startswith("file://"):
        store = store.removeprefix("file://")
    if is_url(store):
        return FsspecLocation(str(store), storage_options)
    return LocalLocation(Path(store).expanduser())
