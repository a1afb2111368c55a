"""Module and Parameter: registration order and names, state_dict round trips (with torch tensors),
load errors, repr, zero_grad, accumulation, train/eval propagation, dtype casts."""
from __future__ import annotations

import numpy as np
import pytest

import rnnlab
from rnnlab.nn.layers import Dropout, Embedding, Linear
from rnnlab.nn.module import Module, Parameter


class Tiny(Module):
    def __init__(self):
        super().__init__()
        self.encoder = Embedding(5, 3)
        self.drop = Dropout(0.2)
        self.decoder = Linear(3, 5)
        self.scale = Parameter(np.ones(2, dtype=np.float32))


def test_names_order_and_count():
    model = Tiny()
    assert [n for n, _ in model.named_parameters()] == ["scale", "encoder.weight", "decoder.weight", "decoder.bias"]
    assert model.num_parameters() == 2 + 15 + 15 + 5
    assert [n for n, _ in model.named_modules()] == ["", "encoder", "drop", "decoder"]


def test_state_dict_round_trip_copies():
    rnnlab.manual_seed(0)
    source = Tiny()
    state = source.state_dict()
    state["decoder.bias"][...] = 7  # a copy: the model is untouched
    assert not (source.decoder.bias.data == 7).any()
    rnnlab.manual_seed(1)
    target = Tiny()
    assert target.load_state_dict(source.state_dict()) == ([], [])
    for (name, a), (_, b) in zip(source.named_parameters(), target.named_parameters()):
        np.testing.assert_array_equal(a.data, b.data, err_msg=name)


def test_load_state_dict_from_torch_tensors_keeps_own_dtype(torch):
    reference = torch.nn.Linear(3, 4).double()
    layer = Linear(3, 4)  # float32
    layer.load_state_dict(reference.state_dict())
    assert layer.weight.dtype == np.float32
    np.testing.assert_allclose(layer.weight.data, reference.weight.detach().numpy(), rtol=1e-6)
    # and back: torch accepts what rnnlab exports
    back = torch.nn.Linear(3, 4)
    back.load_state_dict({k: torch.from_numpy(v) for k, v in layer.state_dict().items()})
    np.testing.assert_array_equal(back.bias.detach().numpy(), layer.bias.data)


def test_load_state_dict_errors():
    layer = Linear(3, 4)
    state = layer.state_dict()
    with pytest.raises(KeyError, match="missing key.*'bias'"):
        layer.load_state_dict({"weight": state["weight"]})
    with pytest.raises(KeyError, match="unexpected key.*'extra'"):
        layer.load_state_dict({**state, "extra": np.zeros(1)})
    assert layer.load_state_dict({"weight": state["weight"], "extra": 1}, strict=False) == (["bias"], ["extra"])
    with pytest.raises(ValueError, match=r"size mismatch for weight.*\(4, 2\).*\(4, 3\)"):
        layer.load_state_dict({"weight": np.zeros((4, 2)), "bias": state["bias"]})


def test_repr_nests_children():
    text = repr(Tiny())
    assert text.splitlines()[0] == "Tiny("
    assert "  (encoder): Embedding(5, 3)" in text and "  (decoder): Linear(in_features=3, out_features=5, bias=True)" in text
    assert text.endswith(")")


def test_grads_accumulate_and_zero_grad():
    layer = Linear(2, 2, dtype=np.float64)
    x = np.ones((3, 2))
    for _ in range(2):
        layer(x)
        layer.backward(np.ones((3, 2)))
    np.testing.assert_allclose(layer.bias.grad, [6.0, 6.0])
    layer.zero_grad(set_to_none=False)
    assert layer.bias.grad is not None and not layer.bias.grad.any()
    layer.zero_grad()
    assert layer.bias.grad is None and layer.weight.grad is None
    frozen = Parameter(np.ones(2), requires_grad=False)
    frozen.accumulate_grad(np.ones(2))
    assert frozen.grad is None


def test_train_eval_propagates():
    model = Tiny()
    assert all(m.training for m in model.modules())
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    model.train()
    assert model.drop.training


def test_to_float64_casts_parameters_and_grads():
    layer = Linear(2, 3)
    layer(np.ones((1, 2), np.float32))
    layer.backward(np.ones((1, 3), np.float32))
    assert layer.to(np.float64) is layer
    assert layer.weight.dtype == np.float64 and layer.weight.grad.dtype == np.float64
    assert layer(np.ones((1, 2))).dtype == np.float64
    assert layer.float().bias.dtype == np.float32
    with pytest.raises(TypeError, match="float32 or float64"):
        layer.to(np.int32)


def test_assigning_before_init_and_deleting():
    class Broken(Module):
        def __init__(self):
            self.weight = Parameter(np.ones(1))

    with pytest.raises(AttributeError, match="Module.__init__"):
        Broken()
    model = Tiny()
    del model.scale
    assert "scale" not in dict(model.named_parameters())
    model.decoder = Linear(3, 2)
    assert dict(model.named_parameters())["decoder.weight"].shape == (2, 3)


def test_accumulate_grad_keeps_an_owned_array_and_copies_otherwise():
    from rnnlab.nn.module import Parameter
    p = Parameter(np.zeros((2, 3), dtype=np.float32))
    fresh = np.ones((2, 3), dtype=np.float32)
    p.accumulate_grad(fresh, owned=True)
    assert p.grad is fresh                                   # kept, no copy
    p.accumulate_grad(fresh, owned=True)                     # second time: added in place
    np.testing.assert_array_equal(p.grad, 2.0)
    q = Parameter(np.zeros((2, 3), dtype=np.float32))
    shared = np.ones((2, 3), dtype=np.float32)
    q.accumulate_grad(shared)
    assert q.grad is not shared
    r = Parameter(np.zeros((2, 3), dtype=np.float32))
    r.accumulate_grad(np.ones((2, 3), dtype=np.float64), owned=True)   # wrong dtype: converted
    assert r.grad.dtype == np.float32
    s = Parameter(np.zeros((3, 2), dtype=np.float32))
    transposed = np.ones((2, 3), dtype=np.float32).T
    s.accumulate_grad(transposed, owned=True)                # not C-contiguous: copied
    assert not np.shares_memory(s.grad, transposed)


def test_lstm_bias_gradients_are_equal_but_separate_arrays():
    import rnnlab
    from rnnlab import nn
    rnnlab.manual_seed(0)
    lstm = nn.LSTM(3, 4)
    out, _ = lstm(np.ones((5, 2, 3), dtype=np.float32))
    lstm.backward(np.ones_like(out))
    np.testing.assert_array_equal(lstm.bias_ih_l0.grad, lstm.bias_hh_l0.grad)
    assert not np.shares_memory(lstm.bias_ih_l0.grad, lstm.bias_hh_l0.grad)
    assert not np.shares_memory(lstm.weight_hh_l0.grad, lstm.weight_ih_l0.grad)
