"""The one-step cells ``RNNCell``, ``LSTMCell``, ``GRUCell``: one step of :class:`rnnlab.nn.RNN` and friends,
with PyTorch's names, shapes and initialisation. A step is the cell math of :mod:`rnnlab.nn.recurrent_math`
(or its compiled twin, chosen by :func:`rnnlab.nn.recurrent.cell_math`) over a sequence of length 1."""
from __future__ import annotations

from .. import backend
from .module import Module, Parameter
from .recurrent import cell_math
from .recurrent_layout import as_float_array, check_greater_than_zero, check_types, uniform_init

__all__ = ["RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"]


class RNNCellBase(Module):
    """Base of the one-step cells: parameters ``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh``.

    Each forward pushes its cache on a stack and each ``backward`` pops the latest, so a Python loop
    of forward calls followed by backward calls in reverse order is back-propagation through time
    written by hand. Under :func:`rnnlab.no_grad` nothing is pushed; :meth:`clear_cache` drops
    whatever forwards left without a backward.
    """

    _mode = ""

    def __init__(self, input_size: int, hidden_size: int, bias: bool, num_chunks: int, dtype=None):
        super().__init__()
        check_types(("input_size", input_size, int), ("hidden_size", hidden_size, int), ("bias", bias, bool))
        check_greater_than_zero(("input_size", input_size), ("hidden_size", hidden_size))
        xp = backend.xp
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        self.dtype = backend.resolve_dtype(dtype)
        self.weight_ih = Parameter(xp.empty((num_chunks * hidden_size, input_size), dtype=self.dtype))
        self.weight_hh = Parameter(xp.empty((num_chunks * hidden_size, hidden_size), dtype=self.dtype))
        if bias:
            self.bias_ih = Parameter(xp.empty((num_chunks * hidden_size,), dtype=self.dtype))
            self.bias_hh = Parameter(xp.empty((num_chunks * hidden_size,), dtype=self.dtype))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self._cache_stack = []
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Every parameter ~ U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)), drawn from rnnlab's generator."""
        uniform_init(self, self.hidden_size)

    def clear_cache(self) -> None:
        """Forget the caches of forwards that will not be back-propagated."""
        self._cache_stack.clear()

    def extra_repr(self) -> str:
        s = "{input_size}, {hidden_size}"
        if self.bias is not True:
            s += ", bias={bias}"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            s += ", nonlinearity={nonlinearity}"
        return s.format(**self.__dict__)

    def _prepare(self, input, states):
        """-> (x (N, H_in), [state (N, H)], batched); states entries may be None (zeros)."""
        xp = backend.xp
        dtype = self.weight_ih.data.dtype
        x = as_float_array(input, dtype, "input")
        if x.ndim not in (1, 2):
            raise ValueError(f"{self._mode}: Expected input to be 1D or 2D, got {x.ndim}D instead")
        batched = x.ndim == 2
        if not batched:
            x = x[None, :]
        if x.shape[1] != self.input_size:
            raise ValueError(f"input has inconsistent input_size: got {x.shape[1]} expected {self.input_size}")
        prepared = []
        for k, state in enumerate(states):
            label = "hidden" if len(states) == 1 else f"hx[{k}]"
            if state is None:
                prepared.append(xp.zeros((x.shape[0], self.hidden_size), dtype=dtype))
                continue
            state = as_float_array(state, dtype, label)
            if state.ndim not in (1, 2):
                raise ValueError(f"{self._mode}: Expected {label} to be 1D or 2D, got {state.ndim}D instead")
            if not batched:
                state = state[None, :] if state.ndim == 1 else state
            if tuple(state.shape) != (x.shape[0], self.hidden_size):
                raise ValueError(f"Expected {label} of shape {(x.shape[0], self.hidden_size) if batched else (self.hidden_size,)}, "
                                 f"got {list(state.shape if batched else state.shape[1:])}")
            prepared.append(state)
        return x, prepared, batched

    def _pop_cache(self):
        if not self._cache_stack:
            raise RuntimeError(f"{type(self).__name__}.backward() called more times than forward() (or after a "
                               "forward under rnnlab.no_grad(), which keeps nothing to back-propagate)")
        return self._cache_stack.pop()

    def _weights(self):
        """The cell math's weight arguments: W_ih, b_ih, W_hh, b_hh (biases None without bias)."""
        return (self.weight_ih.data, None if self.bias_ih is None else self.bias_ih.data,
                self.weight_hh.data, None if self.bias_hh is None else self.bias_hh.data)

    def _accumulate(self, grads) -> None:
        """Add one step's parameter gradients."""
        for name, grad in grads.items():
            parameter = getattr(self, name, None)
            if grad is not None and parameter is not None:
                parameter.accumulate_grad(grad, owned=name.startswith("weight"))

    def _grad_state(self, grad, batch, batched, what):
        if grad is None:
            return None
        grad = as_float_array(grad, self.weight_ih.data.dtype, what)
        if not batched:
            grad = grad[None, :] if grad.ndim == 1 else grad
        if tuple(grad.shape) != (batch, self.hidden_size):
            raise ValueError(f"{what} must have the shape of the forward's result, got {list(grad.shape)}")
        return grad


