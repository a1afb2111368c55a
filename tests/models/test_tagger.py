"""SequenceTagger: gradcheck of the whole model (float64), parity with the same model in PyTorch (logits, loss,
every gradient by name), variable lengths (padding never leaks), predict, config round trip, errors."""
from __future__ import annotations

import numpy as np
import pytest

import rnnlab
from rnnlab.models import SequenceTagger
from rnnlab.nn import CrossEntropyLoss

LENGTHS = np.array([6, 2, 4])
VOCAB, LABELS = 7, 3


def tiny(cell="lstm", bidirectional=True, num_layers=1, dropout=0.0, hidden=4):
    rnnlab.manual_seed(2)
    return SequenceTagger(VOCAB, LABELS, hidden_size=hidden, num_layers=num_layers, cell=cell,
                          bidirectional=bidirectional, embedding_size=3, dropout=dropout, padding_idx=0,
                          dtype=np.float64)


def ids(seed=0, steps=6):
    rng = np.random.default_rng(seed)
    x = rng.integers(1, VOCAB, (steps, 3))
    x[np.arange(steps)[:, None] >= LENGTHS[None, :]] = 0
    return x


CONFIGS = [("lstm", True, 1), ("gru", True, 2), ("rnn", False, 1), ("rnn_relu", True, 1), ("lstm", False, 2)]


@pytest.mark.parametrize("cell,bidirectional,num_layers", CONFIGS)
def test_gradcheck_whole_model(cell, bidirectional, num_layers):
    model = tiny(cell, bidirectional, num_layers)
    report = rnnlab.gradcheck(model, ids(), forward_kwargs={"lengths": LENGTHS}, eps=1e-5)
    report.assert_passed(1e-5)
    assert set(report.errors) == {name for name, _ in model.named_parameters()}


def test_gradcheck_with_dropout():
    model = tiny("gru", True, num_layers=2, dropout=0.4)
    rnnlab.gradcheck(model, ids(1), forward_kwargs={"lengths": LENGTHS}, eps=1e-5).assert_passed(1e-5)


def test_gradcheck_catches_a_wrong_backward():
    model = tiny("lstm", True)
    original = model.classifier.backward

    def drop_reverse(grad):
        g = original(grad)
        g[..., model.hidden_size:] = 0
        return g

    model.classifier.backward = drop_reverse
    assert not rnnlab.gradcheck(model, ids(), forward_kwargs={"lengths": LENGTHS}, eps=1e-5).passed(1e-5)


@pytest.mark.parametrize("cell,bidirectional,num_layers", CONFIGS)
def test_matches_torch(torch, cell, bidirectional, num_layers):
    nn = torch.nn
    model = tiny(cell, bidirectional, num_layers, hidden=5)
    x = ids(2)
    labels = np.random.default_rng(3).integers(0, LABELS, x.shape)
    labels[np.arange(x.shape[0])[:, None] >= LENGTHS[None, :]] = -100
    criterion = CrossEntropyLoss()
    logits = model(x, LENGTHS)
    loss = criterion(logits.reshape(-1, LABELS), labels.reshape(-1))
    model.zero_grad()
    model.backward(criterion.backward().reshape(logits.shape))

    classes = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN, "rnn_relu": nn.RNN}
    extra = {"nonlinearity": "relu"} if cell == "rnn_relu" else {}
    twin = nn.Module()
    twin.embedding = nn.Embedding(VOCAB, 3, padding_idx=0)
    twin.rnn = classes[cell](3, 5, num_layers, bidirectional=bidirectional, **extra)
    twin.classifier = nn.Linear((2 if bidirectional else 1) * 5, LABELS)
    twin = twin.double()
    twin.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})
    packed = nn.utils.rnn.pack_padded_sequence(twin.embedding(torch.from_numpy(x)), torch.from_numpy(LENGTHS),
                                               enforce_sorted=False)
    out, _ = nn.utils.rnn.pad_packed_sequence(twin.rnn(packed)[0], total_length=x.shape[0])
    expected_logits = twin.classifier(out)
    expected_loss = nn.functional.cross_entropy(expected_logits.reshape(-1, LABELS),
                                                torch.from_numpy(labels.reshape(-1)))
    expected_loss.backward()
    np.testing.assert_allclose(logits, expected_logits.detach().numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(loss, expected_loss.item(), rtol=1e-9)
    torch_grads = dict(twin.named_parameters())
    assert set(torch_grads) == {name for name, _ in model.named_parameters()}
    for name, param in model.named_parameters():
        np.testing.assert_allclose(param.grad, torch_grads[name].grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=name)


def test_padding_never_leaks_into_labels():
    model = tiny("gru", True, num_layers=2)
    x = ids(4)
    other = x.copy()
    other[np.arange(x.shape[0])[:, None] >= LENGTHS[None, :]] = 5        # different padding symbols
    a, b = model(x, LENGTHS), model(other, LENGTHS)
    valid = np.arange(x.shape[0])[:, None] < LENGTHS[None, :]
    np.testing.assert_array_equal(a[valid], b[valid])
    # each sequence alone gives the same logits as in the batch
    for n in range(3):
        alone = model(x[:LENGTHS[n], n:n + 1])
        np.testing.assert_allclose(alone[:, 0], a[:LENGTHS[n], n], rtol=1e-12, atol=1e-14)


def test_predict_config_and_errors():
    model = tiny("lstm", True)
    x = ids(5)
    model.train()
    predicted = model.predict(x, LENGTHS)
    assert predicted.shape == x.shape and model.training
    np.testing.assert_array_equal(predicted, model(x, LENGTHS).argmax(axis=-1))
    clone = SequenceTagger.from_config(model.config())
    clone.load_state_dict(model.state_dict())
    np.testing.assert_array_equal(clone(x, LENGTHS), model(x, LENGTHS))
    assert clone.config() == model.config()
    with pytest.raises(ValueError, match="cell must be one of"):
        SequenceTagger(5, 2, cell="tree")
    with pytest.raises(ValueError, match=r"shape \(L, N\)"):
        model(x[:, 0])
    with pytest.raises(ValueError, match="num_labels must be positive"):
        SequenceTagger(5, 0)


def test_compiled_path_matches_reference_float32():
    from compiled_paths import compiled_path, reference_path

    grad = np.random.default_rng(9).standard_normal((6, 3, LABELS)).astype(np.float32)
    results = []
    for path in (reference_path(), compiled_path("lstm_forward", "lstm_backward")):
        rnnlab.manual_seed(2)
        model = SequenceTagger(VOCAB, LABELS, hidden_size=16, num_layers=2, padding_idx=0)
        with path:
            logits = model(ids(), LENGTHS)
            model.backward(grad)
        results.append((logits, {n: p.grad for n, p in model.named_parameters()}))
    (ref_logits, ref_grads), (fast_logits, fast_grads) = results
    np.testing.assert_allclose(fast_logits, ref_logits, rtol=1e-4, atol=2e-6)
    for name in ref_grads:
        np.testing.assert_allclose(fast_grads[name], ref_grads[name], rtol=1e-4, atol=2e-6, err_msg=name)
