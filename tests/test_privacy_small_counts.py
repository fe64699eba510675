"""The rules that keep small groups of visits out of what is shown and sent, including
groups that could be worked out by subtracting published counts."""

from __future__ import annotations

import pytest

from edge.privacy.small_counts import (
    apart_problem,
    difference_problem,
    residual_problem,
    withheld,
    withheld_apart,
    withheld_differences,
)


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


@pytest.mark.parametrize(
    "differences, total, expected",
    [
        # Review: segment a 14 visits in 8 parties (6 came with someone), b 10 alone, and
        # "no clear type: 8 visits, 7 parties": 7 - 6 - 0 = 1 came with someone there.
        ({"a": 6, "b": 0}, 7, {"a"}),
        ({"a": 6, "b": 0}, 6, set()),  # everybody of no clear type came alone
        ({"a": 6, "b": 0}, 11, set()),  # 5 of them came with someone: not a small group
        # A difference of nobody changes no sum: the smallest that holds someone goes.
        ({"a": 6, "b": 0, "c": 9}, 16, {"a"}),
        ({"a": 5, "c": 5}, 14, {"a"}),  # 4 left, then 9
        # Withheld (None) cells are in no sum, and are not returned: nothing to null.
        ({"a": None, "b": 6}, 7, {"b"}),
        # A difference of 1 to k-1 is withheld itself (rule 2 within the cell).
        ({"a": 3, "b": 6}, 6, {"a"}),
        # The total difference withheld: every published difference goes with it.
        ({"a": 6, "b": None}, None, {"a"}),
        # More published than the total (a party of mixed types of no clear type): the
        # rest is negative, no group of k; withhold until it holds, or all.
        ({"a": 6, "b": 5}, 10, {"a", "b"}),
    ],
)
def test_withheld_differences(differences, total, expected):
    """Rule 4: the people of the rest row who came with someone are 0 or at least k."""
    assert withheld_differences(differences, 5, total=total) == expected


@pytest.mark.parametrize(
    "published, total, problem",
    [
        ([6, 0], 7, "leaves 1"),
        ([6, 0], 6, None),
        ([6], 11, None),
        ([6, 5], 10, "leaves -1"),
    ],
)
def test_difference_problem(published, total, problem):
    found = difference_problem(published, total, 5)
    assert (found is None) if problem is None else (problem in found)


@pytest.mark.parametrize(
    "counts, expected",
    [
        ({"a": 20, "b": 20, "c": 20}, set()),        # one spec version: all equal
        ({"a": 20, "b": 18, "c": 20}, {"b"}),        # 2 visits scored by a only
        ({"a": 20, "b": 14, "c": 12}, {"c"}),        # b kept (6 apart), c 2 below b
        ({"a": 20, "b": None, "c": 17}, {"c"}),      # a withheld one is no reference
        ({"a": 20, "b": 10}, set()),
    ],
)
def test_withheld_apart(counts, expected):
    assert withheld_apart(counts, 5) == expected
    published = [c for name, c in counts.items() if c is not None and name not in expected]
    assert apart_problem(published, 5) is None
    if expected:
        assert "can be worked out" in apart_problem([c for c in counts.values() if c], 5)
