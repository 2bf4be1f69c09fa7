"""The dashboard's session cookie and its CSRF token.

With API keys on, signing in (``POST /ui/login``) with an API key sets the session
cookie: ``HttpOnly``, ``SameSite=Strict``, ``Path=/ui``, ``Secure`` behind TLS, signed
and time-stamped (itsdangerous; refused after ``ui.session_minutes``). It carries the
key *sealed* (NaCl secret box), never in clear: each page hands it to the API's own key
check (``Host.admit``), so a key disabled, deleted or expired is refused at once, and
the forms' in-process calls (``ui.inprocess``) present it to the ``/v1`` guard like any
client. Every visitor, signed in or not, gets a session with a random CSRF token that
each state-changing form echoes (``csrf``); a POST without it is refused 403.

The signing and sealing keys derive from ``<data_dir>/ui-session.key`` (32 random
bytes, created once, mode 0600), so every HTTP worker of the node accepts the same
cookie and sessions survive a restart; delete the file to sign everyone out.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import secrets
from pathlib import Path
from typing import Final

import msgspec
from itsdangerous import BadSignature, URLSafeTimedSerializer
from nacl.exceptions import CryptoError
from nacl.secret import SecretBox

COOKIE_NAME: Final = "stemedb_ui"
KEY_FILE: Final = "ui-session.key"
KEY_BYTES: Final = 32


class Session(msgspec.Struct, frozen=True):
    """One visitor's session: the CSRF token, and the sealed API key once signed in."""

    csrf: str
    sealed: str | None = None


def _load_key(path: Path) -> bytes:
    """The node's session key, created on first use (two workers may race: one wins)."""
    with contextlib.suppress(FileNotFoundError):
        key = path.read_bytes()
        if len(key) == KEY_BYTES:
            return key
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, secrets.token_bytes(KEY_BYTES))
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # never replaces a key another worker wrote first
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_bytes()


def _derive(key: bytes, purpose: bytes) -> bytes:
    return hashlib.blake2b(key, digest_size=32, person=purpose).digest()


class Sessions:
    """Reads, mints and writes session cookies (the key file is read on first use)."""

    def __init__(self, data_dir: Path, max_age_seconds: float) -> None:
        self.path = data_dir / KEY_FILE
        self.max_age_seconds = max_age_seconds
        self._signer: URLSafeTimedSerializer | None = None
        self._box: SecretBox | None = None

    def _keys(self) -> tuple[URLSafeTimedSerializer, SecretBox]:
        if self._signer is None or self._box is None:
            key = _load_key(self.path)
            self._signer = URLSafeTimedSerializer(
                _derive(key, b"stemedb-ui-sign"), salt="stemedb-ui-session"
            )
            self._box = SecretBox(_derive(key, b"stemedb-ui-seal"))
        return self._signer, self._box

    def read(self, cookie: str | None) -> Session | None:
        """The session in ``cookie``; None when absent, forged, altered or expired."""
        if not cookie:
            return None
        signer, _ = self._keys()
        try:
            raw = signer.loads(cookie, max_age=int(self.max_age_seconds))
            return msgspec.convert(raw, Session)
        except (BadSignature, msgspec.ValidationError):
            return None

    @staticmethod
    def anonymous() -> Session:
        return Session(csrf=secrets.token_urlsafe(32))

    def signed_in(self, secret: str) -> Session:
        """A new session (a new CSRF token too) holding ``secret`` sealed."""
        _, box = self._keys()
        sealed = base64.urlsafe_b64encode(box.encrypt(secret.encode())).decode()
        return Session(csrf=secrets.token_urlsafe(32), sealed=sealed)

    def secret_of(self, session: Session) -> str | None:
        if session.sealed is None:
            return None
        _, box = self._keys()
        try:
            return box.decrypt(base64.urlsafe_b64decode(session.sealed)).decode()
        except (CryptoError, ValueError):
            return None

    def cookie_value(self, session: Session) -> str:
        signer, _ = self._keys()
        return signer.dumps(msgspec.to_builtins(session))


def same_token(expected: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())


__all__ = ["COOKIE_NAME", "Session", "Sessions", "same_token"]
