"""GANs that use labels or latent codes, as wrappers around any registered G and D.

Generators (`cond.g`):
- concat: a learned class embedding concatenated to z (Mirza & Osindero 2014).
- cbn: conditional BatchNorm: every BatchNorm of G takes its scale and shift from the class (de Vries et
  al. 2017; Miyato & Koyama 2018).
- InfoGAN: the codes (one-hot categorical and continuous) concatenated to z (Chen et al. 2016).
- The "dynamically aligned classifier" (`cond.g_classifier`): a dense classifier head on G's last feature
  map; `G.classify(z, y)` returns (image, logits, softmax), and AC-GAN training adds its cross-entropy
  against the requested class to G's loss, so G's own features are pushed to carry the class.

Discriminators return (adversarial logits [N], auxiliary output or None):
- cGAN by concatenation: one-hot class maps appended to D's input channels (Mirza & Osindero 2014).
- cGAN by projection: logits + <embed(y), phi(x)> with phi(x) D's features summed over space
  (Miyato & Koyama 2018).
- AC-GAN: a K-way class head on D's features beside the real/fake head (Odena et al. 2017).
- InfoGAN: a Q head sharing D's body: logits of each categorical code, means of the continuous ones.
- Semi-supervised (Salimans et al. 2016): D is a K-class classifier whose logits l give the K+1-th
  "fake" class implicitly: D(x) = Z / (Z + 1) with Z = sum_k exp(l_k), i.e. real/fake logit = logsumexp(l).
"""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ConditionalBatchNorm(nn.Module):
    """BatchNorm without its own affine; scale and shift per class (scale initialised at 1)."""

    def __init__(self, num_features: int, num_classes: int, eps: float = 1e-5, momentum: float = 0.1,
                 image: bool = True):
        super().__init__()
        self.bn = (nn.BatchNorm2d if image else nn.BatchNorm1d)(num_features, eps=eps, momentum=momentum, affine=False)
        self.gamma = nn.Embedding(num_classes, num_features)
        self.beta = nn.Embedding(num_classes, num_features)
        nn.init.normal_(self.gamma.weight, 1.0, 0.02)  # as DCGAN initialises BatchNorm scales
        nn.init.zeros_(self.beta.weight)
        self.y: Optional[Tensor] = None  # set by ConditionalGenerator before each forward

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn(x)
        shape = (x.shape[0], -1) + (1,) * (x.dim() - 2)
        return out * self.gamma(self.y).view(shape) + self.beta(self.y).view(shape)


def _swap_batchnorm(module: nn.Module, num_classes: int) -> list[ConditionalBatchNorm]:
    made = []
    for name, child in module.named_children():
        if isinstance(child, (nn.BatchNorm1d, nn.BatchNorm2d)):
            cbn = ConditionalBatchNorm(child.num_features, num_classes, child.eps, child.momentum,
                                       image=isinstance(child, nn.BatchNorm2d))
            setattr(module, name, cbn)
            made.append(cbn)
        else:
            made += _swap_batchnorm(child, num_classes)
    return made


def _last_layer(net: nn.Module) -> nn.Module:
    """G's last conv or linear layer: its input is G's last feature map."""
    last = None
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            last = m
    return last


