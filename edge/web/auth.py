"""Who may read the status page and who may use the IT endpoints.

- Associates: the store PIN, entered once per tablet, gives a signed session cookie
  (``HttpOnly``, ``SameSite=Strict``). In ``open-lan`` mode reading needs nothing.
- IT: ``Authorization: Bearer <admin token>``. A header a browser never sends by
  itself, so the IT writes (restart) cannot be forged from another site.
- Forms (sign in, sign out) carry a CSRF token that must match a cookie
  (double submit), and a foreign ``Origin`` is refused.

Secrets are kept only as PBKDF2 hashes in memory; a clear PIN from the config is
hashed at start. Wrong PINs and tokens are counted per client address and,
past the limit, refused for a minute (429) whatever they are.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal

from edge.config.web import is_secret_hash

HASH_ITERATIONS = 120_000
Role = Literal["associate", "admin"]
SESSION_COOKIE = "edge_session"
CSRF_COOKIE = "edge_csrf"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_secret(
    secret: str, *, iterations: int = HASH_ITERATIONS, salt: bytes | None = None
) -> str:
    """``pbkdf2_sha256$ITERATIONS$SALT$HASH`` of ``secret``, as ``edge web hash-secret`` prints."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", secret.encode(), salt, iterations)
    return f"pbkdf2_sha256${iterations}${_b64(salt)}${_b64(digest)}"


class SecretCheck:
    """Checks a presented PIN or token against one stored hash, in constant time.

    A correct token is remembered (as a SHA-256 digest, a handful at most) so that
    an IT script or scraper sending it on every request does not pay PBKDF2 each time.
    """

    _REMEMBERED = 8

    def __init__(self, configured: str) -> None:
        stored = configured if is_secret_hash(configured) else hash_secret(configured)
        _, iterations, salt, digest = stored.split("$")
        self._iterations = int(iterations)
        self._salt = _unb64(salt)
        self._digest = _unb64(digest)
        self._known: OrderedDict[bytes, None] = OrderedDict()
        self._lock = threading.Lock()

    def matches(self, presented: str) -> bool:
        if not presented or len(presented) > 512:
            return False
        quick = hashlib.sha256(presented.encode()).digest()
        with self._lock:
            if quick in self._known:
                return True
        slow = hashlib.pbkdf2_hmac("sha256", presented.encode(), self._salt, self._iterations)
        if not hmac.compare_digest(slow, self._digest):
            return False
        with self._lock:
            self._known[quick] = None
            while len(self._known) > self._REMEMBERED:
                self._known.popitem(last=False)
        return True


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in browser. Holds no personal data: a role and an expiry."""

    role: Role
    expires: float


class SessionSigner:
    """Signs session and CSRF values with a key that lives only in this process.

    Restarting the page's service signs every tablet out: the price of never
    writing a key to disk.
    """

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or secrets.token_bytes(32)

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())

    def issue(self, role: Role, lifetime_s: float, now: float) -> str:
        payload = f"v1.{role}.{int(now + lifetime_s)}.{secrets.token_urlsafe(8)}"
        return f"{payload}.{self._mac(payload)}"

    def read(self, value: str | None, now: float) -> Session | None:
        if not value or len(value) > 256:
            return None
        payload, _, mac = value.rpartition(".")
        if not payload or not hmac.compare_digest(mac, self._mac(payload)):
            return None
        parts = payload.split(".")
        if len(parts) != 4 or parts[0] != "v1" or parts[1] not in ("associate", "admin"):
            return None
        try:
            expires = float(parts[2])
        except ValueError:
            return None
        if expires <= now:
            return None
        return Session(role=parts[1], expires=expires)  # type: ignore[arg-type]

    def new_csrf(self) -> str:
        return secrets.token_urlsafe(24)


def csrf_matches(cookie: str | None, submitted: str | None) -> bool:
    """Double-submit check: the form's token must equal the cookie's."""
    if not cookie or not submitted or len(submitted) > 128:
        return False
    return hmac.compare_digest(cookie.encode(), submitted.encode())


class FailureLimiter:
    """Counts wrong PINs and tokens per client address over a sliding minute.

    Memory is bounded: at most ``max_clients`` addresses are tracked, the oldest
    forgotten first. A global ceiling (ten clients' worth) also stops a guesser
    spreading over many addresses; while it holds, sign-in waits for everyone.
    """

    WINDOW_S = 60.0

    def __init__(self, per_client: int, *, max_clients: int = 4096) -> None:
        self.per_client = per_client
        self.global_limit = per_client * 10
        self.max_clients = max_clients
        self._failures: OrderedDict[str, list[float]] = OrderedDict()
        self._all: list[float] = []
        self._lock = threading.Lock()

    def _prune(self, stamps: list[float], now: float) -> list[float]:
        return [t for t in stamps if now - t < self.WINDOW_S]

    def retry_after(self, client: str, now: float) -> int:
        """Seconds the client must wait before trying again; 0 when it may try."""
        with self._lock:
            self._all = self._prune(self._all, now)
            stamps = self._prune(self._failures.get(client, []), now)
            waits = []
            if len(stamps) >= self.per_client:
                waits.append(stamps[-self.per_client] + self.WINDOW_S - now)
            if len(self._all) >= self.global_limit:
                waits.append(self._all[-self.global_limit] + self.WINDOW_S - now)
            return max(1, int(max(waits)) + 1) if waits else 0

    def failed(self, client: str, now: float) -> int:
        """Record a wrong attempt; return how many tries the client has left."""
        with self._lock:
            stamps = self._prune(self._failures.pop(client, []), now)
            stamps.append(now)
            self._failures[client] = stamps[-self.per_client:]
            while len(self._failures) > self.max_clients:
                self._failures.popitem(last=False)
            self._all = self._prune(self._all, now)
            self._all.append(now)
            return max(0, self.per_client - len(stamps))

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._failures.pop(client, None)

    @property
    def tracked_clients(self) -> int:
        return len(self._failures)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, if that is what it is."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
