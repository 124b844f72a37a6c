"""The three refinements on exact 1-D and discrete densities, without networks: DRS with the true log ratio
turns a wrong Gaussian into the right one, MH leaves its target invariant, Langevin in z reaches the density
exp(-E) and gradient steps lower E."""
from __future__ import annotations

import math

import pytest
import torch

from gankit.errors import GankitError
from gankit.refine.algorithms import (
    RejectionRule,
    fit_logistic,
    independent_chains,
    langevin,
    rejection_fill,
    rejection_rule,
)


def normal_logpdf(x: torch.Tensor, mu: float, sigma: float) -> torch.Tensor:
    return -0.5 * ((x - mu) / sigma) ** 2 - math.log(sigma * math.sqrt(2 * math.pi))


def ks_to_normal(x: torch.Tensor, mu: float, sigma: float) -> float:
    """Kolmogorov-Smirnov distance between the samples x [n] and N(mu, sigma^2)."""
    x = x.double().sort().values
    cdf = 0.5 * (1 + torch.erf((x - mu) / (sigma * math.sqrt(2))))
    n = len(x)
    return float(torch.maximum(torch.arange(1, n + 1) / n - cdf, cdf - torch.arange(n) / n).max())


# the GAN's distribution q = N(0, 1.5^2), the data's p = N(0.5, 1); D's logit is the exact log p/q
Q_SIGMA, P_MU = 1.5, 0.5


def gaussian_pair(seed: int = 0):
    g = torch.Generator().manual_seed(seed)

    def propose(n, y):
        return torch.randn(n, 1, generator=g) * Q_SIGMA

    def logit(x, y):
        return normal_logpdf(x[:, 0], P_MU, 1.0) - normal_logpdf(x[:, 0], 0.0, Q_SIGMA)

    return propose, logit


def test_drs_with_the_exact_log_ratio_turns_the_wrong_gaussian_into_the_right_one():
    propose, logit = gaussian_pair()
    raw = propose(20_000, None)[:, 0]
    assert ks_to_normal(raw, P_MU, 1.0) > 0.1  # the proposals are far from the target
    rule = rejection_rule(logit(propose(10_000, None), None), percentile=None)
    x, drawn = rejection_fill(propose, logit, rule, 20_000, None, torch.Generator().manual_seed(1))
    assert ks_to_normal(x[:, 0], P_MU, 1.0) < 0.015
    # acceptance = E_q[p/q] / max p/q = exp(-max log ratio); max at x = 0.9: 0.1 + log 1.5
    assert 20_000 / drawn == pytest.approx(math.exp(-(0.1 + math.log(1.5))), abs=0.015)


def test_drs_accepts_in_proportion_to_the_density_ratio():
    rule = RejectionRule(max_logit=2.0, gamma=0.0, eps=1e-9)
    d = torch.linspace(-6, 2, 50)
    torch.testing.assert_close(rule.accept_prob(d), torch.exp(d - 2.0).double(), atol=1e-6, rtol=1e-5)
    # gamma shifts F: a higher percentile accepts fewer, and M rises with a larger logit
    burn = torch.randn(5000, generator=torch.Generator().manual_seed(0))
    low, high = rejection_rule(burn, 50.0), rejection_rule(burn, 95.0)
    assert high.accept_prob(burn).mean() < low.accept_prob(burn).mean() < 0.6
    rule.accept_prob(torch.tensor([0.0, 3.0, 1.0]))
    assert rule.max_logit == 3.0


def test_drs_within_classes_keeps_each_slot_in_its_class_and_repeats_with_the_seed():
    g = torch.Generator().manual_seed(0)

    def propose(n, y):  # class k draws around 10 k
        return (10.0 * y + torch.randn(n, generator=g) * Q_SIGMA).unsqueeze(1)

    def logit(x, y):
        return normal_logpdf(x[:, 0] - 10.0 * y, P_MU, 1.0) - normal_logpdf(x[:, 0] - 10.0 * y, 0.0, Q_SIGMA)

    y = torch.arange(3).repeat(2000)
    rule = rejection_rule(logit(propose(3000, y[:3000]), y[:3000]), None)
    x, _ = rejection_fill(propose, logit, rule, len(y), y, torch.Generator().manual_seed(1), batch=256)
    assert (x[:, 0] - 10.0 * y).abs().max() < 5  # every slot drawn within its own class
    assert ks_to_normal(x[:, 0] - 10.0 * y, P_MU, 1.0) < 0.03


def test_drs_gives_up_with_a_clear_error_when_it_accepts_almost_nothing():
    propose, logit = gaussian_pair()
    rule = RejectionRule(max_logit=50.0)  # a bound far above every logit: acceptance ~ exp(-50)
    with pytest.raises(GankitError, match="DRS kept 0 of .* proposals.*--refine-percentile"):
        rejection_fill(propose, logit, rule, 10, None, torch.Generator().manual_seed(0), max_proposals=2000)


