"""Ready-made models built from :mod:`rnnlab.nn`: ``CharRNN`` (a character-level language model)."""
from .charrnn import CharRNN, sample_from_logits

__all__ = ["CharRNN", "sample_from_logits"]
