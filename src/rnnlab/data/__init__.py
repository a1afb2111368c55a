"""Data for recurrent models: text for character-level language models, images read row by row.

Text flows one way: a file -> :func:`encode_corpus` (ids in the smallest integer type, memory-mapped for
big corpora, with its sorted :class:`Vocabulary`) -> :func:`split_ids` (train / validation / test) ->
:class:`BatchStreams` (time-major ``(x, y)`` batches from contiguous streams, hidden state carried).
With no text file, :func:`default_corpus_path` gives Python's standard library source as one file.

Images: :func:`read_idx` / :func:`load_idx_pair` read the IDX format, :func:`load_dataset` finds (or
downloads) MNIST and Fashion-MNIST.

>>> from rnnlab.data import Vocabulary, BatchStreams
>>> vocab = Vocabulary.from_text("to be or not to be")
>>> streams = BatchStreams(vocab.encode("to be or not to be"), batch_size=2, seq_len=4)
>>> x, y = streams.batch(0)
>>> x.shape, vocab.decode(x[:, 0])
((4, 2), 'to b')
"""
from .batching import BatchStreams
from .corpus import default_corpus_path, encode_corpus, split_ids, stdlib_source_files, text_cache_dir
from .datasets import DATASETS, Dataset, download_dataset, load_dataset, locate_dataset
from .idx import load_idx_pair, read_idx, write_idx
from .text import Vocabulary, read_text, smallest_id_dtype

__all__ = ["Vocabulary", "read_text", "smallest_id_dtype", "encode_corpus", "split_ids", "default_corpus_path",
           "stdlib_source_files", "text_cache_dir", "BatchStreams",
           "read_idx", "write_idx", "load_idx_pair", "DATASETS", "Dataset", "load_dataset", "locate_dataset",
           "download_dataset"]
