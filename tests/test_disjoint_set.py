"""The disjoint set behind the shopping groups and the camera delays' groups."""

from edge.disjoint_set import DisjointSet


def test_items_linked_through_others_share_a_set_numbered_by_first_appearance():
    linked = DisjointSet(6)
    for a, b in ((4, 1), (5, 3), (1, 3)):
        linked.join(a, b)
    assert linked.labels() == [0, 1, 2, 1, 1, 1]
    assert linked.groups() == [[0], [1, 3, 4, 5], [2]]
    assert linked.root(4) == linked.root(5) != linked.root(0)


def test_no_items_no_sets():
    assert DisjointSet(0).labels() == [] and DisjointSet(0).groups() == []
