"""Object storage of uploaded documents: ``s3://bucket/prefix`` through s3fs, or a local folder.

Objects are addressed by full URLs (``s3://bucket/prefix/<name>`` or ``file:///…/<name>``),
which the document row keeps, so a document stays readable after the configured location
changes. Calls are blocking (fsspec's sync API); async callers use the ``a*`` variants, which
run them in a worker thread.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from socialflow.core.errors import TransientError, UserError

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem  # type: ignore[import-untyped]

    from socialflow.core.settings import Settings

__all__ = ["ObjectStorage"]

_COPY_BLOCK = 1 << 20
# s3fs uploads in parts of this size (S3's minimum part is 5 MiB)
_S3_BLOCK = 8 << 20


class ObjectStorage:
    """Where uploaded documents are written, read and deleted.

    Args:
        url: ``s3://bucket/prefix`` or a local folder (path or ``file://`` URL).
        s3_options: Options for ``s3fs.S3FileSystem`` (endpoint, region, keys).
    """

    def __init__(self, url: str, *, s3_options: dict[str, Any] | None = None) -> None:
        self._s3_options = s3_options or {}
        if url.startswith("s3://"):
            bucket_prefix = url.removeprefix("s3://").strip("/")
            if not bucket_prefix:
                msg = f"knowledge storage_url {url!r} names no bucket; use s3://bucket/prefix"
                raise UserError(msg, code="invalid_storage_url", details={"field": "storage_url"})
            self.protocol = "s3"
            self.root = f"s3://{bucket_prefix}"
        elif "://" in url and not url.startswith("file://"):
            msg = (
                f"knowledge storage_url {url!r} is not supported; use s3://bucket/prefix or a "
                "local folder"
            )
            raise UserError(msg, code="invalid_storage_url", details={"field": "storage_url"})
        else:
            self.protocol = "file"
            # the folder is made by the first write (auto_mkdir), not here
            self.root = Path(url.removeprefix("file://")).expanduser().resolve().as_uri()
        self._fs: AbstractFileSystem | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> ObjectStorage:
        """The storage ``settings.knowledge`` describes (``<data_dir>/uploads`` by default)."""
        ks = settings.knowledge
        url = ks.storage_url or str(settings.data_dir / "uploads")
        options: dict[str, Any] = {}
        if ks.s3_endpoint_url:
            options["endpoint_url"] = ks.s3_endpoint_url
        if ks.s3_region:
            options["client_kwargs"] = {"region_name": ks.s3_region}
        if ks.s3_access_key_id is not None and ks.s3_secret_access_key is not None:
            options["key"] = ks.s3_access_key_id.get_secret_value()
            options["secret"] = ks.s3_secret_access_key.get_secret_value()
        return cls(url, s3_options=options)

    @property
    def fs(self) -> AbstractFileSystem:
        """The fsspec file system, built on first use."""
        if self._fs is None:
            if self.protocol == "s3":
                import s3fs  # type: ignore[import-untyped]

                # one instance per storage: fsspec's shared instance cache would tie it to a
                # loop of another thread
                self._fs = s3fs.S3FileSystem(
                    skip_instance_cache=True, default_block_size=_S3_BLOCK, **self._s3_options
                )
            else:
                from fsspec.implementations.local import (  # type: ignore[import-untyped]
                    LocalFileSystem,
                )

                self._fs = LocalFileSystem(auto_mkdir=True)
        return self._fs

    def url_for(self, name: str) -> str:
        """The URL of the object called ``name`` (a generated, path-safe name)."""
        if not name or name.startswith("/") or ".." in name.split("/"):
            msg = f"object name {name!r} is not a safe relative name"
            raise ValueError(msg)
        return f"{self.root}/{name}"

    def _path(self, url: str) -> str:
        if self.protocol == "file":
            if not url.startswith("file://"):
                msg = f"{url!r} is not in local storage"
                raise ValueError(msg)
            return url.removeprefix("file://")
        if not url.startswith("s3://"):
            msg = f"{url!r} is not in S3 storage"
            raise ValueError(msg)
        return url.removeprefix("s3://")

    def put(self, source: IO[bytes], name: str) -> str:
        """Copy a readable binary file into storage, a block at a time.

        Returns:
            The object's URL.

        Raises:
            TransientError: The storage could not be written.
        """
        url = self.url_for(name)
        try:
            with self.fs.open(self._path(url), "wb") as target:
                shutil.copyfileobj(source, target, _COPY_BLOCK)
        except OSError as exc:
            msg = f"could not write {url}: {exc}"
            raise TransientError(msg, code="storage_unavailable") from exc
        return url

    def read(self, url: str) -> bytes:
        """The whole object.

        Raises:
            UserError: It does not exist (deleted behind Socialflow's back).
            TransientError: The storage could not be read.
        """
        try:
            with self.fs.open(self._path(url), "rb") as source:
                data: bytes = source.read()
        except FileNotFoundError as exc:
            msg = f"the stored file {url} is missing; upload the document again"
            raise UserError(msg, code="stored_file_missing") from exc
        except OSError as exc:
            msg = f"could not read {url}: {exc}"
            raise TransientError(msg, code="storage_unavailable") from exc
        return data

    def exists(self, url: str) -> bool:
        """Whether the object exists."""
        return bool(self.fs.exists(self._path(url)))

    def delete(self, url: str) -> None:
        """Delete the object; a missing one is not an error."""
        try:
            self.fs.rm_file(self._path(url))
        except FileNotFoundError:
            pass

    async def aput(self, source: IO[bytes], name: str) -> str:
        """``put`` in a worker thread."""
        return await asyncio.to_thread(self.put, source, name)

    async def aread(self, url: str) -> bytes:
        """``read`` in a worker thread."""
        return await asyncio.to_thread(self.read, url)

    async def adelete(self, url: str) -> None:
        """``delete`` in a worker thread."""
        await asyncio.to_thread(self.delete, url)

    async def aexists(self, url: str) -> bool:
        """``exists`` in a worker thread."""
        return await asyncio.to_thread(self.exists, url)
