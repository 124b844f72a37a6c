"""TensorBoard logging (--tensorboard): scalars of every log row, sample grids, evaluation metrics."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..errors import GankitError


class TensorBoard:
    """A thin wrapper over torch.utils.tensorboard.SummaryWriter writing to RUN_DIR/tensorboard."""

    def __init__(self, run: Path):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise GankitError("--tensorboard needs the tensorboard package; pip install tensorboard") from None
        self.writer = SummaryWriter(str(Path(run) / "tensorboard"))

    def scalars(self, row: dict, prefix: str = "train") -> None:
        for k, v in row.items():
            if k not in ("step", "epoch") and isinstance(v, (int, float)) and not isinstance(v, bool):
                self.writer.add_scalar(f"{prefix}/{k}", v, row["step"])

    def image(self, tag: str, png: Path, step: int) -> None:
        """Log a PNG the run already wrote (sample grid or scatter plot)."""
        arr = np.array(Image.open(png).convert("RGB"))  # [H,W,3], a writable copy
        self.writer.add_image(tag, torch.from_numpy(arr).permute(2, 0, 1), step)

    def close(self) -> None:
        self.writer.close()
