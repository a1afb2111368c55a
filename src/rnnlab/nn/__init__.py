"""Layers with PyTorch's names, shapes and equations, and hand-written backward passes."""
from .module import Module, Parameter
from .recurrent import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell, RNNBase
from .layers import Dropout, Embedding, Linear
from .loss import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss
from .attention import Attention, AttentionMemory
from . import fast_setup as _fast_setup

_fast_setup.install()  # the numba fast path by default (RNNLAB_FAST=0: the reference recurrent_math)

__all__ = ["Module", "Parameter", "RNNBase", "RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell",
           "Linear", "Embedding", "Dropout", "CrossEntropyLoss",
           "MSELoss", "BCEWithLogitsLoss", "Attention", "AttentionMemory"]
