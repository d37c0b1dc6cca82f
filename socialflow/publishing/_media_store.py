"""Where post media are kept, and the URLs Meta fetches them from.

Files go to the workspace's object storage (``knowledge.storage_url``: a local folder by
default, S3 or MinIO when configured) under generated names
(``publishing/<workspace>/<uuid>.<ext>``): an upload's own name never reaches a path.

Meta cURLs every image and video when a container is created, so each must be at a public
URL. With S3 that is a presigned URL of the object. Otherwise the app serves it at
``<publishing.media_base_url or api.public_url>/api/publishing/media/<id>?expires=…&sig=…``:
an HMAC-SHA256 over the media id and the expiry, keyed from the secret key, valid for
``publishing.media_url_seconds``. A self-hoster exposes that one path to the internet (the
rest of the app may stay private).
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from pathlib import Path
from typing import IO

from socialflow.core.settings import Settings
from socialflow.knowledge import ObjectStorage

__all__ = ["MEDIA_PATH", "MediaStore", "SignedUrlError"]

#: the route serving signed media (the API mounts it under this path)
MEDIA_PATH = "/api/publishing/media"
_EXTENSIONS = {"image/jpeg": ".jpg", "video/mp4": ".mp4", "video/quicktime": ".mov"}


class SignedUrlError(Exception):
    """A media link that is malformed, tampered with or expired."""


class MediaStore:
    """Stores post media and makes the URLs Meta fetches.

    Args:
        settings: The process's settings (storage location, secret key, public URL).
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.objects = ObjectStorage.from_settings(settings)
        self._key = hmac.new(
            settings.secret_key.encode(), b"socialflow publishing media urls", hashlib.sha256
        ).digest()

    def name_for(self, workspace_id: uuid.UUID, content_type: str) -> str:
        """A fresh object name for a file of ``content_type`` in the workspace's folder."""
        suffix = _EXTENSIONS.get(content_type, ".bin")
        return f"publishing/{workspace_id.hex}/{uuid.uuid4().hex}{suffix}"

    async def put(self, source: IO[bytes], name: str) -> str:
        """Copy a file into storage; returns its storage URL."""
        source.seek(0)
        return await self.objects.aput(source, name)

    async def delete(self, storage_url: str) -> None:
        """Delete a stored file; a missing one is not an error."""
        await self.objects.adelete(storage_url)

    def local_path(self, storage_url: str) -> Path | None:
        """The file of a local storage URL, or None for S3."""
        if self.objects.protocol != "file" or not storage_url.startswith("file://"):
            return None
        return Path(storage_url.removeprefix("file://"))

    def signature(self, media_id: uuid.UUID, expires: int) -> str:
        """The signature of a link to ``media_id`` valid until ``expires`` (Unix seconds)."""
        message = f"{media_id}:{expires}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def public_url(self, media_id: uuid.UUID, storage_url: str, *, now: float | None = None) -> str:
        """A URL Meta can fetch the file from, valid for ``media_url_seconds``."""
        seconds = self.settings.publishing.media_url_seconds
        if self.objects.protocol == "s3":
            url: str = self.objects.fs.url(storage_url.removeprefix("s3://"), expires=seconds)
            return url
        expires = int((now if now is not None else time.time()) + seconds)
        base = (self.settings.publishing.media_base_url or self.settings.api.public_url).rstrip("/")
        signature = self.signature(media_id, expires)
        return f"{base}{MEDIA_PATH}/{media_id}?expires={expires}&sig={signature}"

    def verify(self, media_id: uuid.UUID, expires: int, signature: str) -> None:
        """Accept a link only when signed here, unexpired, and not valid for too long.

        Raises:
            SignedUrlError: Tampered, expired, or with an expiry further than any link made.
        """
        now = time.time()
        longest = self.settings.publishing.media_url_seconds
        if expires < now:
            msg = "the media link expired"
            raise SignedUrlError(msg)
        if expires > now + longest + 60:
            msg = "the media link's expiry is later than any link this app makes"
            raise SignedUrlError(msg)
        if not hmac.compare_digest(self.signature(media_id, expires), signature):
            msg = "the media link's signature does not match"
            raise SignedUrlError(msg)
