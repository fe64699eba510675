"""Estimate devices from pseudonyms, despite MAC address randomization.

A phone that randomizes shows a new address per scan or per few scans (an iPhone in
the shared captures: 465 addresses in 52 minutes), so counting pseudonyms counts
scans, not phones. This estimator chains pseudonyms ("aliases") into devices, online
and in bounded memory:

1. A known alias belongs to its device.
2. A new alias joins a recent device (seen within ``link_window_s``) that sent the
   same IE fingerprint (the probe's capabilities, element order and vendor
   elements: a model/OS/configuration signature) and whose own current alias is a
   randomized one. The sequence counter breaks ties: many phones keep it running
   across address changes, so a device whose last sequence number is just below
   the new alias's first is the one (Vanhoef et al. 2016). Otherwise the most
   recently seen candidate wins.
3. The locally-administered bit says whether an address rotates. A globally
   administered address is the device's fixed one: it starts its own device, and
   nothing links onto it.
4. Two aliases in use at the same time are two devices: when an older alias of a
   device sends again after a newer one joined (later than the reordering tolerance
   of multi-sniffer captures), the newer alias is split off into a device of its own.
5. A device of one alias whose first frames carried an unusual fingerprint, and whose
   next frames carry a fingerprint a recent device has, is that device's next alias.

Fingerprints collide between phones of one model, so some devices merge: the
estimate is a sample to calibrate against people (see ``calibration``), not a census.
State is per day: :meth:`DeviceEstimator.reset` runs at every key rotation, and a
device unseen for ``forget_after_s`` is forgotten (a later return is a new visit).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edge.wifi.parser import Probe

SEQ_MODULO = 4096
# Devices unheard for forget_after_s are dropped at most this long (of frame time) late.
EXPIRY_INTERVAL_S = 60.0


@dataclass(slots=True, eq=False)
class Device:
    """One estimated device (in memory only; never stored)."""

    id: int
    first_seen: float
    last_seen: float
    last_seq: int
    current: int                  # pseudonym of the alias that started last
    rotating: bool                # that alias is randomized, so a new one may follow
    fingerprints: set[int] = field(default_factory=set)
    pseudonyms: list[int] = field(default_factory=list)   # its aliases, oldest first


@dataclass(slots=True, eq=False)
class _Alias:
    device: Device
    first_seen: float
    last_seen: float


class DeviceEstimator:
    """Pseudonyms in, estimated devices out; bounded, per-day state.

    Args:
        link_window_s: how long after a device was last seen a new alias may still
            join it by fingerprint.
        forget_after_s: a device unseen this long has left; its state is dropped.
        seq_gap_max: largest forward jump of the 12-bit sequence counter that still
            counts as "the same counter".
        overlap_tolerance_s: frames of one device captured by several sniffers (or
            channels) arrive out of order by up to this much.
        trust_la_bit: False for captures whose addresses were re-randomized by a
            publisher, where the locally-administered bit means nothing.
        max_devices: hard bound on tracked devices; the longest-unseen go first.
    """

    def __init__(
        self,
        *,
        link_window_s: float = 600.0,
        forget_after_s: float = 1800.0,
        seq_gap_max: int = 64,
        overlap_tolerance_s: float = 1.0,
        trust_la_bit: bool = True,
        max_devices: int = 50_000,
    ) -> None:
        if forget_after_s < link_window_s:
            raise ValueError("forget_after_s must be at least link_window_s")
        self.link_window_s = link_window_s
        self.forget_after_s = forget_after_s
        self.seq_gap_max = seq_gap_max
        self.overlap_tolerance_s = overlap_tolerance_s
        self.trust_la_bit = trust_la_bit
        self.max_devices = max_devices
        self._next_id = 0               # never reused, even across resets
        self._aliases: dict[int, _Alias] = {}
        self._devices: dict[int, Device] = {}
        self._by_fingerprint: dict[int, list[Device]] = {}
        self._last_expiry = float("-inf")
        self.splits = 0
        self.last_merge: tuple[int, int] | None = None   # (absorbed id, kept id), last observe

    def __len__(self) -> int:
        return len(self._devices)

    @property
    def alias_count(self) -> int:
        return len(self._aliases)

    def reset(self) -> None:
        """Forget every device and alias (at key rotation: no link across days)."""
        self._aliases.clear()
        self._devices.clear()
        self._by_fingerprint.clear()
        self._last_expiry = float("-inf")

    def observe(self, probe: Probe) -> Device:
        """The device that sent ``probe`` (which must have a pseudonym)."""
        now = probe.timestamp
        pseudonym = probe.pseudonym
        assert pseudonym is not None, "only probes above the RSSI gate reach the estimator"
        self.last_merge = None
        if now - self._last_expiry >= EXPIRY_INTERVAL_S:
            self.expire(now)
        alias = self._aliases.get(pseudonym)
        if alias is None:
            device = self._link(probe)
            if device is None:
                device = self._new_device(now, probe.seq, pseudonym, probe.randomized)
            device.pseudonyms.append(pseudonym)
            alias = _Alias(device, now, now)
            self._aliases[pseudonym] = alias
            device.current = pseudonym
            device.rotating = probe.randomized or not self.trust_la_bit
        else:
            device = alias.device
            if device.current != pseudonym:
                device = self._check_overlap(alias, pseudonym, now)
            elif len(device.pseudonyms) == 1 and probe.fingerprint not in device.fingerprints:
                device = self._adopt(alias, probe) or device
        if now > alias.last_seen:
            alias.last_seen = now
        if now > device.last_seen:
            device.last_seen = now
        device.last_seq = probe.seq
        fingerprint = probe.fingerprint
        if fingerprint not in device.fingerprints:
            device.fingerprints.add(fingerprint)
            self._by_fingerprint.setdefault(fingerprint, []).append(device)
        return device

    def _new_device(self, now: float, seq: int, pseudonym: int, randomized: bool) -> Device:
        if len(self._devices) >= self.max_devices:
            # Evict a tenth at once: one sort per many new devices, not one per device.
            self._evict(max(1, self.max_devices // 10))
        device = Device(self._next_id, now, now, seq, pseudonym,
                        randomized or not self.trust_la_bit)
        self._next_id += 1
        self._devices[device.id] = device
        return device

    def _adopt(self, alias: _Alias, probe: Probe) -> Device | None:
        """A one-alias device shows a second fingerprint that a recent device already
        has: its first frames were an odd variant (phones send a few), so it is that
        device's next alias. Moves it there; ``last_merge`` tells the window counters."""
        young = alias.device
        target = self._link(probe, exclude=young)
        if target is None:
            return None
        alias.device = target
        target.pseudonyms.extend(young.pseudonyms)
        young.pseudonyms.clear()
        target.first_seen = min(target.first_seen, young.first_seen)
        target.last_seen = max(target.last_seen, young.last_seen)
        target.current = young.current
        target.rotating = young.rotating
        for fingerprint in young.fingerprints - target.fingerprints:
            target.fingerprints.add(fingerprint)
            self._by_fingerprint.setdefault(fingerprint, []).append(target)
        self._drop(young)
        self.last_merge = (young.id, target.id)
        return target

    def _link(self, probe: Probe, exclude: Device | None = None) -> Device | None:
        if self.trust_la_bit and not probe.randomized:
            return None     # a globally administered address is a device's fixed one
        candidates = self._by_fingerprint.get(probe.fingerprint)
        if not candidates:
            return None
        now = probe.timestamp
        by_sequence: Device | None = None
        smallest_gap = self.seq_gap_max + 1
        recent: Device | None = None
        for device in candidates:
            if device is exclude or not device.rotating:
                continue
            if now - device.last_seen > self.link_window_s:
                continue
            gap = (probe.seq - device.last_seq) % SEQ_MODULO
            if 0 < gap < smallest_gap:
                by_sequence, smallest_gap = device, gap
            if recent is None or device.last_seen > recent.last_seen:
                recent = device
        return by_sequence or recent

    def _check_overlap(self, alias: _Alias, pseudonym: int, now: float) -> Device:
        """An older alias sends again clearly after a newer one started: both are live at
        once, so the newer belongs to another device."""
        device = alias.device
        newer = self._aliases.get(device.current)
        if newer is not None and now > newer.first_seen + self.overlap_tolerance_s:
            split = self._new_device(newer.first_seen, device.last_seq, device.current,
                                     device.rotating)
            split.last_seen = newer.last_seen
            split.pseudonyms.append(device.current)
            device.pseudonyms.remove(device.current)
            for fingerprint in device.fingerprints:
                split.fingerprints.add(fingerprint)
                self._by_fingerprint.setdefault(fingerprint, []).append(split)
            newer.device = split
            self.splits += 1
            device.current = pseudonym
        return device

    def expire(self, now: float) -> None:
        """Drop devices (and their aliases) unseen for ``forget_after_s``, and the old
        aliases of devices still here (an iPhone leaves one per scan)."""
        self._last_expiry = now
        horizon = now - self.forget_after_s
        for device in [d for d in self._devices.values() if d.last_seen < horizon]:
            self._drop(device)
        stale = [p for p, a in self._aliases.items()
                 if a.last_seen < horizon and a.device.current != p]
        for pseudonym in stale:
            alias = self._aliases.pop(pseudonym)
            alias.device.pseudonyms.remove(pseudonym)

    def _evict(self, count: int) -> None:
        for device in sorted(self._devices.values(), key=lambda d: d.last_seen)[:count]:
            self._drop(device)

    def _drop(self, device: Device) -> None:
        self._devices.pop(device.id, None)
        for pseudonym in device.pseudonyms:
            alias = self._aliases.get(pseudonym)
            if alias is not None and alias.device is device:
                del self._aliases[pseudonym]
        for fingerprint in device.fingerprints:
            chain = self._by_fingerprint.get(fingerprint)
            if chain is None:
                continue
            kept = [d for d in chain if d is not device]
            if kept:
                self._by_fingerprint[fingerprint] = kept
            else:
                del self._by_fingerprint[fingerprint]
