"""Attachment files stored once by content hash under a folder (instance/attachments by default)."""
from __future__ import annotations

import base64
import binascii
import hashlib
import mimetypes
import os
from pathlib import Path

SHA_RX_LEN = 64


class AttachmentStore:
    def __init__(self, root: str | Path, max_mb: float = 25):
        self.root = Path(root)
        self.max_bytes = int(max_mb * 1024 * 1024)

    def path(self, sha: str) -> Path:
        if len(sha) != SHA_RX_LEN or any(c not in "0123456789abcdef" for c in sha):
            raise ValueError("not a file reference")
        return self.root / sha[:2] / sha

    def put(self, name: str, data: bytes, mime: str | None = None, max_mb: float | None = None) -> dict:
        limit = int(max_mb * 1024 * 1024) if max_mb else self.max_bytes
        if len(data) > limit:
            raise ValueError(f"the file is larger than {limit // (1024 * 1024)} MB")
        sha = hashlib.sha256(data).hexdigest()
        p = self.path(sha)
        if not p.exists():
            p.parent.mkdir(parents=True, exist_ok=True)
            tmp = p.with_suffix(".part")
            tmp.write_bytes(data)
            os.replace(tmp, p)
        name = os.path.basename(name or "file")[:200]
        return {"name": name, "sha256": sha, "size": len(data),
                "mime": mime or mimetypes.guess_type(name)[0] or "application/octet-stream"}

    def put_base64(self, value: dict, max_mb: float | None = None) -> dict:
        try:
            data = base64.b64decode(value.get("content_base64", ""), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("content_base64 is not valid base64") from None
        return self.put(value.get("name", "file"), data, value.get("mime"), max_mb)

    def open(self, sha: str):
        return self.path(sha).open("rb")
