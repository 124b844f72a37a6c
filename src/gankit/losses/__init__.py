from .adversarial import OBJECTIVES, Objective, objective_of
from .penalties import clip_weights_, gradient_penalty, r1_penalty

__all__ = ["OBJECTIVES", "Objective", "objective_of", "clip_weights_", "gradient_penalty", "r1_penalty"]
