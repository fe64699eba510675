"""Who may read the status page and who may use the IT endpoints.

- Associates: the store PIN, entered once per tablet, gives a signed session cookie
  (``HttpOnly``, ``SameSite=Strict``, ``Secure`` over HTTPS), valid until it expires
  or the tablet signs out. In ``open-lan`` mode reading needs nothing.
- IT: ``Authorization: Bearer <admin token>``. A header a browser never sends by
  itself, so the IT writes (restart) cannot be forged from another site.
- Forms (sign in, sign out) carry a CSRF token that must match a cookie
  (double submit), and a foreign ``Origin`` is refused.

Secrets are kept only as PBKDF2 hashes in memory; a clear PIN from the config is
hashed at start. Wrong PINs and tokens are counted per client address and kind
of secret (:class:`FailureLimiter`); past the limit that kind is refused (429) from
that address for a minute. Wrong PINs from all addresses together have a ceiling
per hour too, which holds back only devices that have not signed in before.
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
DEVICE_COOKIE = "edge_device"


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
    """Signs session, device and CSRF values with a key that lives only in this process,
    and keeps the list of sessions still signed in.

    A session cookie is valid only while its id is in that list: signing out removes
    it, so a copy of the cookie is worth nothing afterwards. Restarting the page's
    service signs every tablet out: the price of never writing a key to disk.
    """

    MAX_SESSIONS = 1024

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or secrets.token_bytes(32)
        self._live: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())

    def _payload(self, value: str | None) -> list[str] | None:
        """The signed fields of ``value``; None when it is not one of ours."""
        if not value or len(value) > 256:
            return None
        payload, _, mac = value.rpartition(".")
        if not payload or not hmac.compare_digest(mac, self._mac(payload)):
            return None
        return payload.split(".")

    def issue(self, role: Role, lifetime_s: float, now: float) -> str:
        session_id = secrets.token_urlsafe(12)
        expires = int(now + lifetime_s)
        with self._lock:
            self._live = OrderedDict((k, e) for k, e in self._live.items() if e > now)
            self._live[session_id] = expires
            while len(self._live) > self.MAX_SESSIONS:  # the oldest tablet signs in again
                self._live.popitem(last=False)
        payload = f"v1.{role}.{expires}.{session_id}"
        return f"{payload}.{self._mac(payload)}"

    def read(self, value: str | None, now: float) -> Session | None:
        parts = self._payload(value)
        if parts is None or len(parts) != 4 or parts[0] != "v1" \
                or parts[1] not in ("associate", "admin"):
            return None
        try:
            expires = float(parts[2])
        except ValueError:
            return None
        if expires <= now:
            return None
        with self._lock:
            if parts[3] not in self._live:
                return None  # signed out, or forgotten at a restart
        return Session(role=parts[1], expires=expires)  # type: ignore[arg-type]

    def revoke(self, value: str | None) -> None:
        """Sign the session of ``value`` out: its cookie is refused from now on."""
        parts = self._payload(value)
        if parts is not None and len(parts) == 4 and parts[0] == "v1":
            with self._lock:
                self._live.pop(parts[3], None)

    def issue_device(self, lifetime_s: float, now: float) -> str:
        """A mark for a browser whose user gave the right PIN: it keeps signing in
        while wrong PINs from other devices hold the box back."""
        payload = f"d1.{int(now + lifetime_s)}.{secrets.token_urlsafe(8)}"
        return f"{payload}.{self._mac(payload)}"

    def known_device(self, value: str | None, now: float) -> bool:
        parts = self._payload(value)
        if parts is None or len(parts) != 3 or parts[0] != "d1":
            return False
        return parts[1].isdigit() and int(parts[1]) > now

    def new_csrf(self) -> str:
        return secrets.token_urlsafe(24)


def csrf_matches(cookie: str | None, submitted: str | None) -> bool:
    """Double-submit check: the form's token must equal the cookie's."""
    if not cookie or not submitted or len(submitted) > 128:
        return False
    return hmac.compare_digest(cookie.encode(), submitted.encode())


Kind = Literal["pin", "admin", "metrics"]


class Limited(Exception):
    """A try refused before it was checked: too many wrong ones lately.

    Attributes:
        wait: seconds until the next try is allowed.
        box_wide: refused by the ceiling on wrong PINs from all devices together, not
            by this device's own count.
    """

    def __init__(self, wait: int, *, box_wide: bool = False) -> None:
        super().__init__(f"wait {wait} s")
        self.wait = wait
        self.box_wide = box_wide


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try reserved by :meth:`FailureLimiter.begin`: counted as wrong until it is
    shown to be right, so concurrent tries cannot all slip under the limit."""

    kind: Kind
    client: str
    at: float
    box_wide: bool


