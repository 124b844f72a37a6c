"""Mixed precision on CUDA: bf16 or fp16 autocast for the forward passes, a gradient scaler for fp16.

Penalties that differentiate D's output with respect to its input (WGAN-GP, R1) are computed in float32
outside autocast, so the gradient norm they constrain is not rounded to 8 or 11 bits; with fp16 the
scaler multiplies only the final loss, never that inner gradient.
"""
from __future__ import annotations

import contextlib

import torch

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def resolve(mode: str, device: torch.device) -> str:
    """train.amp 'auto': bf16 on a CUDA GPU that has it (R3GAN's setting), float32 elsewhere; other modes as given."""
    if mode != "auto":
        return mode
    return "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "off"


class Precision:
    def __init__(self, mode: str = "off", device: torch.device = torch.device("cpu")):
        mode = resolve(mode, device)
        self.mode, self.device_type = mode, device.type
        self.enabled = mode in DTYPES  # "off": float32
        fp16 = DTYPES.get(mode) is torch.float16  # fp16 needs loss scaling, bf16 does not
        self.scaler_d = torch.amp.GradScaler(device.type, enabled=fp16)
        self.scaler_g = torch.amp.GradScaler(device.type, enabled=fp16)

    def autocast(self):
        if not self.enabled:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=DTYPES[self.mode])

    def state_dict(self) -> dict:
        return {"d": self.scaler_d.state_dict(), "g": self.scaler_g.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        if state:
            self.scaler_d.load_state_dict(state["d"])
            self.scaler_g.load_state_dict(state["g"])


FP32 = Precision()

