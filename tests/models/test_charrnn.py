"""CharRNN: PyTorch parity (forward, backward, names), configuration round trip, streaming generation."""
import numpy as np
import pytest

import rnnlab
from rnnlab.data import Vocabulary
from rnnlab.errors import RnnlabError
from rnnlab.models import CharRNN, sample_from_logits

TEXT = "hello world, 안녕하세요 세계!\n"


def rel_error(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(a)), np.max(np.abs(b)), 1e-300))


def torch_twin(torch, model):
    """The same network in PyTorch, weights copied by name (rnn part: prefix stripped)."""
    vocab_size, cell = model.vocab_size, model.cell
    embedding = torch.nn.Embedding(vocab_size, model.embedding_size).double()
    if cell == "lstm":
        rnn = torch.nn.LSTM(model.embedding_size, model.hidden_size, model.num_layers).double()
    elif cell == "gru":
        rnn = torch.nn.GRU(model.embedding_size, model.hidden_size, model.num_layers).double()
    else:
        rnn = torch.nn.RNN(model.embedding_size, model.hidden_size, model.num_layers,
                           nonlinearity="relu" if cell == "rnn_relu" else "tanh").double()
    decoder = torch.nn.Linear(model.hidden_size, vocab_size).double()
    state = {name: torch.from_numpy(value) for name, value in model.state_dict().items()}
    embedding.load_state_dict({"weight": state["embedding.weight"]})
    rnn.load_state_dict({k[len("rnn."):]: v for k, v in state.items() if k.startswith("rnn.")})
    decoder.load_state_dict({"weight": state["decoder.weight"], "bias": state["decoder.bias"]})
    return embedding, rnn, decoder


@pytest.mark.parametrize("cell", ["rnn", "rnn_relu", "lstm", "gru"])
def test_forward_and_backward_match_pytorch(torch, cell):
    rnnlab.manual_seed(1)
    model = CharRNN(7, hidden_size=6, num_layers=2, cell=cell, embedding_size=5, dtype=np.float64)
    ids = rnnlab.backend.generator().integers(0, 7, size=(9, 3))
    logits, state = model(ids)
    grad_logits = rnnlab.backend.generator().standard_normal(logits.shape)
    model.backward(grad_logits)

    embedding, rnn, decoder = torch_twin(torch, model)
    output, torch_state = rnn(embedding(torch.from_numpy(ids)))
    torch_logits = decoder(output)
    torch_logits.backward(torch.from_numpy(grad_logits))

    assert logits.shape == (9, 3, 7)
    assert rel_error(logits, torch_logits.detach().numpy()) < 1e-10
    ours_h = state[0] if cell == "lstm" else state
    theirs_h = torch_state[0] if cell == "lstm" else torch_state
    assert rel_error(ours_h, theirs_h.detach().numpy()) < 1e-10
    torch_grads = {"embedding.weight": embedding.weight.grad, "decoder.weight": decoder.weight.grad,
                   "decoder.bias": decoder.bias.grad}
    torch_grads.update({f"rnn.{name}": p.grad for name, p in rnn.named_parameters()})
    for name, param in model.named_parameters():
        assert rel_error(param.grad, torch_grads[name].numpy()) < 1e-9, name


def test_parameter_names_are_pytorchs(torch):
    model = CharRNN(11, hidden_size=8, num_layers=2, cell="lstm")
    names = [name for name, _ in model.named_parameters()]
    assert names[0] == "embedding.weight" and names[-2:] == ["decoder.weight", "decoder.bias"]
    lstm = torch.nn.LSTM(model.embedding_size, 8, 2)
    rnn_part = {k[len("rnn."):]: torch.from_numpy(v) for k, v in model.state_dict().items() if k.startswith("rnn.")}
    lstm.load_state_dict(rnn_part)  # strict: exactly torch's names and shapes


def test_state_is_carried_between_calls():
    rnnlab.manual_seed(2)
    model = CharRNN(5, hidden_size=4, num_layers=1, cell="gru", dtype=np.float64)
    ids = np.arange(10).reshape(10, 1) % 5
    whole, _ = model(ids)
    first, state = model(ids[:6])
    second, _ = model(ids[6:], state)
    np.testing.assert_allclose(np.concatenate([first, second]), whole, rtol=1e-12, atol=1e-12)


def test_config_round_trip_gives_the_same_model():
    rnnlab.manual_seed(3)
    vocab = Vocabulary.from_text(TEXT)
    model = CharRNN(vocab, hidden_size=8, num_layers=2, cell="gru", embedding_size=3, dropout=0.25)
    twin = CharRNN.from_config(model.config(), vocabulary=vocab)
    assert twin.config() == model.config()
    twin.load_state_dict(model.state_dict())
    ids = vocab.encode("hello 안녕").reshape(-1, 1)
    np.testing.assert_array_equal(model.eval()(ids)[0], twin.eval()(ids)[0])
    with pytest.raises(ValueError, match="vocabulary has"):
        CharRNN.from_config(model.config(), vocabulary=Vocabulary.from_text("ab"))


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="cell must be one of"):
        CharRNN(5, cell="transformer")
    with pytest.raises(ValueError, match="vocab_size must be positive"):
        CharRNN(0)
    with pytest.raises(ValueError, match=r"expected ids of shape \(L, N\)"):
        CharRNN(5, hidden_size=4)(np.zeros(3, dtype=np.int64))


