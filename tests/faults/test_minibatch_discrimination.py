"""Minibatch discrimination without the N x N x kernels x dims array (item 8)."""
from __future__ import annotations

import torch

from gankit.models.layers import MinibatchDiscrimination


def _reference(f: torch.Tensor, T: torch.Tensor, kernels: int, dims: int) -> torch.Tensor:
    """Salimans et al.'s formula written out directly: all pairwise differences, then L1 per kernel."""
    m = (f @ T).view(-1, kernels, dims)
    l1 = (m.unsqueeze(0) - m.unsqueeze(1)).abs().sum(3)
    return torch.cat([f, torch.exp(-l1).sum(1) - 1], dim=1)


def test_same_values_and_gradients_as_the_pairwise_formula():
    torch.manual_seed(0)
    layer = MinibatchDiscrimination(12, kernels=5, kernel_dim=4)
    f = torch.randn(9, 12, requires_grad=True)
    out = layer(f)
    ref = _reference(f, layer.T, 5, 4)
    assert out.shape == (9, 17) and torch.allclose(out, ref, atol=1e-5)
    w = torch.randn_like(out)  # a generic downstream loss
    g_f, g_t = torch.autograd.grad((out * w).sum(), (f, layer.T))
    r_f, r_t = torch.autograd.grad((ref * w).sum(), (f, layer.T))
    assert torch.allclose(g_f, r_f, atol=1e-5) and torch.allclose(g_t, r_t, atol=1e-5)


def test_no_batch_squared_times_kernel_dims_tensor_is_kept_for_backward():
    n, kernels, dims = 64, 8, 16
    layer = MinibatchDiscrimination(32, kernels, dims)
    sizes = []

    def pack(t):
        sizes.append(t.numel())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        layer(torch.randn(n, 32, requires_grad=True)).sum().backward()
    assert max(sizes) <= n * n * kernels  # the old code kept all [N,N,B,C] differences: 16x more
