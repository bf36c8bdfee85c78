"""Item images fetched for packing slips: a bounded time and size, never a failure.

A URL that is not ``http(s)``, an answer that is slow, too large, not an
image or an error gives ``None``, and the slip draws a placeholder.

Image URLs come from marketplace data, which the host does not control, and
the fetch runs on the host's own network: a URL whose host name resolves to
a loopback, private, link-local or otherwise non-public address is refused
unless the fetcher is told ``allow_private`` (``connector-host web
--allow-private-images``, for a sandbox or an image server on the operator's
own network). The check resolves the name before the request; a name that
resolves differently a moment later (DNS rebinding) is not caught, which is
why the fetch also follows no redirects. Images
are kept for the length of one :class:`ImageFetcher` (one PDF), so an image
shared by many lines is fetched once.
"""

from __future__ import annotations

import io
import ipaddress
import logging
import socket
import time
from urllib.parse import urlsplit

import httpx
from PIL import Image, UnidentifiedImageError

from connector_core.secrets import redact

log = logging.getLogger("connector_core.web.images")

MAX_PIXELS = 25_000_000  # decompression bombs: refuse before decoding


class ImageFetcher:
    """Fetches images with a per-image ``timeout`` (connect + whole answer) and a ``max_bytes`` cap."""

    def __init__(
        self,
        *,
        timeout: float = 5.0,
        max_bytes: int = 2_000_000,
        budget: float = 20.0,
        client: httpx.Client | None = None,
        allow_private: bool = False,
    ) -> None:
        self.timeout = timeout
        self.allow_private = allow_private
        self.max_bytes = max_bytes
        self.deadline = time.monotonic() + budget
        """All images of one PDF share this deadline; past it the rest are placeholders."""
        self._client = client or httpx.Client(timeout=httpx.Timeout(timeout), follow_redirects=False)
        self._own_client = client is None
        self._cache: dict[str, bytes | None] = {}

    def close(self) -> None:
        """Close the HTTP client (if this fetcher made it)."""
        if self._own_client:
            self._client.close()

    def __enter__(self) -> ImageFetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, url: str | None) -> bytes | None:
        """PNG bytes of the image at ``url``, or ``None`` (draw a placeholder)."""
        if not url:
            return None
        if url not in self._cache:
            self._cache[url] = self._fetch(url)
        return self._cache[url]

    def _fetch(self, url: str) -> bytes | None:
        if not url.startswith(("http://", "https://")):
            return None
        left = self.deadline - time.monotonic()
        if left <= 0:
            return None
        if not self.allow_private and not _public(url):
            log.info("image %s not fetched: its host is not a public address", redact(url))
            return None
        wait = min(self.timeout, left)
        started = time.monotonic()
        try:
            with self._client.stream("GET", url, timeout=httpx.Timeout(wait)) as response:
                if response.status_code != 200:
                    return None
                declared = response.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > self.max_bytes:
                    return None
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > self.max_bytes or time.monotonic() - started > wait:
                        return None
                    chunks.append(chunk)
        except (httpx.HTTPError, OSError) as exc:
            log.info("image %s not fetched: %s", redact(url), type(exc).__name__)
            return None
        return _as_png(b"".join(chunks))


def _public(url: str) -> bool:
    """Whether every address the URL's host resolves to is a public one (see the module docstring)."""
    try:
        host = urlsplit(url).hostname
        if not host:
            return False
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, ValueError, UnicodeError):
        return False
    addresses = {ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos}
    return bool(addresses) and all(a.is_global for a in addresses)


def _as_png(data: bytes) -> bytes | None:
    """Re-encode ``data`` as a small PNG (thumbnails), or ``None`` if it is no image we can read."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.width * img.height > MAX_PIXELS:
                return None
            img.thumbnail((240, 240))
            out = io.BytesIO()
            img.convert("RGBA" if img.mode in ("RGBA", "LA", "P") else "RGB").save(out, format="PNG")
            return out.getvalue()
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None
