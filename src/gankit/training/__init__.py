from .loop import resume, train

__all__ = ["train", "resume"]
