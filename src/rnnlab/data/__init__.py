"""Data for recurrent models: text for character-level language models, images read row by row.

Text flows one way: a file -> :func:`encode_corpus` (ids in the smallest integer type, memory-mapped for
big corpora, with its sorted :class:`Vocabulary`) -> :func:`split_ids` (train / validation / test) ->
:class:`BatchStreams` (time-major ``(x, y)`` batches from contiguous streams, hidden state carried).

>>> from rnnlab.data import Vocabulary, BatchStreams
>>> vocab = Vocabulary.from_text("to be or not to be")
>>> streams = BatchStreams(vocab.encode("to be or not to be"), batch_size=2, seq_len=4)
>>> x, y = streams.batch(0)
>>> x.shape, vocab.decode(x[:, 0])
((4, 2), 'to b')
"""
from .batching import BatchStreams
from .corpus import (default_cache_dir, default_corpus_path, encode_corpus, split_ids, stdlib_source_files)
from .text import Vocabulary, read_text, smallest_id_dtype

__all__ = ["Vocabulary", "read_text", "smallest_id_dtype", "encode_corpus", "split_ids", "default_corpus_path",
           "default_cache_dir", "stdlib_source_files", "BatchStreams"]
