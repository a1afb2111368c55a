"""Recurrent layers with PyTorch's names, shapes, equations and initialisation: ``RNN``, ``LSTM``, ``GRU``,
with hand-written backward passes (the one-step cells are in :mod:`rnnlab.nn.cells`).

:class:`RNNBase` holds everything the three layers share: parameters created in a layer x direction
loop from PyTorch's name templates (``weight_ih_l{k}{suffix}``), initialisation, input and state shape
checks, variable ``lengths``, dropout between layers, time reversal for the reverse direction,
``extra_repr``. It never branches on the mode: what differs between cells (gate count, state
tensors, the math over a whole sequence with every gradient) is the mode's
:class:`~rnnlab.nn.recurrent_math.Cell` in the registry :data:`rnnlab.nn.recurrent_math.CELLS`.
:func:`cell_for` picks, once per layer forward, its compiled twin (:mod:`rnnlab.fast.recurrent`, same
caches) or the reference through the one switch, :func:`rnnlab.fast.enabled`, and the forward's
choice also runs its backward.
"""
from __future__ import annotations

import numbers
import warnings
from typing import Any, NamedTuple

from .. import backend
from . import recurrent_math, table_input
from .cell_choice import cell_for, cell_math
from .module import Module, Parameter
from .recurrent_layout import (RecurrentLayout, check_greater_than_zero, check_lengths, check_types, reverse_time,
                               uniform_init)

__all__ = ["RNNBase", "RNN", "LSTM", "GRU", "cell_math", "cell_for"]


_PARAMETER_ORDER = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")  # PyTorch's registration order


class _ForwardCache(NamedTuple):
    """What :meth:`RNNBase.backward` needs from the forward (beside each direction's cell cache)."""
    cell: Any                 # the Cell that ran the forward (compiled twin or reference): runs the backward
    cell_caches: list         # [layer][direction] -> the cell's named cache
    dropout_masks: list       # [layer] -> the mask on that layer's input, or None
    lengths: Any              # (N,) ints, or None
    batched: bool
    output_shape: tuple       # time-major (L, N, D * H_out)
    state_shapes: list        # [(D * num_layers, N, H)] for h_n (and c_n)
    dtype: Any
    table_input: Any = None   # a table_input.TableInput when layer 0's input was rows of an Embedding's table


