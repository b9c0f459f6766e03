"""Decimal prices and quantities to integer ticks and lots and back, refusing anything off the grid."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from matching.engine import Grid, OffGridError

D = Decimal


def test_prices_and_quantities_convert_both_ways():
    grid = Grid(D("0.01"), D("1"))

    assert grid.to_ticks(D("150.25")) == 15025
    assert grid.to_price(15025) == D("150.25")
    assert str(grid.to_price(15000)) == "150.00"
    assert grid.to_lots(D("300")) == 300
    assert grid.to_qty(300) == D("300")


def test_fractional_lots_and_coarse_ticks():
    grid = Grid("0.05", "0.001")

    assert grid.to_ticks(D("10.15")) == 203
    assert grid.to_lots(D("0.250")) == 250
    assert grid.to_lots(2) == 2000
    assert grid.to_qty(250) == D("0.250")


@pytest.mark.parametrize("price", [D("150.255"), D("0.001"), D("150.2500001")])
def test_a_price_between_ticks_is_refused(price):
    with pytest.raises(OffGridError):
        Grid(D("0.01")).to_ticks(price)


@pytest.mark.parametrize("qty", [D("0"), D("-1"), D("1.5"), D("NaN"), D("Infinity")])
def test_zero_negative_fractional_or_non_finite_quantities_are_refused(qty):
    with pytest.raises(OffGridError):
        Grid(D("0.01"), D("1")).to_lots(qty)


def test_floats_are_refused_outright():
    grid = Grid(D("0.01"))

    with pytest.raises(TypeError):
        grid.to_ticks(0.3)
    with pytest.raises(TypeError):
        Grid(0.01)


@pytest.mark.parametrize("step", ["0", "-0.01", "abc", D("NaN")])
def test_the_grid_itself_must_be_positive(step):
    with pytest.raises(OffGridError):
        Grid(step)


@given(ticks=st.integers(1, 10**12), exponent=st.integers(0, 6))
def test_every_tick_count_survives_the_round_trip(ticks, exponent):
    grid = Grid(D(1).scaleb(-exponent))

    assert grid.to_ticks(grid.to_price(ticks)) == ticks