# a discrete toy: states 0..4, target p, G's distribution q
P = torch.tensor([0.1, 0.2, 0.4, 0.2, 0.1], dtype=torch.float64)
Q = torch.tensor([0.3, 0.3, 0.2, 0.1, 0.1], dtype=torch.float64)


def discrete_pair(seed: int = 0):
    g = torch.Generator().manual_seed(seed)

    def propose(n, y):
        return torch.multinomial(Q, n, replacement=True, generator=g).unsqueeze(1)

    def logit(x, y):
        return (P / Q).log()[x[:, 0]]

    return propose, logit


def histogram(x: torch.Tensor) -> torch.Tensor:
    return torch.bincount(x[:, 0], minlength=5).double() / len(x)


def test_mh_chain_leaves_the_target_invariant():
    propose, logit = discrete_pair()
    n = 200_000
    x0 = torch.multinomial(P, n, replacement=True, generator=torch.Generator().manual_seed(5)).unsqueeze(1)
    for k in (1, 3):
        x, counts = independent_chains(x0, logit(x0, None), propose, logit, k, torch.Generator().manual_seed(k),
                                       restart=False)
        torch.testing.assert_close(histogram(x), P, atol=0.005, rtol=0)
        assert 0 < counts["moves"] < counts["proposals"] == n * k
    # started from G's own distribution, the chain moves towards the target
    q0 = propose(n, None)
    x, _ = independent_chains(q0, logit(q0, None), propose, logit, 30, torch.Generator().manual_seed(9), restart=False)
    torch.testing.assert_close(histogram(x), P, atol=0.005, rtol=0)


def test_mh_never_returns_its_real_start_and_restarts_like_the_papers_code():
    propose, logit = discrete_pair()
    n = 50_000
    start = torch.full((n, 1), -1, dtype=torch.long)  # "real" states no proposal ever beats
    x, counts = independent_chains(start, torch.full((n,), 100.0), propose, logit, 40, torch.Generator().manual_seed(0))
    assert counts["restarts"] == n and (x >= 0).all()
    torch.testing.assert_close(histogram(x), P, atol=0.01, rtol=0)  # the chain restarted at its first proposal


def test_logistic_calibration_recovers_the_log_ratio_whatever_the_set_sizes():
    g = torch.Generator().manual_seed(0)
    real = torch.randn(2000, generator=g) + 1.0  # D's logit on real data ~ N(1, 1), on fakes ~ N(-1, 1):
    fake = torch.randn(8000, generator=g) - 1.0  # log p/q of the logit = 2 l + 0
    a, b = fit_logistic(real, fake)
    assert a == pytest.approx(2.0, abs=0.15) and b == pytest.approx(0.0, abs=0.1)
    a, b = fit_logistic(real * 0.5 + 3, fake * 0.5 + 3)  # an affine D is undone: 4 l - 12
    assert a == pytest.approx(4.0, abs=0.3) and b == pytest.approx(-12.0, abs=1.0)


def latent_energy(z: torch.Tensor) -> torch.Tensor:
    """E(z) = |z|^2/2 - logit D(G(z)) with G(z) = z and the exact log ratio of N(1, 0.5^2) to N(0, 1)."""
    x = z[:, 0]
    return 0.5 * x ** 2 - (normal_logpdf(x, 1.0, 0.5) - normal_logpdf(x, 0.0, 1.0))


def test_langevin_in_latent_space_reaches_the_refined_density():
    z0 = torch.randn(20_000, 1, generator=torch.Generator().manual_seed(0))
    z, before, after = langevin(z0, latent_energy, 400, 0.01, 1.0, torch.Generator().manual_seed(1))
    assert ks_to_normal(z0[:, 0], 1.0, 0.5) > 0.2
    assert ks_to_normal(z[:, 0], 1.0, 0.5) < 0.02  # exp(-E) is N(1, 0.5^2)
    assert after.mean() < before.mean()


def test_gradient_steps_lower_the_energy_of_every_sample_and_repeat_with_the_seed():
    z0 = torch.randn(1000, 1, generator=torch.Generator().manual_seed(0)) * 2
    z, before, after = langevin(z0, latent_energy, 10, 0.05, 0.0, torch.Generator().manual_seed(1))
    torch.testing.assert_close(before, latent_energy(z0))
    assert (after < before).all()
    runs = [langevin(z0, latent_energy, 5, 0.01, 1.0, torch.Generator().manual_seed(s))[0] for s in (3, 3, 4)]
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])
    assert langevin(z0, latent_energy, 5, 10.0, 0.0, torch.Generator(), box=1.0)[0].abs().max() <= 1.0
