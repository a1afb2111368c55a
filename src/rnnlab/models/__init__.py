"""Ready-made models built from :mod:`rnnlab.nn`.

- :class:`CharRNN`: a character-level language model (Embedding -> RNN/LSTM/GRU -> Linear) with streaming
  generation.
- :class:`SequenceClassifier`: a recurrent stack read over a sequence (e.g. an image row by row), pooled,
  then a Linear classifier.
- :class:`Seq2Seq`: an encoder-decoder with optional attention, greedy and beam-search decoding.
- :class:`SequenceTagger`: a (bi)directional stack with a label per step.
- :class:`SequenceGenerator`: a class-conditioned generator of a whole sequence (one-to-many).
"""
from .charrnn import CharRNN, sample_from_logits
from .classifier import SequenceClassifier
from .generator import SequenceGenerator
from .seq2seq import Seq2Seq
from .tagger import SequenceTagger

__all__ = ["CharRNN", "SequenceClassifier", "Seq2Seq", "SequenceTagger", "SequenceGenerator", "sample_from_logits"]
