"""SequenceClassifier: gradients (finite differences), PyTorch parity, lengths, pooling, init, config, and
the backward that by default skips the input's gradient."""
import functools

import numpy as np
import pytest

import rnnlab
from rnnlab.models.classifier import SequenceClassifier

LENGTHS = np.array([6, 2, 4])


def rel_error(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(a)), np.max(np.abs(b)), 1e-300))


def tiny_model(cell="lstm", bidirectional=False, pool="last", num_layers=2, input_grad=False, **kwargs):
    """``input_grad=True``: the model's backward returns the input's gradient (for gradcheck and parity)."""
    rnnlab.manual_seed(3)
    model = SequenceClassifier(3, 4, hidden_size=5, num_layers=num_layers, cell=cell, bidirectional=bidirectional,
                               pool=pool, dtype=np.float64, **kwargs)
    if input_grad:
        model.backward = functools.partial(model.backward, input_grad=True)
    return model


def inputs(batch=3, steps=6, features=3, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, steps, features))


# --- gradients: finite differences in float64 ---------------------------------------------------
@pytest.mark.parametrize("pool", ["last", "mean"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_gradcheck_with_lengths(cell, bidirectional, pool):
    model = tiny_model(cell, bidirectional, pool, input_grad=True)
    report = rnnlab.gradcheck(model, inputs(), forward_kwargs={"lengths": LENGTHS}, eps=1e-4)
    report.assert_passed(1e-4)
    assert "input[0]" in report.errors and "classifier.weight" in report.errors


@pytest.mark.parametrize("pool", ["last", "mean"])
def test_gradcheck_without_lengths_relu_identity(pool):
    model = tiny_model("rnn_relu", True, pool, input_grad=True, init="identity")
    # a small step: a larger one can straddle ReLU's kink, where finite differences mean nothing
    rnnlab.gradcheck(model, inputs(), eps=1e-6).assert_passed(1e-4)


def test_gradcheck_catches_a_wrong_backward():
    """The check above can fail: drop the reverse direction's share of the pooled gradient."""
    model = tiny_model("gru", bidirectional=True, pool="last", input_grad=True)
    original = model.classifier.backward

    def forget_reverse(grad_logits):
        grad_features = original(grad_logits)
        grad_features[:, model.hidden_size:] = 0
        return grad_features

    model.classifier.backward = forget_reverse
    report = rnnlab.gradcheck(model, inputs(), forward_kwargs={"lengths": LENGTHS}, eps=1e-4)
    assert not report.passed(1e-4)


# --- parity with the same network in PyTorch -----------------------------------------------------
def torch_twin(torch, model):
    cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN, "rnn_relu": torch.nn.RNN}[model.cell]
    extra = {"nonlinearity": "relu"} if model.cell == "rnn_relu" else {}
    rnn = cls(model.input_size, model.hidden_size, model.num_layers, batch_first=True,
              bidirectional=model.bidirectional, **extra).double()
    linear = torch.nn.Linear(model.num_directions * model.hidden_size, model.num_classes).double()
    state = {name: torch.from_numpy(value) for name, value in model.state_dict().items()}
    rnn.load_state_dict({k[len("rnn."):]: v for k, v in state.items() if k.startswith("rnn.")})
    linear.load_state_dict({k[len("classifier."):]: v for k, v in state.items() if k.startswith("classifier.")})
    return rnn, linear


def torch_logits(torch, model, rnn, linear, x, lengths):
    steps = x.shape[1]
    if lengths is None:
        out, state = rnn(x)
        lengths_t = torch.full((x.shape[0],), steps, dtype=torch.float64)
    else:
        packed = torch.nn.utils.rnn.pack_padded_sequence(x, torch.from_numpy(lengths), batch_first=True,
                                                         enforce_sorted=False)
        packed_out, state = rnn(packed)
        out, _ = torch.nn.utils.rnn.pad_packed_sequence(packed_out, batch_first=True, total_length=steps)
        lengths_t = torch.from_numpy(lengths).double()
    h_n = state[0] if isinstance(state, tuple) else state
    if model.pool == "last":
        features = torch.cat(list(h_n[-model.num_directions:]), dim=-1)
    else:
        features = out.sum(dim=1) / lengths_t[:, None]
    return linear(features)


@pytest.mark.parametrize("cell,bidirectional,pool,with_lengths", [
    ("lstm", False, "last", False),
    ("lstm", True, "last", True),
    ("lstm", True, "mean", True),
    ("gru", True, "mean", False),
    ("rnn", False, "mean", True),
    ("rnn_relu", True, "last", True),
])
def test_logits_and_gradients_match_pytorch(torch, cell, bidirectional, pool, with_lengths):
    model = tiny_model(cell, bidirectional, pool)
    x = inputs(batch=3, steps=6)
    lengths = LENGTHS if with_lengths else None
    logits = model(x, lengths=lengths)
    grad_logits = np.random.default_rng(1).normal(size=logits.shape)
    grad_x = model.backward(grad_logits, input_grad=True)

    rnn, linear = torch_twin(torch, model)
    x_t = torch.from_numpy(x.copy()).requires_grad_(True)
    theirs = torch_logits(torch, model, rnn, linear, x_t, lengths)
    theirs.backward(torch.from_numpy(grad_logits))

    assert rel_error(logits, theirs.detach().numpy()) < 1e-10
    assert rel_error(grad_x, x_t.grad.numpy()) < 1e-9
    torch_grads = {f"rnn.{name}": p.grad for name, p in rnn.named_parameters()}
    torch_grads.update({f"classifier.{name}": p.grad for name, p in linear.named_parameters()})
    assert set(torch_grads) == {name for name, _ in model.named_parameters()}
    for name, param in model.named_parameters():
        assert rel_error(param.grad, torch_grads[name].numpy()) < 1e-9, name


# --- lengths, pooling, unbatched input -----------------------------------------------------------
@pytest.mark.parametrize("pool", ["last", "mean"])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_padding_does_not_change_a_sequences_logits(cell, pool):
    model = tiny_model(cell, bidirectional=True, pool=pool)
    x = inputs(batch=3, steps=6)
    padded = x.copy()
    padded[1, 2:] = 1e3  # garbage past sequence 1's end
    logits = model(padded, lengths=LENGTHS)
    alone = model(x[1:2, :2])  # sequence 1 by itself, no padding at all
    np.testing.assert_allclose(logits[1], alone[0], rtol=1e-12, atol=1e-12)


def test_last_pool_without_lengths_is_the_last_output():
    model = tiny_model("lstm", bidirectional=False, num_layers=1)
    x = inputs()
    out, _ = model.rnn(x)
    np.testing.assert_allclose(model(x), model.classifier(out[:, -1]), rtol=1e-12)


def test_mean_pool_without_lengths_is_the_mean_output():
    model = tiny_model("gru", bidirectional=True, pool="mean")
    x = inputs()
    out, _ = model.rnn(x)
    np.testing.assert_allclose(model(x), model.classifier(out.mean(axis=1)), rtol=1e-12)


def test_unbatched_input_gives_one_score_vector():
    model = tiny_model("rnn")
    x = inputs()
    logits = model(x[0])
    assert logits.shape == (4,)
    np.testing.assert_allclose(logits, model(x)[0], rtol=1e-12)
    model(x[0])
    assert model.backward(np.ones(4), input_grad=True).shape == (6, 3)
    model(x[0])
    assert model.backward(np.ones(4)) is None


@pytest.mark.parametrize("cell,bidirectional,pool,with_lengths,dropout", [
    ("lstm", False, "last", False, 0.0),
    ("lstm", True, "mean", True, 0.3),
    ("gru", True, "last", True, 0.0),
    ("rnn_relu", False, "mean", False, 0.5),
])
def test_backward_skips_the_inputs_gradient_and_changes_no_other(cell, bidirectional, pool, with_lengths, dropout):
    """The default backward returns None (the images are data) and fills every parameter's .grad with the
    same numbers, bit for bit, as ``input_grad=True``, which PyTorch's input without requires_grad also gives."""
    model = tiny_model(cell, bidirectional, pool, dropout=dropout)
    x, lengths = inputs(), LENGTHS if with_lengths else None
    results = []
    for input_grad in (True, False):
        model.zero_grad()
        rnnlab.manual_seed(7)  # the same dropout masks
        logits = model(x, lengths=lengths)
        returned = model.backward(np.random.default_rng(1).normal(size=logits.shape), input_grad=input_grad)
        results.append((returned, {name: p.grad.copy() for name, p in model.named_parameters()}))
    (grad_x, grads), (skipped, skipped_grads) = results
    assert grad_x.shape == x.shape and skipped is None
    for name, grad in grads.items():
        assert np.array_equal(grad, skipped_grads[name]), name
    model.zero_grad()
    rnnlab.manual_seed(7)
    model(x, lengths=lengths)
    assert model.backward(np.random.default_rng(1).normal(size=logits.shape)) is None  # the default
    for name, param in model.named_parameters():
        assert np.array_equal(param.grad, skipped_grads[name]), name


def test_predict_is_argmax_and_keeps_no_cache():
    model = tiny_model("gru")
    x = inputs(batch=7)
    expected = model(x).argmax(axis=1)
    model.backward(np.zeros((7, 4)))
    np.testing.assert_array_equal(model.predict(x, batch_size=3), expected)
    assert model.training
    with pytest.raises(RuntimeError, match="no forward"):
        model.backward(np.zeros((7, 4)))


# --- initialisation, configuration, errors -------------------------------------------------------
def test_identity_init_is_irnn():
    model = tiny_model("rnn_relu", bidirectional=True, init="identity")
    for name, param in model.rnn.named_parameters():
        if name.startswith("weight_hh"):
            np.testing.assert_array_equal(param.data, np.eye(5))
        elif name.startswith("bias"):
            assert not param.data.any(), name
        else:
            assert param.data.std() > 0.05, name  # input weights keep the default draw
    with pytest.raises(ValueError, match="identity"):
        SequenceClassifier(3, 4, cell="lstm", init="identity")


def test_config_round_trip_rebuilds_the_same_network():
    model = tiny_model("gru", bidirectional=True, pool="mean", dropout=0.25)
    copy = SequenceClassifier.from_config(model.config())
    assert copy.config() == model.config()
    copy.load_state_dict(model.state_dict())
    model.eval(), copy.eval()
    np.testing.assert_array_equal(copy(inputs()), model(inputs()))
    assert "pool='mean'" in repr(model)


@pytest.mark.parametrize("kwargs,message", [
    ({"cell": "transformer"}, "cell must be one of"),
    ({"pool": "max"}, "pool must be one of"),
    ({"init": "orthogonal"}, "init must be one of"),
    ({"hidden_size": 0}, "hidden_size must be positive"),
])
def test_bad_settings_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SequenceClassifier(3, 4, **kwargs)


def test_bad_inputs_raise_pytorch_like_errors():
    model = tiny_model("rnn")
    with pytest.raises(ValueError, match="input.size\\(-1\\) must be equal to input_size. Expected 3, got 2"):
        model(np.zeros((2, 6, 2)))
    with pytest.raises(ValueError, match="expected input of shape"):
        model(np.zeros((1, 2, 6, 3)))
    with pytest.raises(ValueError, match="lengths must be in \\[1, 6\\]"):
        model(inputs(), lengths=np.array([6, 0, 3]))
    with pytest.raises(ValueError, match="lengths must be 3 integers"):
        model(inputs(), lengths=np.array([6, 3]))
