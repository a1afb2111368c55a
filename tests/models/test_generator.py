"""SequenceGenerator: gradcheck of the whole model (float64) for every conditioning, parity with the same model
in PyTorch (BCE-with-logits loss and every gradient by name), generation (teacher-forced logits = the
generated steps' logits, seeded draws repeat), config round trip, errors."""
from __future__ import annotations

import numpy as np
import pytest

import rnnlab
from rnnlab.models import SequenceGenerator
from rnnlab.nn import BCEWithLogitsLoss

FEATURES, CLASSES = 4, 3
LABELS = np.array([0, 2, 1])


def tiny(cell="lstm", condition="both", num_layers=1, dropout=0.0, hidden=5):
    rnnlab.manual_seed(4)
    return SequenceGenerator(FEATURES, CLASSES, hidden_size=hidden, num_layers=num_layers, cell=cell,
                             condition=condition, class_embedding_size=2, dropout=dropout, dtype=np.float64)


def images(seed=0, steps=5):
    return np.random.default_rng(seed).random((3, steps, FEATURES))


CONFIGS = [("lstm", "both", 1), ("gru", "state", 2), ("rnn", "input", 1), ("rnn_relu", "both", 1),
           ("lstm", "state", 2), ("gru", "input", 1)]


@pytest.mark.parametrize("cell,condition,num_layers", CONFIGS)
def test_gradcheck_whole_model(cell, condition, num_layers):
    model = tiny(cell, condition, num_layers)
    report = rnnlab.gradcheck(model, images(), LABELS, check_inputs=False, eps=1e-5)
    report.assert_passed(1e-5)
    assert set(report.errors) == {name for name, _ in model.named_parameters()}
    assert ("class_state.weight" in report.errors) == (condition != "input")
    assert ("class_embedding.weight" in report.errors) == (condition != "state")


def test_gradcheck_with_dropout_and_a_wrong_backward():
    model = tiny("lstm", "both", num_layers=2, dropout=0.3)
    rnnlab.gradcheck(model, images(1), LABELS, check_inputs=False, eps=1e-5).assert_passed(1e-5)
    model = tiny("gru", "state")
    original = model.class_state.backward
    model.class_state.backward = lambda grad: original(2 * grad)       # a wrong factor
    assert not rnnlab.gradcheck(model, images(1), LABELS, check_inputs=False, eps=1e-5).passed(1e-5)


def torch_logits(torch, model, x, labels):
    nn = torch.nn
    classes = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN, "rnn_relu": nn.RNN}
    extra = {"nonlinearity": "relu"} if model.cell == "rnn_relu" else {}
    H, L = model.hidden_size, model.num_layers
    twin = nn.Module()
    if model.condition != "input":
        twin.class_state = nn.Embedding(CLASSES, L * H)
    if model.condition != "state":
        twin.class_embedding = nn.Embedding(CLASSES, 2)
    inputs = FEATURES + (2 if model.condition != "state" else 0)
    twin.rnn = classes[model.cell](inputs, H, L, **extra)
    twin.output = nn.Linear(H, FEATURES)
    twin = twin.double()
    twin.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})
    y = torch.from_numpy(labels)
    rows = torch.from_numpy(x).transpose(0, 1)                                  # (L, N, F)
    previous = torch.cat([torch.zeros_like(rows[:1]), rows[:-1]])
    if model.condition != "state":
        previous = torch.cat([previous, twin.class_embedding(y)[None].expand(rows.shape[0], -1, -1)], dim=-1)
    state = None
    if model.condition != "input":
        h0 = torch.tanh(twin.class_state(y)).reshape(len(labels), L, H).transpose(0, 1).contiguous()
        state = (h0, torch.zeros_like(h0)) if model.cell == "lstm" else h0
    out, _ = twin.rnn(previous, state)
    return twin.output(out).transpose(0, 1), twin


@pytest.mark.parametrize("cell,condition,num_layers", CONFIGS)
def test_matches_torch(torch, cell, condition, num_layers):
    model = tiny(cell, condition, num_layers)
    x = images(2, steps=6)
    criterion = BCEWithLogitsLoss()
    logits = model(x, LABELS)
    loss = criterion(logits, x)
    model.zero_grad()
    model.backward(criterion.backward())
    expected_logits, twin = torch_logits(torch, model, x, LABELS)
    expected_loss = torch.nn.functional.binary_cross_entropy_with_logits(expected_logits, torch.from_numpy(x))
    expected_loss.backward()
    np.testing.assert_allclose(logits, expected_logits.detach().numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(loss, expected_loss.item(), rtol=1e-9)
    torch_grads = dict(twin.named_parameters())
    assert set(torch_grads) == {name for name, _ in model.named_parameters()}
    for name, param in model.named_parameters():
        np.testing.assert_allclose(param.grad, torch_grads[name].grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("condition", ["state", "input", "both"])
def test_generation_feeds_each_step_back(condition):
    model = tiny("gru", condition, num_layers=2)
    drawn = model.generate(LABELS, num_steps=6)
    assert drawn.shape == (3, 6, FEATURES) and np.all((drawn > 0) & (drawn < 1))
    # teacher-forcing the generated rows reproduces each step's probabilities
    logits = model(drawn, LABELS)
    np.testing.assert_allclose(1 / (1 + np.exp(-logits)), drawn, rtol=1e-10)
    samples = model.generate(LABELS, num_steps=6, sample=True, seed=7)
    assert set(np.unique(samples)) <= {0.0, 1.0}
    np.testing.assert_array_equal(samples, model.generate(LABELS, num_steps=6, sample=True, seed=7))
    # the class matters
    assert not np.allclose(model.generate(np.array([0]), 4), model.generate(np.array([1]), 4))


def test_config_and_errors():
    model = tiny("lstm", "both", num_layers=2)
    clone = SequenceGenerator.from_config(model.config())
    clone.load_state_dict(model.state_dict())
    np.testing.assert_array_equal(clone(images(), LABELS), model(images(), LABELS))
    assert clone.config() == model.config()
    with pytest.raises(ValueError, match="condition must be one of"):
        SequenceGenerator(4, 3, condition="label")
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\]"):
        model(images(), np.array([0, 3, 1]))
    with pytest.raises(ValueError, match="labels must be 3 integers"):
        model(images(), np.array([0, 1]))
    with pytest.raises(ValueError, match="expected x of shape"):
        model(images()[..., :3], LABELS)


def test_compiled_path_matches_reference_float32():
    from compiled_paths import compiled_path, reference_path

    x = images(3).astype(np.float32)
    results = []
    for path in (reference_path(), compiled_path("gru_forward", "gru_backward")):
        rnnlab.manual_seed(4)
        model = SequenceGenerator(FEATURES, CLASSES, hidden_size=16, cell="gru", num_layers=2)
        with path:
            criterion = BCEWithLogitsLoss()
            criterion(model(x, LABELS), x)
            model.backward(criterion.backward())
            drawn = model.generate(LABELS, num_steps=5)
        results.append((drawn, {n: p.grad for n, p in model.named_parameters()}))
    (ref_drawn, ref_grads), (fast_drawn, fast_grads) = results
    np.testing.assert_allclose(fast_drawn, ref_drawn, rtol=1e-4, atol=2e-6)
    for name in ref_grads:
        np.testing.assert_allclose(fast_grads[name], ref_grads[name], rtol=1e-4, atol=2e-6, err_msg=name)
