"""Adjusted p-values (Holm, Benjamini–Hochberg) worked by hand, and intervals held to a quantity's bounds."""

from __future__ import annotations

import math

import pytest

from nppac.experiments.stats import adjust_p_values, clip_interval, comparison_text, welch_test


def test_holm_and_benjamini_hochberg_by_hand():
    # p = 0.01, 0.04, 0.03, 0.005 (m = 4), sorted: 0.005 (4th), 0.01 (1st), 0.03 (3rd), 0.04 (2nd).
    p = [0.01, 0.04, 0.03, 0.005]
    # Holm: (m − j + 1)·p_(j) = 4·0.005, 3·0.01, 2·0.03, 1·0.04 = 0.02, 0.03, 0.06, 0.04,
    # then the running maximum: 0.02, 0.03, 0.06, 0.06.
    assert adjust_p_values(p, "holm") == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # BH: m·p_(j)/j = 4·0.005/1, 4·0.01/2, 4·0.03/3, 4·0.04/4 = 0.02, 0.02, 0.04, 0.04,
    # then the running minimum from the largest: 0.02, 0.02, 0.04, 0.04.
    assert adjust_p_values(p, "bh") == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert adjust_p_values(p, "none") == p
    # Capped at 1: Holm 2·0.5 = 1, max(1, 0.6) = 1; BH 2·0.5/1 = 1, 2·0.6/2 = 0.6 → min from the top 0.6, 0.6.
    assert adjust_p_values([0.5, 0.6], "holm") == [1.0, 1.0]
    assert adjust_p_values([0.5, 0.6], "bh") == pytest.approx([0.6, 0.6])
    # Ties: Holm 2·0.02, max(0.04, 0.02); BH 2·0.02/1, 2·0.02/2 → 0.02 both.
    assert adjust_p_values([0.02, 0.02], "holm") == pytest.approx([0.04, 0.04])
    assert adjust_p_values([0.02, 0.02], "bh") == pytest.approx([0.02, 0.02])


def test_comparisons_without_a_test_are_outside_the_family():
    holm = adjust_p_values([0.01, math.nan, 0.04, 0.03, 0.005], "holm")
    assert math.isnan(holm[1])
    assert holm[:1] + holm[2:] == pytest.approx([0.03, 0.06, 0.06, 0.02])  # m = 4, as without the NaN
    assert adjust_p_values([], "holm") == []
    assert all(math.isnan(x) for x in adjust_p_values([math.nan], "bh"))
    with pytest.raises(ValueError, match="unknown adjustment 'bonferroni'"):
        adjust_p_values([0.1], "bonferroni")


def test_intervals_stay_within_their_bounds():
    assert clip_interval(-0.2, 1.3, (0.0, 1.0)) == (0.0, 1.0)
    assert clip_interval(-0.2, 1.3, None) == (-0.2, 1.3)
    # Success rates: a difference of means in [0, 1] lies in [−1, 1]. Unbounded: 0.8667 ± 2.776·0.0943.
    free = welch_test([1.0, 1.0, 0.8], [0.0, 0.0, 0.2])
    bounded = welch_test([1.0, 1.0, 0.8], [0.0, 0.0, 0.2], bounds=(0.0, 1.0))
    assert free.hi > 1.0 and bounded.hi == 1.0
    assert (bounded.diff, bounded.lo, bounded.p) == (free.diff, free.lo, free.p)


def test_a_comparison_reads_with_its_adjusted_p_value_and_mark():
    test = welch_test([50.0, 60.0, 70.0], [10.0, 20.0, 30.0])
    assert comparison_text(test, 0.0123, "holm") == "+40 [+17.33, +62.67], p_Holm 0.012 **✓**"
    assert comparison_text(test, 0.06, "bh", "{:+,.0f}", "✓") == "+40 [+17, +63], p_BH 0.06"
    assert comparison_text(test, 0.0004, "none").endswith("p < 0.001 **✓**")
    assert comparison_text(welch_test([1.0], [2.0, 3.0]), math.nan, "holm") == "-1.5 (no interval: < 2 seeds)"
