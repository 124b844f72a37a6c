from .toy import toy_modes

__all__ = ["toy_modes"]
