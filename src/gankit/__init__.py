"""gankit: train, watch, evaluate and compare GANs."""
__version__ = "0.1.0"

from .config import Config, build_config, preset_names  # noqa: E402
from .losses import OBJECTIVES  # noqa: E402
from .models import DISCRIMINATORS, GENERATORS, MODELS, build_models  # noqa: E402
from .sampling import generate, load_generator, sample  # noqa: E402
from .training import resume, train  # noqa: E402

__all__ = ["__version__", "Config", "build_config", "preset_names", "train", "resume", "sample",
           "generate", "load_generator", "MODELS", "GENERATORS", "DISCRIMINATORS", "OBJECTIVES",
           "build_models"]
