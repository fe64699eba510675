"""Which counts of visits may be shown or sent: none that is a group of fewer than k
visits, and none that lets such a group be worked out by subtraction.

Hiding the small cells alone is not enough when totals are published beside them.
Four rules, applied by the status page and by the MQTT aggregates alike:

1. **Small**: a count below k is withheld.
2. **Complement**: a count that is part of a published total is withheld when the
   rest of that total is small: "19 of the 21 visits went to the till" says that 2
   did not.
3. **Exclusive cells** (each visit in at most one of them, like shopper groups):
   once any is withheld, what the published cells leave of the total must itself be
   at least k, else the withheld one is the total minus the others. The smallest
   published cell is withheld too, until that holds.
4. **Differences of exclusive cells** (a segment's visits minus its buying units: the
   people of it who came with someone, of the total's visits minus its units): what
   the published differences leave of the total difference is a group too, the people
   of the rest ("no clear type", or a hidden cell) who came with someone. It must be 0
   or at least k, else the smallest published difference that holds someone is
   withheld too (by withholding its subtrahend), until that holds: "No clear type: 8
   visits, 7 parties" says that 1 of them came with someone.

5. **Nested totals** (the visits each trait scored: all of them but those too short to
   judge, fewer for a trait only one of two spec versions of the window has): two
   such totals differ by the visits one scored and not the other, so the published
   ones must be equal or at least k apart; the smaller of two closer ones is withheld.

Whether a zero count is withheld is the caller's choice (rule 1): the aggregates
that leave the box withhold zeros too ("nobody had trait X" is a statement about
everybody); the status page shows them. The rest of a total (rules 2 and 3) is a
group only when it holds someone: "every visit went to the promotions" singles
nobody out, and withholding it would leave a window of fewer than 2k visits with
no cell at all. The same holds for the rest of a difference (rule 4): "everybody of
no clear type came alone" singles nobody out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

# Summed memberships that partition a total leave a float residue of ~1e-12, not 0:
# below this it is nobody, not a withheld group.
SOFT_ZERO = 1e-6


def is_small(count: float, k: int, *, zero_is_small: bool) -> bool:
    """Whether ``count`` visits is a group too small to show."""
    return count < k if zero_is_small else 0 < count < k


def withheld(
    counts: Mapping[str, float | None],
    k: int,
    *,
    total: float | None = None,
    exclusive: bool = False,
    zero_is_small: bool = False,
) -> set[str]:
    """The names in ``counts`` to withhold.

    Args:
        counts: cell name -> count of visits (or summed memberships, a soft count);
            None for a cell already withheld.
        k: the smallest group that may be shown.
        total: the published total the cells are parts of (None: no total is
            published, so only the first rule applies).
        exclusive: no visit is in two cells (the cells and the visits in none of them
            partition the total).
        zero_is_small: withhold zero counts too (rule 1 only).
    """
    out = {
        name for name, count in counts.items()
        if count is None or is_small(count, k, zero_is_small=zero_is_small)
    }
    if total is None:
        return out
    out |= {
        name for name, count in counts.items()
        if count is not None and is_small(total - count, k, zero_is_small=False)
    }
    if exclusive:
        published = {name: count for name, count in counts.items()
                     if name not in out and count is not None}
        while published and residual_problem(list(published.values()), total, k,
                                             any_withheld=bool(out)):
            smallest = min(published, key=lambda name: (published[name], name))
            out.add(smallest)
            del published[smallest]
    return out


def residual_problem(
    published: Sequence[float], total: float, k: int, *, any_withheld: bool
) -> str | None:
    """Why a set of exclusive cells lets a withheld count be worked out, or None.

    The independent check of rule 3 on a finished message: ``published`` are the
    counts shown, ``any_withheld`` whether any cell of the set was withheld.
    """
    rest = total - sum(published)
    if abs(rest) < SOFT_ZERO:  # soft counts (summed memberships) that add up to the total
        rest = 0
    if rest >= k or (rest == 0 and not any_withheld):
        return None
    return f"the total minus the published cells leaves {rest}, fewer than k={k}"


def withheld_differences(
    differences: Mapping[str, float | None], k: int, *, total: float | None
) -> set[str]:
    """The names in ``differences`` whose subtrahend to withhold as well (rule 4).

    Args:
        differences: cell name -> the difference of its two published counts (a
            segment's visits - units: its people who came with someone); None where
            either count is withheld, so that it is in no sum a reader can make.
        k: the smallest group that may be shown.
        total: the same difference of the totals the cells are exclusive parts of
            (visits.count - visits.groups); None when either total is withheld (then
            every published difference is withheld: they would add up to it).

    Returns only published cells (not the None ones): their subtrahend is withheld,
    which takes them out of the sum. A difference of 1 to k-1 is withheld itself (rule
    2); a difference of nobody (0) changes no sum, so the smallest one that holds
    someone is withheld first.
    """
    published = {name: value for name, value in differences.items() if value is not None}
    if total is None:
        return set(published)
    out = {name for name, value in published.items() if is_small(value, k, zero_is_small=False)}
    for name in out:
        del published[name]
    while published and difference_problem(list(published.values()), total, k):
        smallest = min(published, key=lambda name: (published[name] <= 0, published[name], name))
        out.add(smallest)
        del published[smallest]
    return out


def difference_problem(published: Sequence[float], total: float, k: int) -> str | None:
    """Why a set of published differences (rule 4) leaves a small group of the total
    difference, or None: what they leave must be 0 or at least k.

    The independent check of rule 4 on a finished message.
    """
    rest = total - sum(published)
    if abs(rest) < SOFT_ZERO:
        rest = 0
    if rest == 0 or rest >= k:
        return None
    return (f"the total minus the published differences leaves {rest}, neither 0 "
            f"nor at least k={k}")


def withheld_apart(counts: Mapping[str, float | None], k: int) -> set[str]:
    """Rule 5: the names of ``counts`` to withhold so that the published ones are equal
    or at least ``k`` apart, keeping the larger of two closer ones (from the largest
    down: each kept count is compared with the smallest kept so far)."""
    out: set[str] = set()
    kept: list[float] = []
    for name, count in sorted(((n, c) for n, c in counts.items() if c is not None),
                              key=lambda item: -item[1]):
        if kept and is_small(kept[-1] - count, k, zero_is_small=False):
            out.add(name)
        elif not kept or count != kept[-1]:
            kept.append(count)
    return out


def apart_problem(published: Sequence[float], k: int) -> str | None:
    """Rule 5 on what is published: why two of ``published`` are too close, or None."""
    values = sorted(set(published), reverse=True)
    for larger, smaller in zip(values, values[1:], strict=False):
        if is_small(larger - smaller, k, zero_is_small=False):
            return (f"{larger} - {smaller} = {larger - smaller} visits can be worked out, "
                    f"fewer than k={k}")
    return None
