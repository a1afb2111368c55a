"""Ready-made models built from :mod:`rnnlab.nn`.

- :class:`CharRNN`: a character-level language model (Embedding -> RNN/LSTM/GRU -> Linear) with streaming
  generation.
- :class:`SequenceClassifier`: a recurrent stack read over a sequence (e.g. an image row by row), pooled,
  then a Linear classifier.
"""
from .charrnn import CharRNN, sample_from_logits
from .classifier import SequenceClassifier

__all__ = ["CharRNN", "SequenceClassifier", "sample_from_logits"]
