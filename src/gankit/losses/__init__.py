from .adversarial import OBJECTIVES, Objective
from .penalties import clip_weights_, gradient_penalty, r1_penalty

__all__ = ["OBJECTIVES", "Objective", "clip_weights_", "gradient_penalty", "r1_penalty"]
