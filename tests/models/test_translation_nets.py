"""Image-to-image networks: Pix2Pix's U-Net and PatchGAN."""

import pytest
import torch

from gankit.errors import GankitError
from gankit.models.translation import PatchDiscriminator, UNetGenerator, receptive_field


def test_unet_skips_and_test_time_dropout():
    torch.manual_seed(0)
    G = UNetGenerator(1, 1, 32, ngf=8).eval()
    x = torch.randn(2, 1, 32, 32)
    y1, y2 = G(x), G(x)
    assert y1.shape == (2, 1, 32, 32) and y1.abs().max() <= 1
    assert not torch.equal(y1, y2)  # dropout stays on at test time: Pix2Pix's noise
    with pytest.raises(GankitError, match="power-of-two"):
        UNetGenerator(1, 1, 28)


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_patchgan_receptive_field(layers):
    """One output logit depends on exactly a receptive_field(layers)-pixel window of the input."""
    assert receptive_field(3) == 70  # the paper's 70x70 PatchGAN
    torch.manual_seed(0)
    D = PatchDiscriminator(1, ndf=4, layers=layers, norm="none")
    x = torch.randn(1, 1, 128, 128, requires_grad=True)
    out = D(x)
    i, j = out.shape[2] // 2, out.shape[3] // 2
    (g,) = torch.autograd.grad(out[0, 0, i, j], x)
    rows = g[0, 0].abs().sum(1).nonzero()
    assert rows.max() - rows.min() + 1 == receptive_field(layers)
