"""Which counts of visits may be shown or sent: none that is a group of fewer than k
visits, and none that lets such a group be worked out by subtraction.

Hiding the small cells alone is not enough when totals are published beside them.
Three rules, applied by the status page and by the MQTT aggregates alike:

1. **Small**: a count below k is withheld.
2. **Complement**: a count that is part of a published total is withheld when the
   rest of that total is small: "19 of the 21 visits went to the till" says that 2
   did not.
3. **Exclusive cells** (each visit in at most one of them, like shopper groups):
   once any is withheld, what the published cells leave of the total must itself be
   at least k, else the withheld one is the total minus the others. The smallest
   published cell is withheld too, until that holds.

Whether a zero count is withheld is the caller's choice (rule 1): the aggregates
that leave the box withhold zeros too ("nobody had trait X" is a statement about
everybody); the status page shows them. The rest of a total (rules 2 and 3) is a
group only when it holds someone: "every visit went to the promotions" singles
nobody out, and withholding it would leave a window of fewer than 2k visits with
no cell at all.
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
