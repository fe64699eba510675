"""The rules that keep small groups of visits out of what is shown and sent, including
groups that could be worked out by subtracting published counts."""

from __future__ import annotations

import pytest

from edge.privacy.small_counts import residual_problem, withheld


@pytest.mark.parametrize(
    "counts, kwargs, expected",
    [
        # Rule 1: small counts; zeros only when the caller says so.
        ({"a": 4, "b": 5, "c": 0}, {}, {"a"}),
        ({"a": 4, "b": 5, "c": 0}, {"zero_is_small": True}, {"a", "c"}),
        ({"a": None, "b": 9}, {}, {"a"}),  # already withheld stays withheld
        # Rule 2: the rest of the total is a group too ("19 of 21 went to the till").
        ({"till": 19}, {"total": 21}, {"till"}),
        ({"till": 16}, {"total": 21}, set()),
        ({"till": 21}, {"total": 21}, set()),  # "everybody" singles nobody out
        # Rule 3: exclusive cells: the withheld one is the total minus the others...
        ({"explorer": 1, "focused": 6, "mission": 20}, {"total": 27, "exclusive": True},
         {"explorer", "focused"}),
        # ...unless enough visits are in no cell at all.
        ({"explorer": 1, "focused": 6, "mission": 20}, {"total": 40, "exclusive": True},
         {"explorer"}),
        # Nothing withheld, but 3 visits in no cell: that is a small group as well.
        ({"a": 10, "b": 12}, {"total": 25, "exclusive": True}, {"a"}),
        ({"a": 10, "b": 12}, {"total": 22, "exclusive": True}, set()),
        # Withheld zeros are given away by a residual of 0: withhold more.
        ({"a": 0, "b": 6, "c": 7}, {"total": 13, "exclusive": True, "zero_is_small": True},
         {"a", "b"}),
        # Not exclusive (traits overlap): no residual rule.
        ({"a": 1, "b": 6, "c": 20}, {"total": 27}, {"a"}),
    ],
)
def test_withheld(counts, kwargs, expected):
    assert withheld(counts, 5, **kwargs) == expected


@pytest.mark.parametrize(
    "published, total, any_withheld, problem",
    [
        ([6, 20], 27, True, "leaves 1"),
        ([6, 20], 31, True, None),
        ([6, 20], 26, False, None),
        ([6, 20], 26, True, "leaves 0"),
        ([6, 20], 28, False, "leaves 2"),
    ],
)
def test_residual_problem(published, total, any_withheld, problem):
    found = residual_problem(published, total, 5, any_withheld=any_withheld)
    assert (found is None) if problem is None else (problem in found)
