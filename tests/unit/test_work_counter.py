"""support/work.py, the counter the fuzz tests bound work with, tells linear work from quadratic."""

import pytest
from support.work import assert_linear, cost


def linear(data: bytes) -> int:
    total = 0
    for b in data:
        total += b
    return total


def quadratic(data: bytes) -> int:
    total = 0
    for i in range(len(data)):
        for b in data[:i]:
            total ^= b
    return total


def test_linear_work_passes_and_quadratic_work_fails():
    data = bytes(range(256)) * 4
    assert_linear(cost(lambda: linear(data)), len(data), base_lines=2_000, lines_per_unit=16)
    with pytest.raises(AssertionError, match="lines executed for 1024 bytes"):
        assert_linear(cost(lambda: quadratic(data)), len(data), base_lines=2_000, lines_per_unit=16)


def test_memory_beyond_the_bound_fails():
    with pytest.raises(AssertionError, match="bytes at peak for 10 bytes"):
        assert_linear(cost(lambda: bytearray(4 << 20)), 10, base_lines=100, lines_per_unit=1)


def test_an_allowed_error_is_returned_and_another_propagates():
    def boom():
        raise ValueError("x")

    assert isinstance(cost(boom, (ValueError,)).raised, ValueError)
    with pytest.raises(ValueError):
        cost(boom)
