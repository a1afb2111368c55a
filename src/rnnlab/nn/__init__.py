"""Layers with PyTorch's names, shapes and equations, and hand-written backward passes."""
from .module import Module, Parameter
from .recurrent import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell, RNNBase
from .layers import Dropout, Embedding, Linear
from .loss import CrossEntropyLoss

__all__ = ["Module", "Parameter", "RNNBase", "RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell",
           "Linear", "Embedding", "Dropout", "CrossEntropyLoss"]
