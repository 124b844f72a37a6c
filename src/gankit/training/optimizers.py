"""The optimizers a run can pick (`optim.optimizer`), each with its functional update rule: unrolled D
(Metz et al. 2017) follows the same rule, differentiably, from the optimizer's current state."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from ..config import OptimConfig
from ..devices import is_gpu
from ..errors import GankitError
from ..registry import Registry
from ..schedules import value_at

# (param group, gradient, first moment, second moment, step count) -> (update, m, v, t)
Rule = Callable[[dict, Tensor, object, object, float], tuple[Tensor, object, object, float]]


def adam_rule(group: dict, g: Tensor, m, v, t: float):
    b1, b2 = group["betas"]
    t += 1
    m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
    update = group["lr"] * (m / (1 - b1 ** t)) / ((v / (1 - b2 ** t) + 1e-16).sqrt() + group["eps"])
    return update, m, v, t


def rmsprop_rule(group: dict, g: Tensor, m, v, t: float):
    a = group["alpha"]
    v = a * v + (1 - a) * g * g
    return group["lr"] * g / ((v + 1e-16).sqrt() + group["eps"]), m, v, t


def sgd_rule(group: dict, g: Tensor, m, v, t: float):
    return group["lr"] * g, m, v, t


@dataclass(frozen=True)
class OptimizerKind:
    cls: type  # the torch.optim class
    options: Callable[[OptimConfig], dict]  # its keyword arguments from the config
    rule: Rule  # the same update as a differentiable function (momentum-free for SGD and RMSprop)
    fused: bool = False  # a fused CUDA kernel exists


OPTIMIZERS: Registry[OptimizerKind] = Registry("optimizer")
OPTIMIZERS.register("adam")(OptimizerKind(torch.optim.Adam, lambda c: {"betas": (c.beta1, value_at(c.beta2))}, adam_rule, True))
OPTIMIZERS.register("rmsprop")(OptimizerKind(torch.optim.RMSprop, lambda c: {"momentum": c.momentum}, rmsprop_rule))
OPTIMIZERS.register("sgd")(OptimizerKind(torch.optim.SGD, lambda c: {"momentum": c.momentum}, sgd_rule))
KERNELS = {"fused": {"fused": True}, "foreach": {"foreach": True}, "loop": {"foreach": False}}


def make_optimizer(params, cfg: OptimConfig, lr: float, device: torch.device = torch.device("cpu")
                   ) -> torch.optim.Optimizer:
    """The configured optimizer; optim.impl picks the kernels: fused (Adam on CUDA), foreach (one multi-tensor
    kernel per step) or a loop over parameters."""
    kind = OPTIMIZERS.get(cfg.optimizer)
    impl = cfg.impl if cfg.impl in KERNELS else ("fused" if is_gpu(device) and kind.fused else "foreach")
    if KERNELS[impl].get("fused") and not kind.fused:
        raise GankitError(f"optim.impl=fused is offered for Adam only, not {cfg.optimizer}; use foreach")
    return kind.cls(params, lr=lr, **kind.options(cfg), **KERNELS[impl])


def rule_of(opt: torch.optim.Optimizer) -> Rule:
    """The functional update rule of an optimizer made by make_optimizer."""
    for name in OPTIMIZERS.names():
        if isinstance(opt, OPTIMIZERS.get(name).cls):
            return OPTIMIZERS.get(name).rule
    raise GankitError(f"unrolled D does not know the update rule of {type(opt).__name__}")