def test_default_embedding_size():
    assert CharRNN(5, hidden_size=16).embedding_size == 16
    assert CharRNN(5, hidden_size=512, num_layers=1).embedding_size == 128


def make_model(cell="lstm", seed=4):
    rnnlab.manual_seed(seed)
    vocab = Vocabulary.from_text(TEXT)
    return CharRNN(vocab, hidden_size=12, num_layers=2, cell=cell, dropout=0.5)


def test_generate_streams_characters_and_reads_the_prime_in_one_pass():
    model = make_model()
    stream = model.generate("hello", 15, seed=0)
    assert iter(stream) is stream  # a generator: characters come one at a time
    chars = list(stream)
    assert len(chars) == 15 and all(isinstance(c, str) and len(c) == 1 and c in model.vocabulary for c in chars)

    # greedy generation by hand: the prime stepped one character at a time, then argmax fed back
    model.eval()
    state, logits = None, None
    for char in "hello":
        logits, state = model.step(model.vocabulary.encode(char), state)
    expected = []
    for _ in range(10):
        next_id = int(np.argmax(logits[0]))
        expected.append(model.vocabulary.decode_one(next_id))
        logits, state = model.step(np.array([next_id]), state)
    model.train()
    assert "".join(model.generate("hello", 10, greedy=True)) == "".join(expected)


def test_generate_is_reproducible_and_leaves_the_global_generator_alone():
    model = make_model()
    before = rnnlab.backend.get_rng_state()
    first = model.sample("세", 40, seed=7, temperature=1.5)
    assert rnnlab.backend.get_rng_state() == before
    assert model.sample("세", 40, seed=7, temperature=1.5) == first
    assert model.sample("세", 40, seed=8, temperature=1.5) != first
    assert model.training  # mode restored after generating in eval mode


def test_top_k_1_and_tiny_top_p_are_greedy():
    model = make_model("gru")
    greedy = model.sample("he", 25, greedy=True)
    assert model.sample("he", 25, top_k=1, seed=1) == greedy
    assert model.sample("he", 25, top_p=1e-9, seed=2) == greedy


def test_generate_batch_gives_independent_streams():
    model = make_model()
    steps = list(model.generate_batch("안녕", 30, num_samples=4, seed=5))
    assert len(steps) == 30 and all(len(step) == 4 for step in steps)
    samples = ["".join(column) for column in zip(*steps)]
    assert len(set(samples)) > 1


def test_generate_errors():
    model = make_model()
    with pytest.raises(RnnlabError, match="'Z'"):
        next(model.generate("hello Z", 3))
    with pytest.raises(ValueError, match="temperature must be > 0"):
        next(model.generate("h", 3, temperature=0))
    with pytest.raises(ValueError, match="top_p must be in"):
        next(model.generate("h", 3, top_p=1.5))
    with pytest.raises(ValueError, match="prime must hold"):
        next(model.generate("", 3))
    with pytest.raises(TypeError, match="needs a vocabulary"):
        next(CharRNN(5, hidden_size=4).generate("a", 2))


def test_sample_from_logits_follows_temperature_top_k_and_top_p():
    rng = np.random.default_rng(0)
    logits = np.log(np.array([[0.5, 0.3, 0.15, 0.05]])).repeat(20000, axis=0)
    frequencies = np.bincount(sample_from_logits(logits, rng=rng), minlength=4) / 20000
    np.testing.assert_allclose(frequencies, [0.5, 0.3, 0.15, 0.05], atol=0.015)
    # temperature 2: probabilities proportional to sqrt(p)
    sharp = np.sqrt([0.5, 0.3, 0.15, 0.05])
    frequencies = np.bincount(sample_from_logits(logits, temperature=2.0, rng=rng), minlength=4) / 20000
    np.testing.assert_allclose(frequencies, sharp / sharp.sum(), atol=0.015)
    # top_k=2: only the two best, renormalised
    frequencies = np.bincount(sample_from_logits(logits, top_k=2, rng=rng), minlength=4) / 20000
    np.testing.assert_allclose(frequencies, [0.625, 0.375, 0, 0], atol=0.015)
    # top_p=0.7: 0.5 alone is short of 0.7, so 0.5 and 0.3 are kept
    frequencies = np.bincount(sample_from_logits(logits, top_p=0.7, rng=rng), minlength=4) / 20000
    np.testing.assert_allclose(frequencies, [0.625, 0.375, 0, 0], atol=0.015)


@pytest.mark.parametrize("cell", ["rnn", "rnn_relu", "lstm", "gru"])
def test_lean_step_equals_the_layer_path(cell):
    rnnlab.manual_seed(6)
    model = CharRNN(9, hidden_size=7, num_layers=3, cell=cell, embedding_size=4, dropout=0.5, dtype=np.float64)
    model.eval()
    step = model.lean_step()
    ids = rnnlab.backend.generator().integers(0, 9, size=(6, 2))
    state_lean = state_layers = None
    for t in range(6):
        logits_lean, state_lean = step(ids[t], state_lean)
        logits_layers, state_layers = model.step(ids[t], state_layers)
        np.testing.assert_allclose(logits_lean, logits_layers, rtol=1e-12, atol=1e-12)
    for lean, layers in zip(state_lean if cell == "lstm" else [state_lean],
                            state_layers if cell == "lstm" else [state_layers]):
        np.testing.assert_allclose(lean, layers, rtol=1e-12, atol=1e-12)
