"""Keyed, truncated, daily-rotated pseudonyms: the only form an address takes past the parser.

Regulators treat a plain or salted hash of a MAC as a persistent identifier (the
allocated space is enumerable in minutes), so a pseudonym here is
HMAC-SHA256(key, address) truncated to a few bits, where the key is

- random per box and per process (read from the kernel's CSPRNG straight into a
  ``bytearray``), never written anywhere, never shared between two instances;
- rotated at local midnight: the old key's bytes are zeroed and a new one drawn, so
  pseudonyms of two days cannot be linked, not even by this box;
- bound to one day: a frame of any other day (a damaged time stamp, a clock stepped
  either way) gets a new key too, so a far-future frame cannot hold one key over
  the days after it, and a key once replaced is never used again.

The same key pseudonymizes the site's exclusion list (the store's own devices) at
each rotation, so frames from those devices are dropped by pseudonym and the list's
raw addresses are never compared against, or stored next to, captured ones.

Time comes from the frames (``advance``) or from an injectable clock (``tick``), so
tests can cross midnight in microseconds.
"""

from __future__ import annotations

import hmac
import os
import re
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

KEY_BYTES = 32
_MAC = re.compile(r"^[0-9a-f]{2}([:-]?)[0-9a-f]{2}(\1[0-9a-f]{2}){4}$")
# A frame this little before its key's day (sent just before midnight, read just after)
# keeps the new key rather than drawing yet another for the day that has ended.
LATE_FRAME_S = 60.0


def random_key(size: int = KEY_BYTES) -> bytearray:
    """``size`` random bytes, read into a bytearray so they can be wiped later."""
    key = bytearray(size)
    try:
        with open("/dev/urandom", "rb", buffering=0) as source:
            view = memoryview(key)
            filled = 0
            while filled < size:
                filled += source.readinto(view[filled:]) or 0
    except OSError:      # no /dev/urandom (not Linux): os.urandom leaves a copy to the GC
        key[:] = os.urandom(size)
    return key


def parse_mac(text: str) -> bytes:
    """``aa:bb:cc:dd:ee:ff`` (or ``-`` separated, or bare hex) to 6 bytes.

    Raises:
        ValueError: not a MAC address.
    """
    value = text.strip().lower()
    if not _MAC.match(value):
        raise ValueError(f"expected a MAC address such as 02:00:5e:10:00:01, got {text!r}")
    return bytes.fromhex(value.replace(":", "").replace("-", ""))


def wipe(buffer: bytearray) -> None:
    """Overwrite ``buffer`` with zeros in place."""
    buffer[:] = bytes(len(buffer))


class Anonymizer:
    """Pseudonyms and fingerprint salts under one random key per local day.

    Args:
        bits: pseudonym length. 20 bits keep collisions under 1% among 10,000 devices
            a day while leaving every pseudonym shared by many possible addresses.
        exclude: raw addresses to drop (pseudonymized under each day's key).
        timezone: where "midnight" is.
        key_factory: source of key bytes (tests inject a fixed one); default
            :func:`random_key`.
        clock: epoch seconds now, for :meth:`tick` (tests inject one).
    """

    def __init__(
        self,
        *,
        bits: int = 20,
        exclude: Iterable[bytes] = (),
        timezone: tzinfo | str = "UTC",
        key_factory: Callable[[int], bytes | bytearray] = random_key,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not 8 <= bits <= 64:
            raise ValueError(f"pseudonym bits must be 8..64, got {bits}")
        self.bits = bits
        self._shift = 64 - bits
        self._exclude = tuple(bytes(address) for address in exclude)
        self._timezone = ZoneInfo(timezone) if isinstance(timezone, str) else timezone
        self._key_factory = key_factory
        self._clock = clock
        self._key: bytearray | None = None
        self._mac: hmac.HMAC | None = None
        self._salt = 0
        self._excluded: frozenset[int] = frozenset()
        self._day_start = float("inf")
        self._day_end = float("-inf")
        self.generation = 0      # how many keys this instance has drawn
        self.day: str | None = None

    # -- time ---------------------------------------------------------------------

    def advance(self, now: float) -> None:
        """Draw a new key unless ``now`` is in the current key's local day.

        Time may go either way: a frame of a later day, or of an earlier one (after a
        far-future time stamp, or a clock stepped back), gets a fresh key for its own
        day, never an earlier key (those are wiped). Only a frame at most
        ``LATE_FRAME_S`` before the day keeps the current key (late, not another day).
        """
        if not self._day_start - LATE_FRAME_S <= now < self._day_end:
            self._rotate(now)

    def tick(self) -> None:
        """Rotate by the clock when no frame arrives (a quiet night still changes key)."""
        self.advance(self._clock())

    def _rotate(self, now: float) -> None:
        self.wipe()
        fresh = self._key_factory(KEY_BYTES)
        self._key = fresh if isinstance(fresh, bytearray) else bytearray(fresh)
        self._mac = hmac.new(self._key, digestmod="sha256")
        self._salt = int.from_bytes(self._digest(b"fingerprint-salt")[:8], "big")
        self._excluded = frozenset(self._pseudonym(address) for address in self._exclude)
        local = datetime.fromtimestamp(now, self._timezone)
        self.day = local.date().isoformat()
        self._day_start = datetime.combine(local.date(), datetime.min.time(),
                                           tzinfo=self._timezone).timestamp()
        midnight = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(),
                                    tzinfo=self._timezone)
        self._day_end = midnight.timestamp()
        self.generation += 1

    def wipe(self) -> None:
        """Zero the current key and forget everything derived from it."""
        if self._key is not None:
            wipe(self._key)
        self._key = None
        self._mac = None
        self._salt = 0
        self._excluded = frozenset()
        self._day_start = float("inf")
        self._day_end = float("-inf")

    @property
    def has_key(self) -> bool:
        return self._key is not None

    # -- pseudonyms -------------------------------------------------------------------

    def _digest(self, data: bytes) -> bytes:
        if self._mac is None:
            raise RuntimeError("no key yet (or wiped): call advance() with the frame's time first")
        mac = self._mac.copy()
        mac.update(data)
        return mac.digest()

    def _pseudonym(self, address: bytes) -> int:
        return int.from_bytes(self._digest(address)[:8], "big") >> self._shift

    def pseudonym(self, address: bytes) -> int:
        """The current day's pseudonym of a 6-byte address."""
        return self._pseudonym(address)

    def is_excluded(self, pseudonym: int) -> bool:
        return pseudonym in self._excluded

    @property
    def excludes_any(self) -> bool:
        """The site lists devices of its own to exclude (else no lookup is needed)."""
        return bool(self._exclude)

    def fingerprint(self, signature: tuple) -> int:
        """A 64-bit value for an IE signature, salted per day (so not linkable across days).

        Uses Python's keyed (SipHash) ``hash``: a fingerprint lives in memory only and
        marks a device model/configuration, not a device.
        """
        return hash((self._salt, signature))
