"""A residual generator built from "random residual blocks": residual up-sampling blocks with spatial
dropout (Dropout2d) between their convolutions. The dropout can stay on at sampling time, so that it
acts as a second noise source beside z.
"""
from __future__ import annotations

from torch import Tensor, nn

from ..config import ModelConfig
from .layers import SpatialDropout, init_dcgan_, plan_resolution
from .registry import GENERATORS


class RandomResidualBlock(nn.Module):
    """x -> BN-ReLU-up-conv3-BN-ReLU-dropout2d-conv3, plus an up-sampled 1x1 shortcut. Doubles H and W."""

    def __init__(self, cin: int, cout: int, dropout: float, at_sampling: bool):
        super().__init__()
        self.main = nn.Sequential(
            nn.BatchNorm2d(cin), nn.ReLU(True), nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True),
            SpatialDropout(dropout, at_sampling), nn.Conv2d(cout, cout, 3, 1, 1))
        self.shortcut = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, cout, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.main(x) + self.shortcut(x)  # [N,cout,2H,2W]


class ResNetGenerator(nn.Module):
    def __init__(self, latent_dim: int, shape: tuple[int, int, int], width: int = 64,
                 dropout: float = 0.1, at_sampling: bool = True):
        super().__init__()
        self.latent_dim = latent_dim
        s0, k = plan_resolution(shape[1])
        c = width * 2 ** (k - 1)
        self.seed_shape = (c, s0, s0)
        self.project = nn.Linear(latent_dim, c * s0 * s0)
        blocks = []
        for i in range(k):
            cout = c if i == k - 1 else c // 2  # last block keeps `width` channels
            blocks.append(RandomResidualBlock(c, cout, dropout, at_sampling))
            c = cout
        self.blocks = nn.Sequential(*blocks)
        self.to_image = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(True), nn.Conv2d(c, shape[0], 3, 1, 1), nn.Tanh())
        init_dcgan_(self)

    def forward(self, z: Tensor) -> Tensor:
        x = self.project(z).view(z.shape[0], *self.seed_shape)  # [N,c,s0,s0] seed map
        return self.to_image(self.blocks(x))  # [N,C,H,W]


@GENERATORS.register("resnet")
def resnet_generator(cfg: ModelConfig, shape: tuple) -> nn.Module:
    return ResNetGenerator(cfg.latent_dim, shape, cfg.g_width, cfg.dropout, cfg.dropout_at_sampling)