class _SingleStateCell(RNNCellBase):
    """What :class:`RNNCell` and :class:`GRUCell` share: one state ``h``; the cell math runs a
    sequence of length 1 (``_run`` / ``_run_backward`` pick the cell's functions)."""

    def forward(self, input, hx=None):
        x, (h,), batched = self._prepare(input, [hx])
        math = cell_math(self.weight_ih.data.dtype)
        _, h_next, cache = self._run(math, x[None], h)
        if backend.is_grad_enabled():
            self._cache_stack.append((math, cache, batched))
        return h_next if batched else h_next[0]

    def backward(self, grad_h):
        math, cache, batched = self._pop_cache()
        grad_h = self._grad_state(grad_h, cache.states.shape[1], batched, "grad_h")
        grad_x, grad_h_prev, grads = self._run_backward(math, grad_h, cache)
        self._accumulate(grads)
        if not batched:
            return grad_x[0, 0], grad_h_prev[0]
        return grad_x[0], grad_h_prev


class RNNCell(_SingleStateCell):
    r"""An Elman RNN cell with tanh or ReLU non-linearity: one step of :class:`RNN`.

    .. math::
        h' = \tanh(x W_{ih}^T + b_{ih} + h W_{hh}^T + b_{hh})

    Args:
        input_size, hidden_size: features in the input `x` and the hidden state `h`
        bias: If ``False``, no `b_ih` and `b_hh`. Default: ``True``
        nonlinearity: ``'tanh'`` or ``'relu'``. Default: ``'tanh'``
        dtype: ``float32`` (default) or ``float64``

    Inputs: input, hidden
        * **input**: :math:`(N, H_{in})` or :math:`(H_{in})`
        * **hidden**: :math:`(N, H_{out})` or :math:`(H_{out})`; zeros if not given.

    Output: h' of shape :math:`(N, H_{out})` or :math:`(H_{out})`.

    Backward: ``grad_input, grad_hidden = cell.backward(grad_h)`` pops the latest forward's cache.

    Attributes:
        weight_ih `(hidden_size, input_size)`, weight_hh `(hidden_size, hidden_size)`,
        bias_ih `(hidden_size)`, bias_hh `(hidden_size)`; all from :math:`\mathcal{U}(-\sqrt{k}, \sqrt{k})`,
        :math:`k = 1/\text{hidden\_size}`.

    Example (BPTT by hand)::

        >>> import numpy as np, rnnlab
        >>> from rnnlab import nn
        >>> _ = rnnlab.manual_seed(0)
        >>> cell = nn.RNNCell(3, 4)
        >>> xs = np.ones((6, 2, 3))                     # 6 steps, batch of 2
        >>> h = None
        >>> for x_t in xs:
        ...     h = cell(x_t, h)
        >>> grad_h = np.ones_like(h)                    # d(sum of h_6) / d h_6
        >>> for t in reversed(range(6)):
        ...     grad_x_t, grad_h = cell.backward(grad_h)
        >>> grad_x_t.shape, grad_h.shape, cell.weight_hh.grad.shape
        ((2, 3), (2, 4), (4, 4))
    """

    _mode = "RNNCell"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
                 dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity: {nonlinearity}")
        super().__init__(input_size, hidden_size, bias, num_chunks=1, dtype=dtype)
        self.nonlinearity = nonlinearity

    def _run(self, math, x, h):
        return math.rnn_forward(x, h, *self._weights(), self.nonlinearity)

    def _run_backward(self, math, grad_h, cache):
        return math.rnn_backward(None, grad_h, cache)


