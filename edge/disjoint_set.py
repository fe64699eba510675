"""Connected components of ``0..n-1`` linked by pairs: a disjoint set (union-find).

Shared by the shopping groups (:mod:`edge.visits.groups`: visits linked by walking
together) and the camera delays (:mod:`edge.fusion.delays`: cameras linked by the people
they both saw). Pure Python on purpose: scipy's ``csgraph`` would do the same, but
importing scipy costs every camera worker ~28 MB (issue 18; tests/test_worker_memory).
"""

from __future__ import annotations


class DisjointSet:
    """The items ``0..count-1``, each alone in its set until :meth:`join` links two."""

    def __init__(self, count: int) -> None:
        self._parent = list(range(count))

    def root(self, i: int) -> int:
        """The item that stands for ``i``'s set (path halving on the way)."""
        parent = self._parent
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def join(self, a: int, b: int) -> None:
        """Put ``a``'s set into ``b``'s."""
        self._parent[self.root(a)] = self.root(b)

    def labels(self) -> list[int]:
        """``labels[i]``, the set of item ``i``, numbered from 0 by first appearance."""
        renumber: dict[int, int] = {}
        return [renumber.setdefault(self.root(i), len(renumber)) for i in range(len(self._parent))]

    def groups(self) -> list[list[int]]:
        """The sets, each in increasing order, ordered by their smallest item."""
        groups: dict[int, list[int]] = {}
        for i in range(len(self._parent)):
            groups.setdefault(self.root(i), []).append(i)
        return list(groups.values())
