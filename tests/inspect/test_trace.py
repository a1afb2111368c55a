"""rnnlab.inspect.trace: the states it keeps are the model's own (its logits, its final state) and PyTorch's
(every gate and state of an LSTM/GRU, step by step, to 1e-5 in float32)."""
from __future__ import annotations

import math

import numpy as np
import pytest

import rnnlab
from rnnlab.data import Vocabulary
from rnnlab.inspect import trace
from rnnlab.models import CharRNN

TEXT = 'def f(x):\n    """Say "hi" (twice)."""\n    return [x, {\'a\': 1}]  # done\n' * 3
KOREAN = "안녕하세요, 세계! 한국어 문장입니다.\n다음 줄: \"인용\" (괄호)\n" * 2


def make_model(cell, num_layers=2, hidden=6, text=TEXT, seed=0):
    rnnlab.manual_seed(seed)
    model = CharRNN(Vocabulary.from_text(text), hidden_size=hidden, num_layers=num_layers, cell=cell,
                    embedding_size=5)
    model.eval()
    return model


@pytest.mark.parametrize("cell", ["rnn", "rnn_relu", "lstm", "gru"])
@pytest.mark.parametrize("num_layers", [1, 3])
def test_last_layer_h_reproduces_the_models_logits_and_final_state(cell, num_layers):
    model = make_model(cell, num_layers)
    tr = trace(model, TEXT, chunk_size=17)           # several chunks: the state is carried across them
    ids = model.vocabulary.encode(TEXT).astype(np.intp)
    with rnnlab.no_grad():
        logits, state = model(ids.reshape(-1, 1))
    assert tr.text == TEXT and np.array_equal(tr.ids, ids)
    assert sorted(tr.states[0]) == sorted({"rnn": "h", "rnn_relu": "h", "lstm": "hcifgo", "gru": "hrzn"}[cell])
    for states in tr.states:
        for array in states.values():
            assert array.shape == (len(TEXT), 6) and array.dtype == np.float32
    h_last = tr.states[-1]["h"].astype(np.float64)
    through_decoder = h_last @ model.decoder.weight.data.T + model.decoder.bias.data
    np.testing.assert_allclose(through_decoder, logits[:, 0], atol=1e-5, rtol=0)
    np.testing.assert_allclose(tr.logits, logits[:, 0], atol=1e-5, rtol=0)
    h_n = state[0] if cell == "lstm" else state
    for k in range(num_layers):
        np.testing.assert_allclose(tr.states[k]["h"][-1], h_n[k, 0], atol=1e-5, rtol=0)
        if cell == "lstm":
            np.testing.assert_allclose(tr.states[k]["c"][-1], state[1][k, 0], atol=1e-5, rtol=0)
    # bits: -log2 softmax(logits[t])[next id], the model's cross-entropy in bits
    shifted = logits[:-1, 0].astype(np.float64)
    log_probs = shifted - shifted.max(1, keepdims=True)
    log_probs -= np.log(np.exp(log_probs).sum(1, keepdims=True))
    expected = -log_probs[np.arange(len(ids) - 1), ids[1:]] / math.log(2)
    assert tr.bits.shape == (len(TEXT) - 1,)
    np.testing.assert_allclose(tr.bits, expected, atol=1e-4)
    assert tr.bits_per_char == pytest.approx(expected.mean(), abs=1e-5)


def test_chunking_does_not_change_anything():
    model = make_model("lstm")
    one, many = trace(model, TEXT, chunk_size=10_000), trace(model, TEXT, chunk_size=3)
    for a, b in zip(one.states, many.states):
        for name in a:
            np.testing.assert_allclose(a[name], b[name], atol=1e-6)