class ConditionalGenerator(nn.Module):
    """G(z, y): y is a class index [N] (cGAN, AC-GAN) or a code vector [N, codes] (InfoGAN).

    encode: what y becomes before it is concatenated to z (a class embedding, or nothing for codes);
    with cbn=True y sets the scale and shift of every BatchNorm instead."""

    def __init__(self, inner: nn.Module, num_classes: int, encode: Optional[nn.Module] = None,
                 cbn: bool = False, classifier: bool = False):
        super().__init__()
        self.inner, self.num_classes, self.embed = inner, num_classes, encode
        self.cbns = _swap_batchnorm(inner, num_classes) if cbn else []
        if cbn and not self.cbns:
            raise ValueError("conditional BatchNorm needs a generator with BatchNorm layers")
        self._features: Optional[Tensor] = None
        self.classifier = None
        if classifier:
            last = _last_layer(inner)
            width = last.in_channels if isinstance(last, (nn.Conv2d, nn.ConvTranspose2d)) else last.in_features
            self.classifier = nn.Linear(width, num_classes)
            last.register_forward_pre_hook(self._keep_features)

    def _keep_features(self, module, args):
        self._features = args[0]

    def forward(self, z: Tensor, y: Tensor, with_logits: bool = False):
        """The image [N,C,H,W]; with_logits: (image, class logits of G's own head)."""
        for m in self.cbns:
            m.y = y
        if not self.cbns:
            code = self.embed(y) if self.embed is not None else y.to(z.dtype)  # [N,E] or [N,codes]
            z = torch.cat([z, code], dim=1)
        image = self.inner(z)
        if not with_logits:
            return image
        f = self._features
        f = f.mean((2, 3)) if f.dim() == 4 else f  # global average pooling of the last feature map
        return image, self.classifier(f)

    def classify(self, z: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(image, class logits, softmax) from the dense head on G's last feature map."""
        if self.classifier is None:
            raise RuntimeError("this generator has no classifier head (cond.g_classifier=false)")
        image, logits = self.forward(z, y, with_logits=True)
        return image, logits, logits.softmax(1)


def flat_width(D: nn.Module, shape: tuple) -> tuple[int, tuple]:
    """(size of D's flattened features, their shape) for inputs of `shape`."""
    with torch.no_grad():
        was = D.training
        D.eval()
        f = D.features(torch.zeros(2, *shape))
        D.train(was)
    return int(math.prod(f.shape[1:])), tuple(f.shape[1:])


class ConditionalDiscriminator(nn.Module):
    """Wraps a registered D (with .features and .head). forward(x, y=None) -> (logits [N], aux or None)."""

    def __init__(self, inner: nn.Module, num_classes: int):
        super().__init__()
        self.inner, self.num_classes = inner, num_classes

    def features(self, x: Tensor) -> Tensor:
        return self.inner.features(x)


class ConcatDiscriminator(ConditionalDiscriminator):
    """cGAN by concatenation: `inner` was built for C + K input channels; one-hot class maps fill them."""

    def forward(self, x: Tensor, y: Optional[Tensor] = None) -> tuple[Tensor, None]:
        onehot = F.one_hot(y, self.num_classes).to(x.dtype)  # [N,K]
        if x.dim() == 4:
            onehot = onehot[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])  # [N,K,H,W]
        return self.inner(torch.cat([x, onehot], dim=1)), None


class ProjectionDiscriminator(ConditionalDiscriminator):
    """cGAN by projection: logits + <embed(y), phi(x)>, phi(x) = D's features summed over space."""

    def __init__(self, inner: nn.Module, num_classes: int, shape: tuple):
        super().__init__(inner, num_classes)
        channels = flat_width(inner, shape)[1][0]
        self.embed = nn.Embedding(num_classes, channels)
        nn.init.normal_(self.embed.weight, 0.0, 0.02)

    def forward(self, x: Tensor, y: Optional[Tensor] = None) -> tuple[Tensor, None]:
        f = self.inner.features(x)
        phi = f.sum((2, 3)) if f.dim() == 4 else f  # [N,C]
        return self.inner.head(f) + (self.embed(y) * phi).sum(1), None


class AuxHeadDiscriminator(ConditionalDiscriminator):
    """AC-GAN's class head or InfoGAN's Q head (`aux`) on D's features, beside the real/fake head."""

    def __init__(self, inner: nn.Module, num_classes: int, aux: nn.Module):
        super().__init__(inner, num_classes)
        self.aux = aux

    def forward(self, x: Tensor, y: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
        f = self.inner.features(x)
        return self.inner.head(f), self.aux(f.flatten(1))  # [N], [N, aux] from [N, C*H*W] features


class KPlusOneDiscriminator(ConditionalDiscriminator):
    """Semi-supervised: K class logits l replace the real/fake head; real/fake logit = logsumexp(l)."""

    def __init__(self, inner: nn.Module, num_classes: int, shape: tuple):
        super().__init__(inner, num_classes)
        own_head = getattr(inner, "class_head", None)  # a family's own K-way head (models/ssgan.py: noise, weight norm)
        self.aux = own_head(num_classes) if own_head else nn.Linear(flat_width(inner, shape)[0], num_classes)
        self.inner.head = None

    def from_features(self, f: Tensor) -> tuple[Tensor, Tensor]:
        """(real/fake logit [N], class logits [N,K]) from D's features."""
        logits = self.aux(f.flatten(1))  # [N,K]
        return torch.logsumexp(logits, dim=1), logits

    def forward(self, x: Tensor, y: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
        return self.from_features(self.inner.features(x))