# ------------------------------------------------------------------------------------------------
# the shared base of RNN, LSTM and GRU
# ------------------------------------------------------------------------------------------------
class RNNBase(RecurrentLayout, Module):
    r"""Base class of :class:`RNN`, :class:`LSTM` and :class:`GRU` (PyTorch's ``RNNBase``).

    Args:
        mode: ``'RNN_TANH'``, ``'RNN_RELU'``, ``'LSTM'``, ``'GRU'``, or any other name registered with
            :func:`rnnlab.nn.recurrent_math.register_cell` (its ``Cell`` gives the gate count and states).
        input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, proj_size:
            as in :class:`LSTM`.
        dtype: ``float32`` (the default, see :func:`rnnlab.set_default_dtype`) or ``float64``.

    Shapes, in every docstring of the recurrent layers:

    .. math::
        \begin{aligned}
            N ={} & \text{batch size} \\
            L ={} & \text{sequence length} \\
            D ={} & 2 \text{ if bidirectional=True otherwise } 1 \\
            H_{in} ={} & \text{input\_size} \\
            H_{out} ={} & \text{hidden\_size (LSTM: proj\_size if proj\_size > 0)}
        \end{aligned}

    ``forward(input, hx=None, lengths=None)`` caches what ``backward`` needs (unless inside
    :func:`rnnlab.no_grad`); ``backward(grad_output, grad_state)`` accumulates every parameter's
    ``.grad`` and returns the gradients of the input and of the initial state. The cache stays until
    the next forward, so ``backward`` may be called again (gradients add up).

    The forward of an :class:`RNN` (tanh, unidirectional, no ``lengths``) is equivalent to this plain
    loop (PyTorch's own example, in NumPy); LSTM and GRU change only the line that updates ``h_t``::

        def forward(x, hx=None):
            if batch_first:
                x = x.transpose(1, 0, 2)
            seq_len, batch_size, _ = x.shape
            if hx is None:
                hx = np.zeros((num_layers, batch_size, hidden_size))
            h_t_minus_1 = hx.copy()
            h_t = hx.copy()
            output = []
            for t in range(seq_len):
                for layer in range(num_layers):
                    input_t = x[t] if layer == 0 else h_t[layer - 1]   # (times a dropout mask in training)
                    h_t[layer] = np.tanh(
                        input_t @ weight_ih[layer].T + bias_ih[layer]
                        + h_t_minus_1[layer] @ weight_hh[layer].T + bias_hh[layer]
                    )
                output.append(h_t[-1].copy())
                h_t_minus_1 = h_t.copy()
            output = np.stack(output)
            if batch_first:
                output = output.transpose(1, 0, 2)
            return output, h_t

    rnnlab runs it layer by layer instead (all steps of layer 0, then of layer 1, ...): the same
    numbers, and each layer's input projection becomes one matrix product over all steps.
    """

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 proj_size: int = 0, dtype=None):
        super().__init__()
        if not isinstance(dropout, numbers.Number) or isinstance(dropout, bool) or not 0 <= dropout <= 1:
            raise ValueError("dropout should be a number in range [0, 1] "
                             "representing the probability of an element being zeroed")
        if dropout > 0 and num_layers == 1:
            warnings.warn("dropout option adds dropout after all but last recurrent layer, so non-zero dropout "
                          f"expects num_layers greater than 1, but got dropout={dropout} and num_layers={num_layers}",
                          stacklevel=3)
        check_types(("bias", bias, bool), ("batch_first", batch_first, bool), ("bidirectional", bidirectional, bool),
                    ("input_size", input_size, int), ("hidden_size", hidden_size, int),
                    ("num_layers", num_layers, int), ("proj_size", proj_size, int))
        check_greater_than_zero(("input_size", input_size), ("hidden_size", hidden_size), ("num_layers", num_layers))
        if proj_size < 0:
            raise ValueError("proj_size should be a positive integer or zero to disable projections")
        if proj_size >= hidden_size:
            raise ValueError("proj_size has to be smaller than hidden_size")
        if mode not in recurrent_math.CELLS:
            raise ValueError("Unrecognized RNN mode: " + str(mode))
        if proj_size > 0 and not recurrent_math.CELLS[mode].projection:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")

        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        self.dtype = backend.resolve_dtype(dtype)

        num_directions = 2 if bidirectional else 1
        gate_size = recurrent_math.CELLS[mode].gates * hidden_size
        real_hidden_size = proj_size if proj_size > 0 else hidden_size
        xp = backend.xp
        self._weight_names = []  # [layer][direction] -> {"weight_ih", ...} -> parameter name or None
        for layer in range(num_layers):
            per_direction = []
            for direction in range(num_directions):
                suffix = "_reverse" if direction == 1 else ""
                layer_input_size = input_size if layer == 0 else real_hidden_size * num_directions
                # the cell's argument name -> this layer and direction's parameter name (None: absent)
                names = {"weight_ih": f"weight_ih_l{layer}{suffix}", "bias_ih": None,
                         "weight_hh": f"weight_hh_l{layer}{suffix}", "bias_hh": None, "weight_hr": None}
                shapes = {"weight_ih": (gate_size, layer_input_size), "weight_hh": (gate_size, real_hidden_size)}
                if bias:
                    names["bias_ih"], names["bias_hh"] = f"bias_ih_l{layer}{suffix}", f"bias_hh_l{layer}{suffix}"
                    shapes["bias_ih"] = shapes["bias_hh"] = (gate_size,)
                if proj_size > 0:
                    names["weight_hr"] = f"weight_hr_l{layer}{suffix}"
                    shapes["weight_hr"] = (proj_size, hidden_size)
                for key in _PARAMETER_ORDER:
                    if names[key] is not None:
                        setattr(self, names[key], Parameter(xp.empty(shapes[key], dtype=self.dtype)))
                per_direction.append(names)
            self._weight_names.append(per_direction)
        self._cache = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Every parameter ~ U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)), drawn from rnnlab's generator."""
        uniform_init(self, self.hidden_size)

    @property
    def all_weights(self) -> list:
        """``[[weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0, (weight_hr_l0)], ...]`` per layer and direction."""
        return [[getattr(self, names[key]) for key in _PARAMETER_ORDER if names[key] is not None]
                for per_direction in self._weight_names for names in per_direction]

    def extra_repr(self) -> str:
        s = "{input_size}, {hidden_size}"
        if self.proj_size != 0:
            s += ", proj_size={proj_size}"
        if self.num_layers != 1:
            s += ", num_layers={num_layers}"
        if self.bias is not True:
            s += ", bias={bias}"
        if self.batch_first is not False:
            s += ", batch_first={batch_first}"
        if self.dropout != 0:
            s += ", dropout={dropout}"
        if self.bidirectional is not False:
            s += ", bidirectional={bidirectional}"
        return s.format(**self.__dict__)

    # --- what the mode's registered Cell decides --------------------------------------------------
    @property
    def _cell(self) -> recurrent_math.Cell:
        """This mode's entry of :data:`rnnlab.nn.recurrent_math.CELLS` (the reference functions)."""
        return recurrent_math.CELLS[self.mode]

    @property
    def _output_size(self) -> int:
        return self.proj_size if self.proj_size > 0 else self.hidden_size

    @property
    def _num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    # --- forward ----------------------------------------------------------------------------------
    def forward(self, input, hx=None, lengths=None):
        """Run the stack over whole sequences. See the class docstring of :class:`RNN`/:class:`LSTM`/:class:`GRU`."""
        return self._forward(input, hx, lengths, projected=False)

    def forward_projected(self, input_projection, hx=None, lengths=None):
        r""":meth:`forward` given layer 0's input projection instead of the input.

        ``input_projection`` is :math:`x W_{ih\_l0}^T + b_{ih\_l0}`, shaped like the input with
        ``G = gates * hidden_size`` features (``(L, N, G)``, ``(N, L, G)`` when ``batch_first``,
        ``(L, G)`` unbatched). A caller whose inputs come from a small table (a character model:
        ``embedding.weight[ids]``) computes it as a lookup in ``embedding.weight @ W_ih_l0.T + b_ih_l0``,
        a (vocabulary x G) table, instead of one large product per call. The array is consumed: the
        compiled path writes the gates over it, so pass a fresh one.

        The following :meth:`backward` returns the gradient with respect to ``input_projection`` in
        place of ``grad_input`` (None with ``input_grad=False``, which then saves no work) and leaves
        ``weight_ih_l0``'s and ``bias_ih_l0``'s gradients to the caller (:math:`\partial L/\partial W_{ih\_l0}
        = g^T x`, :math:`\partial L/\partial b_{ih\_l0} = \sum g`). Unidirectional layers only.
        """
        if self.bidirectional:
            raise ValueError("forward_projected supports unidirectional layers only (each direction has its "
                             "own weight_ih_l0)")
        return self._forward(input_projection, hx, lengths, projected=True)

    def _forward(self, input, hx, lengths, projected: bool):
        self._cache = None  # the previous forward's cache goes first: never two sets of caches at once
        dtype = getattr(self, self._weight_names[0][0]["weight_ih"]).data.dtype
        x, batched = self._time_major_input(input, dtype, projected)
        if lengths is not None and not batched:
            raise ValueError("lengths needs batched (3-D) input; an unbatched sequence has one length, its own")
        num_steps, batch = x.shape[0], x.shape[1]
        states = self._prepare_state(hx, batched, batch, dtype)
        if lengths is not None:
            lengths = check_lengths(lengths, batch, num_steps)
        cell = cell_for(self.mode, dtype)  # once per forward: no per-step dispatch
        found_table = None if projected else self._table_input(input, batched, dtype, cell)
        final_states = [[] for _ in states]
        dropout_masks, cell_caches = [], []
        if found_table is not None:
            weights = self._weights(0, 0)
            x = table_input.table_projection(found_table, weights["weight_ih"], weights["bias_ih"], num_steps, batch)
        layer_input = x
        projected = projected or found_table is not None
        for layer in range(self.num_layers):
            layer_input, mask = self._dropout(layer, layer_input, dtype)
            outputs, caches = [], []
            for direction in range(self._num_directions):
                index = layer * self._num_directions + direction
                output, final, cache = self._forward_direction(
                    cell, layer, direction, layer_input, [state[index] for state in states], lengths,
                    projected=projected and layer == 0)
                outputs.append(output)
                caches.append(cache)
                for collected, value in zip(final_states, final):
                    collected.append(value)
            dropout_masks.append(mask)
            cell_caches.append(caches)
            layer_input = outputs[0] if len(outputs) == 1 else backend.xp.concatenate(outputs, axis=-1)
        output = layer_input  # (L, N, D * H_out)
        finals = [backend.xp.stack(collected) for collected in final_states]
        if backend.is_grad_enabled():
            self._cache = _ForwardCache(cell, cell_caches, dropout_masks, lengths, batched, output.shape,
                                        [f.shape for f in finals], dtype, found_table)
        return self._user_layout(output, finals, batched)

    def _table_input(self, input, batched: bool, dtype, cell):
        """Layer 0's input as rows of an Embedding's table (:mod:`rnnlab.nn.table_input`: the projection
        as a lookup), compiled path and unidirectional only; else None."""
        if self.bidirectional or cell is recurrent_math.CELLS[self.mode]:
            return None
        return table_input.find_table_input(input, batched, self.batch_first, dtype)

    def _dropout(self, layer: int, layer_input, dtype):
        """Dropout on the previous layer's output (never on the input, never on the last layer's output),
        inverted scaling; in training mode only. -> (layer_input, mask or None)"""
        if layer == 0 or not (self.training and self.dropout > 0):
            return layer_input, None
        xp = backend.xp
        keep = backend.generator().random(layer_input.shape) >= self.dropout
        mask = (xp.asarray(keep, dtype=dtype) / (1.0 - self.dropout) if self.dropout < 1
                else xp.zeros(layer_input.shape, dtype=dtype))
        return layer_input * mask, mask

    def _weights(self, layer: int, direction: int) -> dict:
        """{cell argument name: parameter array or None} of one layer and direction."""
        return {key: None if name is None else getattr(self, name).data
                for key, name in self._weight_names[layer][direction].items()}

    def _forward_direction(self, cell, layer, direction, x, state, lengths, projected):
        """One direction of one layer: the reverse direction reads each sequence backwards (within its
        own length) and its output is turned back around."""
        weights = self._weights(layer, direction)
        if projected:  # the caller's x W_ih_l0^T + b_ih_l0 (see forward_projected)
            weights["weight_ih"] = weights["bias_ih"] = None
        if direction == 1:
            x = reverse_time(x, lengths)
        output, final, cache = cell.forward(x, tuple(state), weights, lengths, **cell.options)
        if direction == 1:
            output = reverse_time(output, lengths)
        return output, final, cache

    # --- backward ---------------------------------------------------------------------------------
    def backward(self, grad_output, grad_state=None, *, input_grad: bool = True):
        """Back-propagate through time: ``grad_output`` (shape of ``output`` or ``None``) and ``grad_state``
        (``grad_h_n``, or for LSTM ``(grad_h_n, grad_c_n)``; ``None`` or ``None`` entries mean zero) ->
        ``(grad_input, grad_h_0)`` (LSTM: ``(grad_input, (grad_h_0, grad_c_0))``), in the input's layout.
        Parameter gradients accumulate into ``.grad``. ``input_grad=False`` (the input is data): layer 0
        skips ``grad_x = g @ W_ih_l0`` and ``grad_input`` is None; every other gradient is unchanged."""
        cache = self._cache
        if cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward() needs a forward pass first (with gradients "
                               "enabled: a forward under rnnlab.no_grad() keeps nothing to back-propagate)")
        grad_states = self._time_major_grad_states(grad_state, cache)
        grad_layer_output = self._to_time_major(grad_output, cache.output_shape, cache.batched, "grad_output",
                                                cache.dtype, True)
        grad_initial = [backend.xp.zeros(shape, dtype=cache.dtype) for shape in cache.state_shapes]
        for layer in reversed(range(self.num_layers)):
            grad_layer_input = None
            for direction in range(self._num_directions):
                index = layer * self._num_directions + direction
                grad_final = [None if g is None else g[index] for g in grad_states]
                grad_input, grad_start = self._backward_direction(cache, layer, direction, grad_layer_output,
                                                                  grad_final, input_grad or layer > 0)
                for collected, value in zip(grad_initial, grad_start):
                    collected[index] = value
                grad_layer_input = grad_input if grad_layer_input is None else grad_layer_input + grad_input
            mask = cache.dropout_masks[layer]
            if mask is not None:
                grad_layer_input = grad_layer_input * mask
            grad_layer_output = grad_layer_input
        return self._user_layout(grad_layer_output, grad_initial, cache.batched)

    def _backward_direction(self, cache, layer, direction, grad_layer_output, grad_final, input_grad):
        """The backward of :meth:`_forward_direction`; accumulates the parameter gradients.
        -> grad of the layer's input (of layer 0's projection; None if not input_grad), [grad_h_0 (, grad_c_0)]"""
        grad_out = None
        if grad_layer_output is not None:
            out_size = self._output_size
            grad_out = grad_layer_output[:, :, direction * out_size:(direction + 1) * out_size]
            if direction == 1:
                grad_out = reverse_time(grad_out, cache.lengths)
        found_table = cache.table_input if layer == 0 else None
        grad_x, grad_start, grads = cache.cell.run_backward(grad_out, tuple(grad_final),
                                                            cache.cell_caches[layer][direction],
                                                            input_grad or found_table is not None)
        if found_table is not None:  # grad_x is the projection's gradient
            grad_x, grads["weight_ih"], grads["bias_ih"] = table_input.table_projection_backward(
                grad_x, found_table, getattr(self, self._weight_names[0][0]["weight_ih"]).data, self.bias, input_grad)
        names = self._weight_names[layer][direction]
        for key, grad in grads.items():
            if grad is not None and names[key] is not None:
                # weight gradients are fresh products, kept without a copy; a bias gradient may be shared
                getattr(self, names[key]).accumulate_grad(grad, owned=key.startswith("weight"))
        if direction == 1 and grad_x is not None:
            grad_x = reverse_time(grad_x, cache.lengths)
        return grad_x, grad_start