class FailureLimiter:
    """Counts wrong PINs and tokens per client address and per kind of secret.

    - Per ``(client, kind)``: ``per_client`` wrong tries over a sliding minute. A
      device that guesses PINs does not lose its tokens, and the right secret of one
      kind never clears the count of another (a known metrics token must not reset
      the PIN count of its address).
    - Wrong PINs from all devices together: ``pin_per_hour`` over a sliding hour, so
      that spreading a guess over many addresses stays slow. It holds back only
      sign-ins that ask for it (devices that have not signed in before); tokens are
      never held back by other devices' failures.

    :meth:`begin` checks the limit and records the try as wrong in one step under the
    lock; :meth:`succeeded` or :meth:`release` takes that record back. Memory is
    bounded: at most ``max_clients`` (address, kind) pairs, the oldest forgotten first.
    """

    WINDOW_S = 60.0
    PIN_WINDOW_S = 3600.0

    def __init__(self, per_client: int, *, pin_per_hour: int, max_clients: int = 4096) -> None:
        self.per_client = per_client
        self.pin_per_hour = pin_per_hour
        self.max_clients = max_clients
        self._failures: OrderedDict[tuple[str, Kind], list[float]] = OrderedDict()
        self._pins: list[float] = []
        self._lock = threading.Lock()

    @staticmethod
    def _wait(stamps: list[float], limit: int, window: float, now: float) -> int:
        return max(1, int(stamps[-limit] + window - now) + 1)

    def begin(self, kind: Kind, client: str, now: float, *, box_wide: bool = False) -> Attempt:
        """Reserve a try of ``kind`` from ``client`` (counted as wrong from now on).

        Args:
            box_wide: also count it against, and hold it to, the ceiling on wrong PINs
                from all devices together.

        Raises:
            Limited: the client (or, with ``box_wide``, the box) is over its limit.
        """
        key = (client, kind)
        with self._lock:
            stamps = [t for t in self._failures.pop(key, []) if now - t < self.WINDOW_S]
            if stamps:
                self._failures[key] = stamps
            if len(stamps) >= self.per_client:
                raise Limited(self._wait(stamps, self.per_client, self.WINDOW_S, now))
            if box_wide:
                self._pins = [t for t in self._pins if now - t < self.PIN_WINDOW_S]
                if len(self._pins) >= self.pin_per_hour:
                    raise Limited(self._wait(self._pins, self.pin_per_hour,
                                             self.PIN_WINDOW_S, now), box_wide=True)
                self._pins.append(now)
            stamps.append(now)
            self._failures[key] = stamps
            while len(self._failures) > self.max_clients:
                self._failures.popitem(last=False)
        return Attempt(kind=kind, client=client, at=now, box_wide=box_wide)

    def failed(self, attempt: Attempt) -> int:
        """The try was wrong (it stays counted); return how many the client has left."""
        with self._lock:
            stamps = self._failures.get((attempt.client, attempt.kind), [])
            return max(0, self.per_client - len(stamps))

    def release(self, attempt: Attempt) -> None:
        """Take the try back without judging it (it was not a guess at this kind)."""
        with self._lock:
            self._forget(attempt)

    def succeeded(self, attempt: Attempt) -> None:
        """The try was right: forget it and the client's earlier failures of its kind."""
        with self._lock:
            self._forget(attempt)
            self._failures.pop((attempt.client, attempt.kind), None)

    def _forget(self, attempt: Attempt) -> None:
        stamps = self._failures.get((attempt.client, attempt.kind))
        if stamps and attempt.at in stamps:
            stamps.remove(attempt.at)
            if not stamps:
                del self._failures[(attempt.client, attempt.kind)]
        if attempt.box_wide and attempt.at in self._pins:
            self._pins.remove(attempt.at)

    @property
    def tracked_clients(self) -> int:
        """Addresses with a wrong try in the last minute (or one being checked)."""
        with self._lock:
            return len({client for client, _ in self._failures})


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, if that is what it is."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
