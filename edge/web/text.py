"""Words and numbers for the shop floor: times in store time, durations, plain labels."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from edge.web.hours import REPEAT_MARK

TRAIT_LABELS = {
    "showroomer": "Looked around, skipped the till",
    "wanderer": "Wandered around the store",
    "indecisive": "Went back and forth",
    "bargain_hunter": "Went for the offers",
}
STANDARD_TRAITS = tuple(TRAIT_LABELS)

COMPONENT_NAMES = {"camera": "Camera", "wifi": "Wi-Fi sensor", "sync": "Link to head office",
                   "fusion": "Counting across cameras"}


def trait_label(name: str) -> str:
    """Plain words for a trait name, e.g. ``affinity_kids`` -> ``Drawn to kids``."""
    if name in TRAIT_LABELS:
        return TRAIT_LABELS[name]
    if name.startswith("affinity_"):
        return "Drawn to " + name.removeprefix("affinity_").replace("_", " ").replace("-", " ")
    return plain(name)


def plain(name: str) -> str:
    """``ready_to_eat`` -> ``Ready to eat``."""
    text = name.replace("_", " ").replace("-", " ").strip()
    return text[:1].upper() + text[1:] if text else name


def clock_text(t: float, tz: ZoneInfo, *, today: dt.date | None = None) -> str:
    """``14:05:10`` on the day given as today, else ``14:05:10, Mon 23 Nov 2026``; a time
    in the hour the clocks went back into reads ``01:05:10 (2nd)``."""
    return _wall_text(t, tz, "%H:%M:%S", today)


def minute_text(t: float, tz: ZoneInfo, *, today: dt.date | None = None) -> str:
    """``14:05`` on the day given as today, else ``14:05, Mon 23 Nov 2026``; a time in the
    hour the clocks went back into reads ``01:05 (2nd)``, as that hour's row is labelled
    (:mod:`edge.web.hours`)."""
    return _wall_text(t, tz, "%H:%M", today)


def _wall_text(t: float, tz: ZoneInfo, clock: str, today: dt.date | None) -> str:
    moment = dt.datetime.fromtimestamp(t, tz)
    # fold 1: the clock shows this time a second time that day (the clocks went back).
    second = REPEAT_MARK if moment.fold else ""
    if today is not None and moment.date() == today:
        return moment.strftime(clock) + second
    return moment.strftime(clock) + second + moment.strftime(", %a %d %b %Y")


def moment_text(value: object, tz: ZoneInfo) -> str:
    """A time a service reported (epoch seconds or ISO 8601) in store time."""
    if isinstance(value, bool) or value is None:
        return "-"
    if isinstance(value, int | float):
        return clock_text(float(value), tz, today=dt.datetime.now(tz).date())
    try:
        moment = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(tz).strftime("%H:%M, %a %d %b")


def day_text(day: dt.date) -> str:
    return day.strftime("%A %d %B %Y")


def duration_text(seconds: float | None) -> str:
    """``45 s``, ``3 min``, ``1 h 20 min``."""
    if seconds is None:
        return "-"
    seconds = max(0.0, float(seconds))
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = seconds / 60
    if minutes < 90:
        return f"{minutes:.0f} min"
    hours, rest = divmod(int(round(minutes)), 60)
    return f"{hours} h {rest} min"


def percent_text(share: float | None) -> str:
    return "-" if share is None else f"{100 * share:.0f}%"


def bytes_text(count: int | None) -> str:
    if count is None:
        return "-"
    value = float(count)
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{count} bytes"


def component_name(kind: str, component: str) -> str:
    """``camera:view001`` -> ``Camera view001``; ``sync`` -> ``Link to head office``."""
    _, _, name = component.partition(":")
    base = COMPONENT_NAMES.get(kind, plain(component))
    return f"{base} {name}" if name and kind in COMPONENT_NAMES else base
