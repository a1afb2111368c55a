"""The recurrent layers' surface: PyTorch's names, shapes, init, repr and error messages; caches,
gradient accumulation, dropout, lengths and the kernel hook."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import rnnlab
import rnnlab.fast
from rnnlab import nn
from rnnlab.nn import recurrent, recurrent_math

CONFIGS = [
    ("RNN", dict(num_layers=2, nonlinearity="relu", bidirectional=True)),
    ("RNN", dict(bias=False)),
    ("LSTM", dict(num_layers=2, bidirectional=True, proj_size=3)),
    ("LSTM", dict(num_layers=3, bias=False, batch_first=True)),
    ("GRU", dict(num_layers=2, bidirectional=True, dropout=0.2)),
]


def build(torch, name, kwargs):
    return getattr(nn, name)(5, 6, **kwargs), getattr(torch.nn, name)(5, 6, **kwargs)


@pytest.mark.parametrize("name,kwargs", CONFIGS)
def test_parameter_names_shapes_order_and_repr_match_torch(torch, name, kwargs):
    ours, theirs = build(torch, name, kwargs)
    assert [(n, tuple(p.shape)) for n, p in ours.named_parameters()] == \
        [(n, tuple(p.shape)) for n, p in theirs.named_parameters()]
    assert repr(ours) == repr(theirs)
    for attribute in ("input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout", "bidirectional",
                      "proj_size", "mode"):
        assert getattr(ours, attribute) == getattr(theirs, attribute), attribute


@pytest.mark.parametrize("name,kwargs", CONFIGS)
def test_state_dict_round_trip_with_torch(torch, name, kwargs):
    ours, theirs = build(torch, name, kwargs)
    ours.load_state_dict(theirs.state_dict())
    back = getattr(torch.nn, name)(5, 6, **kwargs)
    back.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    for key, value in theirs.state_dict().items():
        assert torch.equal(back.state_dict()[key], value), key


def test_cells_match_torch_names_and_repr(torch):
    pairs = [(nn.RNNCell(3, 4, False, "relu"), torch.nn.RNNCell(3, 4, False, "relu")),
             (nn.LSTMCell(3, 4), torch.nn.LSTMCell(3, 4)), (nn.GRUCell(3, 4), torch.nn.GRUCell(3, 4))]
    for ours, theirs in pairs:
        assert [(n, tuple(p.shape)) for n, p in ours.named_parameters()] == \
            [(n, tuple(p.shape)) for n, p in theirs.named_parameters()]
        assert repr(ours) == repr(theirs)


def test_rnn_takes_torch_positional_arguments(torch):
    args = (3, 4, 2, "relu", False, True, 0.0, True)
    ours, theirs = nn.RNN(*args), torch.nn.RNN(*args)
    assert repr(ours) == repr(theirs) and ours.nonlinearity == "relu" and ours.mode == "RNN_RELU"


def test_init_follows_torch_distribution_and_seed():
    hidden = 256
    rnnlab.manual_seed(0)
    lstm = nn.LSTM(64, hidden, dtype=np.float64)
    values = np.concatenate([p.data.ravel() for p in lstm.parameters()])
    bound = 1 / np.sqrt(hidden)
    assert np.abs(values).max() <= bound
    assert abs(values.mean()) < 0.01 * bound
    assert values.var() == pytest.approx(bound ** 2 / 3, rel=0.02)  # U(-b, b): variance b^2/3 = 1/(3H)
    assert lstm.weight_ih_l0.dtype == np.float64 and nn.LSTM(2, 3).weight_ih_l0.dtype == np.float32
    rnnlab.manual_seed(0)
    again = nn.LSTM(64, hidden, dtype=np.float64)
    assert np.array_equal(again.weight_hh_l0.data, lstm.weight_hh_l0.data)
    rnnlab.manual_seed(1)
    assert not np.array_equal(nn.LSTM(64, hidden, dtype=np.float64).weight_hh_l0.data, lstm.weight_hh_l0.data)


def test_torch_basics_example():
    rnnlab.manual_seed(0)
    rnn = nn.RNN(4, 2, batch_first=True)
    x = np.random.default_rng(0).standard_normal((3, 5, 4)).astype(np.float32)
    out, h_n = rnn(x)
    assert out.shape == (3, 5, 2) and h_n.shape == (1, 3, 2) and out.dtype == np.float32
    np.testing.assert_array_equal(out[:, -1], h_n[0])
    grad_x, grad_h0 = rnn.backward(np.ones_like(out), np.ones_like(h_n))
    assert grad_x.shape == (3, 5, 4) and grad_h0.shape == (1, 3, 2)


# --- constructor validation -----------------------------------------------------------------------
@pytest.mark.parametrize("name,args,kwargs", [
    ("RNN", (3, 4), dict(dropout=1.5)),
    ("RNN", (3, 4), dict(dropout=True)),
    ("LSTM", (3, 4), dict(proj_size=4)),
    ("LSTM", (3, 4), dict(proj_size=-1)),
    ("GRU", (3, 0), {}),
    ("GRU", (0, 3), {}),
    ("GRU", (3, 4), dict(num_layers=0)),
    ("RNN", (3, 4), dict(nonlinearity="sigmoid")),
])
def test_constructor_errors_match_torch(torch, name, args, kwargs):
    with pytest.raises(ValueError) as theirs:
        getattr(torch.nn, name)(*args, **kwargs)
    with pytest.raises(ValueError) as ours:
        getattr(nn, name)(*args, **kwargs)
    assert str(ours.value) == str(theirs.value)


def test_constructor_type_errors_and_proj_only_for_lstm():
    with pytest.raises(TypeError, match="hidden_size should be of type int, got: float"):
        nn.GRU(3, 4.0)
    with pytest.raises(TypeError, match="bias should be of type bool"):
        nn.LSTM(3, 4, bias=1)
    with pytest.raises(ValueError, match="proj_size argument is only supported for LSTM"):
        nn.RNNBase("GRU", 3, 4, proj_size=2)
    with pytest.raises(ValueError, match="Unknown nonlinearity"):
        nn.RNNCell(3, 4, nonlinearity="gelu")


def test_dropout_with_one_layer_warns():
    with pytest.warns(UserWarning, match="non-zero dropout expects num_layers greater than 1"):
        nn.LSTM(3, 4, dropout=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nn.LSTM(3, 4, num_layers=2, dropout=0.5)


# --- forward checks ------------------------------------------------------------------------------
def test_input_and_state_shape_errors():
    lstm = nn.LSTM(10, 20, num_layers=2, bidirectional=True)
    x = np.zeros((5, 3, 10), dtype=np.float32)
    with pytest.raises(ValueError, match=r"^input.size\(-1\) must be equal to input_size. Expected 10, got 9$"):
        lstm(np.zeros((5, 3, 9)))
    with pytest.raises(ValueError, match=r"^Expected hidden\[0\] size \(4, 3, 20\), got \[4, 3, 19\]$"):
        lstm(x, (np.zeros((4, 3, 19)), np.zeros((4, 3, 20))))
    with pytest.raises(ValueError, match=r"^Expected hidden\[1\] size \(4, 3, 20\), got \[4, 2, 20\]$"):
        lstm(x, (np.zeros((4, 3, 20)), np.zeros((4, 2, 20))))
    with pytest.raises(ValueError, match=r"^LSTM: Expected input to be 2D or 3D, got 4D instead$"):
        lstm(np.zeros((1, 5, 3, 10)))
    with pytest.raises(ValueError, match="hx and cx should also be 3-D but got \\(2-D, 3-D\\)"):
        lstm(x, (np.zeros((4, 20)), np.zeros((4, 3, 20))))
    rnn = nn.RNN(10, 20, num_layers=2, bidirectional=True)
    with pytest.raises(ValueError, match=r"^Expected hidden size \(4, 3, 20\), got \[4, 3, 19\]$"):
        rnn(x, np.zeros((4, 3, 19)))
    with pytest.raises(ValueError, match=r"^RNN: Expected input to be 2D or 3D, got 4D tensor instead$"):
        rnn(np.zeros((1, 5, 3, 10)))
    with pytest.raises(ValueError, match="For unbatched 2-D input, hx should also be 2-D but got 3-D tensor"):
        rnn(np.zeros((5, 10)), np.zeros((4, 1, 20)))
    with pytest.raises(ValueError, match="For batched 3-D input, hx should also be 3-D but got 2-D tensor"):
        rnn(x, np.zeros((4, 20)))
    with pytest.raises(TypeError, match="input must hold numbers"):
        rnn(np.full((5, 3, 10), "a"))
    cell = nn.GRUCell(10, 20)
    with pytest.raises(ValueError, match="GRUCell: Expected input to be 1D or 2D, got 3D instead"):
        cell(x)
    with pytest.raises(ValueError, match="input has inconsistent input_size: got 9 expected 10"):
        cell(np.zeros((3, 9)))


def test_input_dtype_is_cast_to_the_layer_dtype():
    rnn = nn.RNN(3, 4, dtype=np.float64)
    out, h_n = rnn(np.ones((2, 1, 3), dtype=np.float32))
    assert out.dtype == np.float64 and h_n.dtype == np.float64
    out_int, _ = rnn(np.ones((2, 1, 3), dtype=np.int64))
    np.testing.assert_array_equal(out, out_int)


@pytest.mark.parametrize("lengths,match", [([0, 2, 3], "every length must lie in \\[1, 4\\]"),
                                           ([5, 2, 3], "every length must lie in \\[1, 4\\]"),
                                           ([2, 3], "one length per sequence: expected 3, got 2"),
                                           ([1.5, 2, 3], "list or array of ints")])
def test_bad_lengths(lengths, match):
    gru = nn.GRU(3, 4)
    with pytest.raises(ValueError, match=match):
        gru(np.zeros((4, 3, 3)), lengths=lengths)


def test_lengths_need_batched_input():
    with pytest.raises(ValueError, match="lengths needs batched"):
        nn.GRU(3, 4)(np.zeros((4, 3)), lengths=[4])


def test_lengths_zero_padding_outputs_and_input_grads():
    rnnlab.manual_seed(0)
    lstm = nn.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True, dtype=np.float64)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 5, 3))
    lengths = [5, 2, 4]
    out, (h_n, c_n) = lstm(x, lengths=lengths)
    for n, length in enumerate(lengths):
        assert np.all(out[n, length:] == 0) and np.all(out[n, :length] != 0)
    grad_x, _ = lstm.backward(rng.standard_normal(out.shape), (rng.standard_normal(h_n.shape), None))
    for n, length in enumerate(lengths):
        assert np.all(grad_x[n, length:] == 0) and np.all(grad_x[n, :length] != 0)
    # lengths all equal to L give exactly the unmasked result; padding values do not matter
    full, _ = lstm(x, lengths=[5, 5, 5])
    np.testing.assert_array_equal(full, lstm(x)[0])
    x_changed = x.copy()
    x_changed[1, 2:] = 100.0
    np.testing.assert_array_equal(lstm(x_changed, lengths=lengths)[0], out)


# --- backward: caches, accumulation, None gradients ------------------------------------------------
def test_backward_needs_a_forward_with_grad_enabled():
    gru = nn.GRU(3, 4)
    with pytest.raises(RuntimeError, match="needs a forward pass first"):
        gru.backward(np.zeros((2, 1, 4)))
    with rnnlab.no_grad():
        gru(np.zeros((2, 1, 3)))
    with pytest.raises(RuntimeError, match="no_grad"):
        gru.backward(np.zeros((2, 1, 4)))
    cell = nn.LSTMCell(3, 4)
    with rnnlab.no_grad():
        cell(np.zeros((1, 3)))
    with pytest.raises(RuntimeError, match="more times than forward"):
        cell.backward(np.zeros((1, 4)))


def test_gradients_accumulate_over_backward_calls():
    rnnlab.manual_seed(0)
    lstm = nn.LSTM(3, 4, num_layers=2, dtype=np.float64)
    x = np.random.default_rng(0).standard_normal((5, 2, 3))
    out, _ = lstm(x)
    grad = np.random.default_rng(1).standard_normal(out.shape)
    lstm.backward(grad, None)
    once = {name: p.grad.copy() for name, p in lstm.named_parameters()}
    lstm(x)
    lstm.backward(grad, (None, None))
    for name, p in lstm.named_parameters():
        np.testing.assert_allclose(p.grad, 2 * once[name], rtol=1e-12)
    lstm.zero_grad()
    assert all(p.grad is None for p in lstm.parameters())


def test_backward_checks_gradient_shapes_and_returns_zero_state_grads():
    gru = nn.GRU(3, 4, batch_first=True)
    out, h_n = gru(np.zeros((2, 5, 3)))
    with pytest.raises(ValueError, match=r"grad_output must have the shape of the forward's result \(2, 5, 4\)"):
        gru.backward(np.zeros((5, 2, 4)))
    grad_x, grad_h0 = gru.backward(None, np.ones_like(h_n))
    assert grad_x.shape == (2, 5, 3) and grad_h0.shape == (1, 2, 4) and np.any(grad_h0 != 0)
    grad_x, grad_h0 = gru.backward(None, None)
    assert not np.any(grad_x) and not np.any(grad_h0)


def test_unbatched_forward_and_backward_shapes():
    lstm = nn.LSTM(3, 4, num_layers=2, bidirectional=True, proj_size=2)
    out, (h_n, c_n) = lstm(np.ones((5, 3)), (np.zeros((4, 2)), np.zeros((4, 4))))
    assert out.shape == (5, 4) and h_n.shape == (4, 2) and c_n.shape == (4, 4)
    grad_x, (grad_h0, grad_c0) = lstm.backward(np.ones_like(out), (None, np.ones_like(c_n)))
    assert grad_x.shape == (5, 3) and grad_h0.shape == (4, 2) and grad_c0.shape == (4, 4)
    cell = nn.LSTMCell(3, 4)
    h, c = cell(np.ones(3))
    assert h.shape == (4,) and c.shape == (4,)
    grad_x, (grad_h, grad_c) = cell.backward(np.ones(4))
    assert grad_x.shape == (3,) and grad_h.shape == (4,) and grad_c.shape == (4,)


# --- dropout -------------------------------------------------------------------------------------
def test_eval_mode_ignores_dropout():
    rnnlab.manual_seed(0)
    with_dropout = nn.GRU(3, 4, num_layers=3, dropout=0.5, dtype=np.float64)
    without = nn.GRU(3, 4, num_layers=3, dtype=np.float64)
    without.load_state_dict(with_dropout.state_dict())
    x = np.random.default_rng(0).standard_normal((5, 2, 3))
    with_dropout.eval()
    np.testing.assert_array_equal(with_dropout(x)[0], without(x)[0])
    with_dropout.train()
    assert not np.allclose(with_dropout(x)[0], without(x)[0])
    rnnlab.manual_seed(3)
    first = with_dropout(x)[0]
    rnnlab.manual_seed(3)
    np.testing.assert_array_equal(with_dropout(x)[0], first)  # the seed fixes the masks


def test_dropout_sits_between_layers_only():
    """p=1 zeroes the first layer's output: the second layer then sees zeros, the first layer's h_n is untouched."""
    rnnlab.manual_seed(0)
    lstm = nn.LSTM(3, 4, num_layers=2, dropout=1.0, dtype=np.float64)
    top = nn.LSTM(4, 4, dtype=np.float64)
    top.load_state_dict({name.replace("l1", "l0"): value for name, value in lstm.state_dict().items() if "l1" in name})
    x = np.random.default_rng(0).standard_normal((5, 2, 3))
    out, (h_n, c_n) = lstm(x)
    out_eval, (h_n_eval, _) = lstm.eval()(x)
    expected, _ = top(np.zeros((5, 2, 4)))
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    np.testing.assert_array_equal(h_n[0], h_n_eval[0])
    # no dropout on the last layer's output: a one-layer LSTM with dropout equals one without
    with pytest.warns(UserWarning):
        single = nn.LSTM(3, 4, dropout=0.9, dtype=np.float64)
    reference = nn.LSTM(3, 4, dtype=np.float64)
    reference.load_state_dict(single.state_dict())
    np.testing.assert_array_equal(single(x)[0], reference(x)[0])


def test_dropout_mask_statistics():
    rnnlab.manual_seed(0)
    rnn = nn.RNN(3, 200, num_layers=2, dropout=0.3)
    out, _ = rnn(np.ones((50, 4, 3), dtype=np.float32))
    mask = rnn._cache.dropout_masks[1]  # the mask on layer 1's input
    kept = mask != 0
    assert kept.mean() == pytest.approx(0.7, abs=0.01)
    np.testing.assert_allclose(mask[kept], 1 / 0.7, rtol=1e-6)  # inverted dropout


# --- choosing the cell math ---------------------------------------------------------------------
def test_the_forwards_cell_math_runs_its_backward(monkeypatch):
    """A layer calls its cell's functions through cell_math, and the backward is the forward's module's
    even when the switch changes in between."""
    calls = []
    for name in ("gru_forward", "gru_backward"):
        function = getattr(recurrent_math, name)

        def wrapped(*args, _function=function, _name=name, **kwargs):
            calls.append(_name)
            return _function(*args, **kwargs)
        monkeypatch.setattr(recurrent_math, name, wrapped)
    gru = nn.GRU(3, 4)
    with rnnlab.fast.use(False):
        assert recurrent.cell_math(np.dtype(np.float32)) is recurrent_math
        out, _ = gru(np.ones((2, 1, 3)))
    with rnnlab.fast.use(True):
        gru.backward(np.ones_like(out))
    assert calls == ["gru_forward", "gru_backward"]
    assert recurrent.cell_math(np.dtype(np.float64)) is recurrent_math  # float64: always the reference


def test_a_forward_frees_the_previous_cache_before_making_its_own(monkeypatch):
    """Peak memory: two forwards' caches never coexist (the old one is dropped when a forward starts,
    before the cell math allocates the new one)."""
    seen = []
    lstm = nn.LSTM(3, 4, dtype=np.float64)  # float64: the reference math, patched below
    original = recurrent_math.lstm_forward

    def spy(*args, **kwargs):
        seen.append(lstm._cache)
        return original(*args, **kwargs)

    x = np.ones((5, 2, 3))
    lstm(x)
    monkeypatch.setattr(recurrent_math, "lstm_forward", spy)
    lstm(x)
    assert seen == [None] and lstm._cache is not None