class RNN(RNNBase):
    r"""A multi-layer Elman RNN with :math:`\tanh` or :math:`\text{ReLU}` non-linearity.

    For each element in the input sequence, each layer computes

    .. math::
        h_t = \tanh(x_t W_{ih}^T + b_{ih} + h_{t-1} W_{hh}^T + b_{hh})

    where :math:`h_t` is the hidden state at time `t`, :math:`x_t` is the input at time `t`, and
    :math:`h_{(t-1)}` is the hidden state of the previous layer at time `t-1` or the initial hidden
    state at time `0`. With ``nonlinearity='relu'``, :math:`\text{ReLU}` replaces :math:`\tanh`.
    In a multilayer RNN the input of layer :math:`l \ge 2` is the output of layer :math:`l-1`,
    multiplied (in training mode) by a dropout mask :math:`\delta` of probability ``dropout``.

    Args:
        input_size: The number of expected features in the input `x`
        hidden_size: The number of features in the hidden state `h`
        num_layers: Number of recurrent layers stacked. Default: 1
        nonlinearity: The non-linearity to use. Can be either ``'tanh'`` or ``'relu'``. Default: ``'tanh'``
        bias: If ``False``, the layer does not use bias weights `b_ih` and `b_hh`. Default: ``True``
        batch_first: If ``True``, input and output are `(batch, seq, feature)` instead of
            `(seq, batch, feature)`. Does not apply to hidden states. Default: ``False``
        dropout: If non-zero, a Dropout layer on the outputs of each RNN layer except the last,
            with probability ``dropout``, in training mode only. Default: 0
        bidirectional: If ``True``, a bidirectional RNN. Default: ``False``
        dtype: ``float32`` (default: :func:`rnnlab.get_default_dtype`) or ``float64``.

    Inputs: input, hx, lengths
        * **input**: array of shape :math:`(L, H_{in})` for unbatched input, :math:`(L, N, H_{in})` when
          ``batch_first=False`` or :math:`(N, L, H_{in})` when ``batch_first=True``. Float or int
          input is cast to the layer's dtype; anything else raises ``TypeError``.
        * **hx**: array of shape :math:`(D * \text{num\_layers}, H_{out})` (unbatched) or
          :math:`(D * \text{num\_layers}, N, H_{out})`: the initial hidden state. Defaults to zeros.
        * **lengths** (rnnlab's stand-in for a ``PackedSequence``): ``None`` or one int per sequence,
          each in ``[1, L]`` (batched input only, any order). Results equal PyTorch's
          ``pack_padded_sequence(input, lengths, enforce_sorted=False)`` -> layer ->
          ``pad_packed_sequence(..., total_length=L)``: outputs past a sequence's end are 0, ``h_n`` holds
          each sequence's state at its own last step, and the reverse direction starts at each
          sequence's own last element. Gradients of padded inputs are 0.

    Outputs: output, h_n
        * **output**: :math:`(L, D * H_{out})` (unbatched), :math:`(L, N, D * H_{out})` or, with
          ``batch_first=True``, :math:`(N, L, D * H_{out})`: the last layer's :math:`h_t` for every `t`.
        * **h_n**: :math:`(D * \text{num\_layers}, H_{out})` or :math:`(D * \text{num\_layers}, N, H_{out})`:
          the final hidden state of every layer and direction, ordered layer by layer, forward
          direction before reverse (index ``layer * D + direction``).
    (Shapes: the legend ``N, L, D, H_in, H_out`` of :class:`RNNBase`.)

    Backward: ``grad_input, grad_h_0 = rnn.backward(grad_output, grad_h_n, input_grad=True)``; either
    gradient may be ``None`` (zero); ``input_grad=False`` skips ``grad_input`` (returned as None).
    ``grad_h_0`` is returned even when ``hx`` was not passed. ``.grad`` accumulates until :meth:`zero_grad`.

    Attributes:
        weight_ih_l[k]: the learnable input-hidden weights of the k-th layer, of shape
            `(hidden_size, input_size)` for `k = 0`, otherwise `(hidden_size, num_directions * hidden_size)`
        weight_hh_l[k]: the learnable hidden-hidden weights of the k-th layer, of shape `(hidden_size, hidden_size)`
        bias_ih_l[k]: the learnable input-hidden bias of the k-th layer, of shape `(hidden_size)`
        bias_hh_l[k]: the learnable hidden-hidden bias of the k-th layer, of shape `(hidden_size)`

        The reverse direction's parameters carry the suffix ``_reverse``. All are initialised from
        :math:`\mathcal{U}(-\sqrt{k}, \sqrt{k})` with :math:`k = 1/\text{hidden\_size}`.

    Example (PyTorch's basics, in rnnlab)::

        >>> import numpy as np, rnnlab
        >>> from rnnlab import nn
        >>> _ = rnnlab.manual_seed(0)
        >>> rnn = nn.RNN(4, 2, batch_first=True)
        >>> rnn
        RNN(4, 2, batch_first=True)
        >>> [(name, p.shape) for name, p in rnn.named_parameters()]
        [('weight_ih_l0', (2, 4)), ('weight_hh_l0', (2, 2)), ('bias_ih_l0', (2,)), ('bias_hh_l0', (2,))]
        >>> x = np.ones((3, 5, 4), dtype=np.float32)       # 3 sequences, 5 steps, 4 features
        >>> out, h_n = rnn(x)
        >>> out.shape, h_n.shape
        ((3, 5, 2), (1, 3, 2))
        >>> bool(np.allclose(out[:, -1], h_n[0]))            # the last output is the final state
        True
        >>> grad_x, grad_h0 = rnn.backward(np.ones_like(out), None)
        >>> grad_x.shape, grad_h0.shape, rnn.weight_hh_l0.grad.shape
        ((3, 5, 4), (1, 3, 2), (2, 2))
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 dtype=None):
        if nonlinearity == "tanh":
            mode = "RNN_TANH"
        elif nonlinearity == "relu":
            mode = "RNN_RELU"
        else:
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
        super().__init__(mode, input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         dtype=dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None, lengths=None):
        """``output, h_n = rnn(input, hx=None, lengths=None)`` (see the class docstring)."""
        return super().forward(input, hx, lengths)

    def backward(self, grad_output, grad_h_n=None, *, input_grad=True):
        """``grad_input, grad_h_0 = rnn.backward(grad_output, grad_h_n)``; ``None`` means zero."""
        return super().backward(grad_output, grad_h_n, input_grad=input_grad)


class LSTM(RNNBase):
    r"""A multi-layer long short-term memory (LSTM) RNN.

    For each element in the input sequence, each layer computes

    .. math::
        \begin{array}{ll}
            i_t = \sigma(W_{ii} x_t + b_{ii} + W_{hi} h_{t-1} + b_{hi}) \\
            f_t = \sigma(W_{if} x_t + b_{if} + W_{hf} h_{t-1} + b_{hf}) \\
            g_t = \tanh(W_{ig} x_t + b_{ig} + W_{hg} h_{t-1} + b_{hg}) \\
            o_t = \sigma(W_{io} x_t + b_{io} + W_{ho} h_{t-1} + b_{ho}) \\
            c_t = f_t \odot c_{t-1} + i_t \odot g_t \\
            h_t = o_t \odot \tanh(c_t) \\
        \end{array}

    where :math:`h_t` is the hidden state, :math:`c_t` the cell state, :math:`x_t` the input at time `t`,
    :math:`i_t, f_t, g_t, o_t` the input, forget, cell and output gates (stacked in this order in
    ``weight_ih``/``weight_hh``), :math:`\sigma` the sigmoid and :math:`\odot` the Hadamard product.
    In a multilayer LSTM the input of layer :math:`l \ge 2` is the previous layer's :math:`h_t`
    multiplied (in training mode) by a dropout mask of probability ``dropout``.

    With ``proj_size > 0`` the hidden state is projected, :math:`h_t = W_{hr}(o_t \odot \tanh(c_t))`,
    so ``h_t`` (and ``output``, ``h_n``, ``weight_hh``'s second dimension) has ``proj_size`` features
    while ``c_t`` keeps ``hidden_size``.

    Args:
        input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, dtype: as in :class:`RNN`
        proj_size: If ``> 0``, use an LSTM with projections of that size. Default: 0

    Inputs: input, (h_0, c_0), lengths
        * **input**, **lengths**: as in :class:`RNN`.
        * **h_0**: :math:`(D * \text{num\_layers}, H_{out})` or :math:`(D * \text{num\_layers}, N, H_{out})`
        * **c_0**: :math:`(D * \text{num\_layers}, H_{cell})` or :math:`(D * \text{num\_layers}, N, H_{cell})`,
          :math:`H_{cell}` = ``hidden_size``. Both default to zeros if ``(h_0, c_0)`` is not given.

    Outputs: output, (h_n, c_n)
        * **output**: :math:`(L, D * H_{out})`, :math:`(L, N, D * H_{out})` or (batch_first) :math:`(N, L, D * H_{out})`
        * **h_n**, **c_n**: the final hidden and cell states, shaped like ``h_0`` and ``c_0``; index
          ``layer * D + direction`` (for a bidirectional LSTM, ``h_n[-1]`` is the last layer's reverse
          direction, whose final step is the sequence's first element, while ``output[-1]``'s
          second half is that direction's first step).

    Backward: ``grad_input, (grad_h_0, grad_c_0) = lstm.backward(grad_output, (grad_h_n, grad_c_n))``;
    ``grad_output``, the tuple and its entries may be ``None`` (zero).

    Attributes:
        weight_ih_l[k]: `(4*hidden_size, input_size)` for `k = 0`, otherwise `(4*hidden_size, num_directions * H_out)`
        weight_hh_l[k]: `(4*hidden_size, H_out)` (`W_hi|W_hf|W_hg|W_ho`)
        bias_ih_l[k], bias_hh_l[k]: `(4*hidden_size)`
        weight_hr_l[k]: `(proj_size, hidden_size)`, only when ``proj_size > 0``

        Reverse-direction parameters carry the suffix ``_reverse``; all start from
        :math:`\mathcal{U}(-\sqrt{k}, \sqrt{k})`, :math:`k = 1/\text{hidden\_size}`.

    Example::

        >>> import numpy as np, rnnlab
        >>> from rnnlab import nn
        >>> _ = rnnlab.manual_seed(0)
        >>> lstm = nn.LSTM(10, 20, num_layers=2, batch_first=True, bidirectional=True)
        >>> lstm
        LSTM(10, 20, num_layers=2, batch_first=True, bidirectional=True)
        >>> x = np.zeros((3, 5, 10), dtype=np.float32)
        >>> out, (h_n, c_n) = lstm(x, lengths=[5, 3, 2])
        >>> out.shape, h_n.shape, c_n.shape
        ((3, 5, 40), (4, 3, 20), (4, 3, 20))
        >>> float(abs(out[2, 2:]).max())                  # past a sequence's end the output is 0
        0.0
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 proj_size: int = 0, dtype=None):
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         proj_size, dtype=dtype)

    def forward(self, input, hx=None, lengths=None):
        """``output, (h_n, c_n) = lstm(input, (h_0, c_0)=None, lengths=None)`` (see the class docstring)."""
        return super().forward(input, hx, lengths)

    def backward(self, grad_output, grad_state=None, *, input_grad=True):
        """``grad_input, (grad_h_0, grad_c_0) = lstm.backward(grad_output, (grad_h_n, grad_c_n))``."""
        return super().backward(grad_output, grad_state, input_grad=input_grad)


