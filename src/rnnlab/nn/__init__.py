"""Layers with PyTorch's names, shapes and equations, and hand-written backward passes."""
from .module import Module, Parameter
from .recurrent import GRU, LSTM, RNN, RNNBase
from .cells import GRUCell, LSTMCell, RNNCell
from .layers import Dropout, Embedding, Linear
from .loss import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss
from .attention import Attention, AttentionMemory

__all__ = ["Module", "Parameter", "RNNBase", "RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell",
           "Linear", "Embedding", "Dropout", "CrossEntropyLoss",
           "MSELoss", "BCEWithLogitsLoss", "Attention", "AttentionMemory"]
