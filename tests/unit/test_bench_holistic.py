"""The two shapes of the holistic-memory benchmark (bench.holistic_memory) give the same
answer on the demo shop: the sorted median and DISTINCT count are the aggregates' figures."""

from __future__ import annotations

from bench.holistic_memory import run_one


def test_the_sorted_shape_answers_what_the_aggregates_answer(seeded_shop) -> None:
    aggregate = run_one("aggregate", "1GB", seeded_shop.path)
    sorted_ = run_one("sorted", "1GB", seeded_shop.path)
    assert aggregate["error"] == sorted_["error"] == ""
    assert aggregate["rows"], "no currency in the shop's order lines"
    assert sorted_["rows"] == aggregate["rows"]
