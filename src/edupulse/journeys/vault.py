"""Channel secrets (SMTP passwords, robot and webhook signing secrets) are kept encrypted (Fernet) with a key
that lives outside the metadata database: EDUPULSE_JOURNEYS__SECRET_KEY, else a key file in the data
directory made on first use (readable by the server's user only)."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken


class SecretBox:
    def __init__(self, key: str | bytes) -> None:
        self._fernet = Fernet(key.encode() if isinstance(key, str) else key)

    @classmethod
    def open(cls, configured: str, data_dir: Path) -> SecretBox:
        if configured:
            return cls(configured)
        path = data_dir / "journeys.key"
        if not path.exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, Fernet.generate_key())
                os.fsync(fd)
            finally:
                os.close(fd)
        return cls(path.read_bytes().strip())

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode() if secret else ""

    def unseal(self, sealed: str) -> str:
        if not sealed:
            return ""
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise ValueError("a channel secret cannot be read with this server's key: set it again") from None