def _torch_steps(torch, module, cell, inputs):
    """Gates and states of every layer of a torch.nn.LSTM/GRU, computed step by step from its weights with
    PyTorch's equations (torch.sigmoid, torch.tanh), beside what the module itself outputs."""
    out = []
    layer_input = inputs                                   # (L, E)
    hidden = module.hidden_size
    for k in range(module.num_layers):
        w_ih, w_hh = getattr(module, f"weight_ih_l{k}"), getattr(module, f"weight_hh_l{k}")
        b_ih, b_hh = getattr(module, f"bias_ih_l{k}"), getattr(module, f"bias_hh_l{k}")
        h = torch.zeros(hidden)
        c = torch.zeros(hidden)
        record = {name: [] for name in ("h", "c", "i", "f", "g", "o", "r", "z", "n")}
        for x in layer_input:
            if cell == "lstm":
                gates = x @ w_ih.T + b_ih + h @ w_hh.T + b_hh
                i, f, g, o = gates.chunk(4)
                i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
                c = f * c + i * g
                h = o * torch.tanh(c)
                values = {"i": i, "f": f, "g": g, "o": o, "c": c, "h": h}
            else:
                x_r, x_z, x_n = (x @ w_ih.T + b_ih).chunk(3)
                h_r, h_z, h_n = (h @ w_hh.T + b_hh).chunk(3)
                r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
                n = torch.tanh(x_n + r * h_n)
                h = (1 - z) * n + z * h
                values = {"r": r, "z": z, "n": n, "h": h}
            for name, value in values.items():
                record[name].append(value)
        record = {name: torch.stack(v).numpy() for name, v in record.items() if v}
        out.append(record)
        layer_input = torch.from_numpy(record["h"])
    return out


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_gates_and_states_match_torch(torch, cell):
    model = make_model(cell, num_layers=2, hidden=7)
    tr = trace(model, TEXT, chunk_size=50)
    module = (torch.nn.LSTM if cell == "lstm" else torch.nn.GRU)(5, 7, num_layers=2)
    module.load_state_dict({name[len("rnn."):]: torch.from_numpy(value.copy())
                            for name, value in model.state_dict().items() if name.startswith("rnn.")})
    inputs = torch.from_numpy(model.embedding.weight.data[tr.ids])         # (L, E) float32
    with torch.no_grad():
        reference = _torch_steps(torch, module, cell, inputs)
        module_output, _ = module(inputs[:, None, :])
    np.testing.assert_allclose(reference[-1]["h"], module_output[:, 0].numpy(), atol=1e-5, rtol=0)
    for k in range(2):
        assert set(tr.states[k]) == set(reference[k])
        for name, expected in reference[k].items():
            np.testing.assert_allclose(tr.states[k][name], expected, atol=1e-5, rtol=0, err_msg=f"layer {k} {name}")


def test_unknown_characters_are_left_out_and_reported():
    model = make_model("gru", num_layers=1)
    tr = trace(model, "def ~f(x)§:\n~")
    assert tr.text == "def f(x):\n"
    assert tr.unknown == ["~", "§"] and tr.skipped == 3
    assert tr.states[0]["h"].shape[0] == len(tr.text) and tr.bits.shape == (len(tr.text) - 1,)
    with pytest.raises(rnnlab.RnnlabError, match="no character the model knows"):
        trace(model, "~~§")


def test_korean_text_and_topk():
    model = make_model("lstm", text=KOREAN)
    tr = trace(model, KOREAN)
    assert tr.text == KOREAN
    guesses = tr.topk(3, k=5)
    assert len(guesses) == 5 and all(ch in model.vocabulary for ch, _ in guesses)
    probabilities = [p for _, p in guesses]
    assert probabilities == sorted(probabilities, reverse=True)
    full = tr.probabilities(3)
    assert full.sum() == pytest.approx(1.0)
    assert probabilities[0] == pytest.approx(full.max())
    assert guesses[0][0] == model.vocabulary.decode_one(int(np.argmax(tr.logits[3])))
    # the bits of the next character are -log2 of its probability in the distribution topk reads
    next_id = tr.ids[4]
    assert tr.bits[3] == pytest.approx(-math.log2(full[next_id]), abs=1e-4)
    assert len(tr.topk(-1, k=10_000)) == len(model.vocabulary)
    with pytest.raises(IndexError):
        tr.topk(len(KOREAN))


def test_trace_leaves_the_model_unchanged_and_ignores_dropout():
    rnnlab.manual_seed(3)
    model = CharRNN(Vocabulary.from_text(TEXT), hidden_size=6, num_layers=2, cell="lstm", dropout=0.5)
    model.train()
    before = {name: value.copy() for name, value in model.state_dict().items()}
    tr = trace(model, TEXT)
    assert model.training
    for name, value in model.state_dict().items():
        assert np.array_equal(value, before[name]), name
    # dropout does not apply: the trace is the evaluation-mode forward
    model.eval()
    with rnnlab.no_grad():
        logits, _ = model(tr.ids.reshape(-1, 1))
    np.testing.assert_allclose(tr.logits, logits[:, 0], atol=1e-5, rtol=0)
