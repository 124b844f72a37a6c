from .loop import make_recipe, resume, train

__all__ = ["train", "resume", "make_recipe"]
