"""Secrets at rest: Fernet encryption with the key from ``O2C_ENCRYPTION_KEY``.

In embedded mode, with no key configured, one is generated once into the instance folder (mode 0600)
and reused. Several comma-separated keys may be given: the first encrypts, all decrypt (rotation).

Every secret that is encrypted or decrypted here (and the keys themselves) is also *held* by
``hub.scrubbing``: this is the one door connection secrets pass through, so whatever a platform echoes
back later is cut out of the texts the hub stores.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from hub import scrubbing


class SecretBox:
    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("at least one encryption key is required")
        try:
            self._fernet = MultiFernet([Fernet(k.strip().encode()) for k in keys])
        except ValueError as exc:
            raise ValueError("O2C_ENCRYPTION_KEY is not a valid Fernet key (32 url-safe base64 bytes)") from exc
        scrubbing.hold(*keys, pinned=True)

    @classmethod
    def from_settings(cls, encryption_key: str | None, instance_path: Path) -> SecretBox:
        if encryption_key:
            return cls([k for k in encryption_key.split(",") if k.strip()])
        return cls([_instance_key(instance_path)])

    def encrypt(self, secrets: dict[str, str | None]) -> str:
        scrubbing.hold_mapping(secrets)
        return self._fernet.encrypt(json.dumps(secrets, sort_keys=True).encode()).decode()

    def decrypt(self, token: str | None) -> dict[str, str | None]:
        if not token:
            return {}
        try:
            secrets = json.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken as exc:
            raise ValueError("stored secrets cannot be decrypted with the configured O2C_ENCRYPTION_KEY") from exc
        if isinstance(secrets, dict):
            scrubbing.hold_mapping(secrets)
        return secrets

    def rotate(self, token: str) -> str:
        return self._fernet.rotate(token.encode()).decode()


def _instance_key(instance_path: Path) -> str:
    path = instance_path / "encryption.key"
    if path.exists():
        return path.read_text().strip()
    instance_path.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key().decode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race: use its key
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key
