"""Slices on threads: order kept, errors raised, thread count from the environment."""

import pytest

from medcodec.coding import threads


def test_results_come_back_in_order_whatever_the_thread_count():
    squares = [i * i for i in range(23)]
    for n in (1, 2, 7, 64):
        assert threads.map_slices(lambda i: i * i, 23, n) == squares


def test_the_first_error_is_raised():
    def job(i):
        if i == 5:
            raise ValueError("slice 5")
        return i

    with pytest.raises(ValueError, match="slice 5"):
        threads.map_slices(job, 9, 3)


def test_thread_count_follows_the_cores_and_the_environment(monkeypatch):
    monkeypatch.delenv("MEDCODEC_THREADS", raising=False)
    assert threads.default_threads(0) == 1
    assert 1 <= threads.default_threads(10_000) <= threads.available_cores()
    monkeypatch.setenv("MEDCODEC_THREADS", "3")
    assert threads.default_threads(10_000) == 3 and threads.default_threads(2) == 2
    monkeypatch.setenv("MEDCODEC_THREADS", "not a number")
    assert threads.default_threads(10_000) == min(10_000, threads.available_cores())
