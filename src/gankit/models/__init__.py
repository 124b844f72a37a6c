"""Model families. Importing this package registers every builder."""
from . import attention, dcgan, mlp, r3gan, resnet, ssgan  # noqa: F401  (registration side effects)
from .latent import sample_z
from .registry import DISCRIMINATORS, GENERATORS, MODELS, build_models

__all__ = ["GENERATORS", "DISCRIMINATORS", "MODELS", "build_models", "sample_z"]