class GRU(RNNBase):
    r"""A multi-layer gated recurrent unit (GRU) RNN.

    For each element in the input sequence, each layer computes

    .. math::
        \begin{array}{ll}
            r_t = \sigma(W_{ir} x_t + b_{ir} + W_{hr} h_{(t-1)} + b_{hr}) \\
            z_t = \sigma(W_{iz} x_t + b_{iz} + W_{hz} h_{(t-1)} + b_{hz}) \\
            n_t = \tanh(W_{in} x_t + b_{in} + r_t \odot (W_{hn} h_{(t-1)}+ b_{hn})) \\
            h_t = (1 - z_t) \odot n_t + z_t \odot h_{(t-1)}
        \end{array}

    where :math:`r_t, z_t, n_t` are the reset, update and new gates (stacked in this order in
    ``weight_ih``/``weight_hh``). Note :math:`b_{hn}` sits *inside* :math:`r_t \odot (\dots)`, as in
    PyTorch and cuDNN (the original paper puts the reset gate before the product with :math:`W_{hn}`),
    so :math:`b_{in}` and :math:`b_{hn}` are not interchangeable.

    Args, inputs, outputs, backward and the ``lengths`` semantics: as in :class:`RNN`
    (``output, h_n = gru(input, h_0=None, lengths=None)``; ``grad_input, grad_h_0 = gru.backward(grad_output, grad_h_n)``).

    Attributes:
        weight_ih_l[k]: `(3*hidden_size, input_size)` for `k = 0`, otherwise `(3*hidden_size, num_directions * hidden_size)`
        weight_hh_l[k]: `(3*hidden_size, hidden_size)` (`W_hr|W_hz|W_hn`)
        bias_ih_l[k], bias_hh_l[k]: `(3*hidden_size)`

    Example::

        >>> import numpy as np, rnnlab
        >>> from rnnlab import nn
        >>> _ = rnnlab.manual_seed(0)
        >>> gru = nn.GRU(4, 3, num_layers=2)
        >>> out, h_n = gru(np.zeros((5, 4)))                 # unbatched: (L, H_in)
        >>> out.shape, h_n.shape
        ((5, 3), (2, 3))
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, dtype=None):
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         dtype=dtype)

    def forward(self, input, hx=None, lengths=None):
        """``output, h_n = gru(input, h_0=None, lengths=None)`` (see the class docstring)."""
        return super().forward(input, hx, lengths)

    def backward(self, grad_output, grad_h_n=None, *, input_grad=True):
        """``grad_input, grad_h_0 = gru.backward(grad_output, grad_h_n)``; ``None`` means zero."""
        return super().backward(grad_output, grad_h_n, input_grad=input_grad)
