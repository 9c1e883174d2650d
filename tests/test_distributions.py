import math

import torch

from nppac.distributions import gaussian_kl, gaussian_log_prob


def test_log_prob_matches_torch():
    g = torch.Generator().manual_seed(0)
    x, m = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)
    s = torch.rand(5, 3, generator=g) + 0.1
    ref = torch.distributions.Normal(m, s).log_prob(x).sum(-1)
    torch.testing.assert_close(gaussian_log_prob(x, m, s), ref)


def test_kl_matches_torch_and_is_zero_for_equal():
    g = torch.Generator().manual_seed(1)
    mp, mq = torch.randn(4, 2, generator=g), torch.randn(4, 2, generator=g)
    sp, sq = torch.rand(4, 2, generator=g) + 0.2, torch.rand(4, 2, generator=g) + 0.2
    ref = torch.distributions.kl_divergence(torch.distributions.Normal(mp, sp),
                                            torch.distributions.Normal(mq, sq)).sum(-1)
    torch.testing.assert_close(gaussian_kl(mp, sp, mq, sq), ref)
    assert math.isclose(float(gaussian_kl(mp, sp, mp, sp).abs().max()), 0.0, abs_tol=1e-6)


def test_densities_sum_over_the_last_dimension_only():
    """A stack of batches (k, n, d) reduces to (k, n): the action dimensions, never the batch."""
    g = torch.Generator().manual_seed(2)
    x, m = torch.randn(2, 3, 4, generator=g), torch.randn(2, 3, 4, generator=g)
    s, s2 = torch.rand(2, 3, 4, generator=g) + 0.1, torch.rand(2, 3, 4, generator=g) + 0.1
    torch.testing.assert_close(gaussian_log_prob(x, m, s), torch.distributions.Normal(m, s).log_prob(x).sum(-1))
    ref = torch.distributions.kl_divergence(torch.distributions.Normal(x, s), torch.distributions.Normal(m, s2))
    torch.testing.assert_close(gaussian_kl(x, s, m, s2), ref.sum(-1))