class LSTMCell(RNNCellBase):
    r"""A long short-term memory (LSTM) cell: one step of :class:`LSTM`.

    .. math::
        \begin{array}{ll}
        i = \sigma(W_{ii} x + b_{ii} + W_{hi} h + b_{hi}) \\
        f = \sigma(W_{if} x + b_{if} + W_{hf} h + b_{hf}) \\
        g = \tanh(W_{ig} x + b_{ig} + W_{hg} h + b_{hg}) \\
        o = \sigma(W_{io} x + b_{io} + W_{ho} h + b_{ho}) \\
        c' = f \odot c + i \odot g \\
        h' = o \odot \tanh(c') \\
        \end{array}

    Inputs: input, (h_0, c_0)
        * **input**: :math:`(N, H_{in})` or :math:`(H_{in})`
        * **h_0**, **c_0**: :math:`(N, H_{out})` or :math:`(H_{out})`; zeros if not given.

    Outputs: (h_1, c_1), shaped like h_0 and c_0.

    Backward: ``grad_input, (grad_h_0, grad_c_0) = cell.backward(grad_h_1, grad_c_1)`` (``grad_c_1`` may
    be ``None``) pops the latest forward's cache.

    Attributes:
        weight_ih `(4*hidden_size, input_size)`, weight_hh `(4*hidden_size, hidden_size)`,
        bias_ih, bias_hh `(4*hidden_size)`; gate order i, f, g, o; all from
        :math:`\mathcal{U}(-\sqrt{k}, \sqrt{k})`, :math:`k = 1/\text{hidden\_size}`.
    """

    _mode = "LSTMCell"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, dtype=None):
        super().__init__(input_size, hidden_size, bias, num_chunks=4, dtype=dtype)

    def forward(self, input, hx=None):
        if hx is not None and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
            raise TypeError("LSTMCell expects hx as a tuple (h_0, c_0)")
        x, (h, c), batched = self._prepare(input, [None, None] if hx is None else list(hx))
        math = cell_math(self.weight_ih.data.dtype)
        _, h_next, c_next, cache = math.lstm_forward(x[None], h, c, *self._weights())
        if backend.is_grad_enabled():
            self._cache_stack.append((math, cache, batched))
        if not batched:
            return h_next[0], c_next[0]
        return h_next, c_next

    def backward(self, grad_h, grad_c=None):
        math, cache, batched = self._pop_cache()
        batch = cache.states.shape[1]
        grad_h = self._grad_state(grad_h, batch, batched, "grad_h")
        grad_c = self._grad_state(grad_c, batch, batched, "grad_c")
        grad_x, grad_h_prev, grad_c_prev, grads = math.lstm_backward(None, grad_h, grad_c, cache)
        self._accumulate(grads)
        if not batched:
            return grad_x[0, 0], (grad_h_prev[0], grad_c_prev[0])
        return grad_x[0], (grad_h_prev, grad_c_prev)


class GRUCell(_SingleStateCell):
    r"""A gated recurrent unit (GRU) cell: one step of :class:`GRU`.

    .. math::
        \begin{array}{ll}
        r = \sigma(W_{ir} x + b_{ir} + W_{hr} h + b_{hr}) \\
        z = \sigma(W_{iz} x + b_{iz} + W_{hz} h + b_{hz}) \\
        n = \tanh(W_{in} x + b_{in} + r \odot (W_{hn} h + b_{hn})) \\
        h' = (1 - z) \odot n + z \odot h
        \end{array}

    (:math:`b_{hn}` inside :math:`r \odot (\dots)`, as in :class:`GRU`.)

    Inputs: input `(N, H_in)` or `(H_in)`, hidden `(N, H_out)` or `(H_out)` (zeros if not given).
    Output: h' shaped like hidden. Backward: ``grad_input, grad_hidden = cell.backward(grad_h)``.

    Attributes:
        weight_ih `(3*hidden_size, input_size)`, weight_hh `(3*hidden_size, hidden_size)`,
        bias_ih, bias_hh `(3*hidden_size)`; gate order r, z, n; all from
        :math:`\mathcal{U}(-\sqrt{k}, \sqrt{k})`, :math:`k = 1/\text{hidden\_size}`.
    """

    _mode = "GRUCell"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, dtype=None):
        super().__init__(input_size, hidden_size, bias, num_chunks=3, dtype=dtype)

    def _run(self, math, x, h):
        return math.gru_forward(x, h, *self._weights())

    def _run_backward(self, math, grad_h, cache):
        return math.gru_backward(None, grad_h, cache)
