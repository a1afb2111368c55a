"""Seq2Seq: gradcheck of the whole model (float64), parity with the same model in PyTorch (loss and every
gradient by name), teacher forcing, greedy and beam search (beam 1 = greedy; beam beats greedy on a
hand-made distribution; batching changes nothing), config round trip, translate, learning a small task."""
from __future__ import annotations

import numpy as np
import pytest

import rnnlab
from rnnlab.data.pairs import PairBatches, SymbolVocabulary, make_pair_batch
from rnnlab.models import Seq2Seq
from rnnlab.nn import CrossEntropyLoss

SOURCE_VOCAB, TARGET_VOCAB = 9, 8
LENGTHS = np.array([5, 2, 4])


def tiny(cell="lstm", bidirectional=False, attention="general", num_layers=1, dropout=0.0, hidden=4):
    rnnlab.manual_seed(1)
    return Seq2Seq(SOURCE_VOCAB, TARGET_VOCAB, hidden_size=hidden, num_layers=num_layers, cell=cell,
                   embedding_size=3, bidirectional=bidirectional, attention=attention, attention_size=5,
                   dropout=dropout, dtype=np.float64)


def batch_ids(seed=0, steps=5, target_steps=4):
    rng = np.random.default_rng(seed)
    source = rng.integers(3, SOURCE_VOCAB, (steps, 3))
    source[np.arange(steps)[:, None] >= LENGTHS[None, :]] = 0           # padding after each end
    target = rng.integers(3, TARGET_VOCAB, (target_steps, 3))
    target[0] = 1
    return source, target


CONFIGS = [("lstm", False, "general", 1), ("lstm", True, "additive", 2), ("gru", True, "general", 1),
           ("gru", False, "dot", 2), ("rnn", False, None, 1), ("rnn_relu", True, None, 1),
           ("lstm", False, None, 2), ("rnn", True, "additive", 1)]


# --- gradients: finite differences in float64 ---------------------------------------------------
@pytest.mark.parametrize("cell,bidirectional,attention,num_layers", CONFIGS)
def test_gradcheck_whole_model(cell, bidirectional, attention, num_layers):
    model = tiny(cell, bidirectional, attention, num_layers)
    source, target = batch_ids()
    # eps 1e-5, tol 1e-4: some gradients (the additive score's query side, whose softmax terms nearly
    # cancel) are a thousand times smaller than their neighbours; a wrong backward gives 1e-2 or more
    report = rnnlab.gradcheck(model, source, target, forward_kwargs={"source_lengths": LENGTHS}, eps=1e-5)
    report.assert_passed(1e-4)
    assert set(report.errors) == {name for name, _ in model.named_parameters()}
    assert ("bridge_h.weight" in report.errors) == bidirectional
    assert ("attention" in " ".join(report.errors)) == (attention in ("general", "additive"))


def test_gradcheck_with_dropout():
    model = tiny("lstm", True, "general", num_layers=2, dropout=0.3)
    source, target = batch_ids(1)
    rnnlab.gradcheck(model, source, target, forward_kwargs={"source_lengths": LENGTHS},
                     eps=1e-5).assert_passed(1e-4)


def test_gradcheck_catches_a_wrong_backward():
    model = tiny("gru", True, "general")
    original = model.attention.backward
    model.attention.backward = lambda grad: (original(grad)[0], None, None)   # drops the keys' gradient
    source, target = batch_ids()
    assert not rnnlab.gradcheck(model, source, target, forward_kwargs={"source_lengths": LENGTHS},
                                eps=1e-5).passed(1e-4)


# --- parity with the same model in PyTorch -------------------------------------------------------
def torch_twin(torch, model):
    nn = torch.nn
    classes = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN, "rnn_relu": nn.RNN}
    extra = {"nonlinearity": "relu"} if model.cell == "rnn_relu" else {}
    H, E, D = model.hidden_size, model.embedding_size, 2 if model.bidirectional else 1

    class Scores(nn.Module):
        def __init__(self):
            super().__init__()
            for name, param in model.attention.named_parameters():
                self.register_parameter(name, nn.Parameter(torch.zeros(param.shape, dtype=torch.float64)))

    twin = nn.Module()
    twin.source_embedding = nn.Embedding(model.source_vocab_size, E, padding_idx=model.pad_id)
    twin.encoder = classes[model.cell](E, H, model.num_layers, bidirectional=model.bidirectional, **extra)
    if model.bidirectional:
        twin.bridge_h = nn.Linear(2 * H, H)
        if model.cell == "lstm":
            twin.bridge_c = nn.Linear(2 * H, H)
    twin.target_embedding = nn.Embedding(model.target_vocab_size, E, padding_idx=model.pad_id)
    twin.decoder = classes[model.cell](E, H, model.num_layers, **extra)
    if model.attention_score is not None:
        twin.attention = Scores()
        twin.combine = nn.Linear(D * H + H, H)
    twin.output_projection = nn.Linear(H, model.target_vocab_size)
    twin = twin.double()
    twin.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})
    return twin


def torch_logits(torch, model, twin, source, target, lengths):
    nn = torch.nn
    steps, H = source.shape[0], model.hidden_size
    embedded = twin.source_embedding(torch.from_numpy(source))
    packed = nn.utils.rnn.pack_padded_sequence(embedded, torch.from_numpy(lengths), enforce_sorted=False)
    packed_out, state = twin.encoder(packed)
    enc_out, _ = nn.utils.rnn.pad_packed_sequence(packed_out, total_length=steps)        # (S, N, D*H)
    parts = list(state) if model.cell == "lstm" else [state]
    if model.bidirectional:
        bridges = [twin.bridge_h, getattr(twin, "bridge_c", None)]
        joined = [torch.cat([p[0::2], p[1::2]], dim=-1) for p in parts]                  # (L, N, 2H)
        parts = [torch.tanh(bridges[0](joined[0]))] + [bridges[1](j) for j in joined[1:]]
    dec_out, _ = twin.decoder(twin.target_embedding(torch.from_numpy(target)),
                              tuple(parts) if model.cell == "lstm" else parts[0])
    features = dec_out
    if model.attention_score is not None:
        Q, K = dec_out.transpose(0, 1), enc_out.transpose(0, 1)
        a = twin.attention
        if model.attention_score == "dot":
            scores = Q @ K.transpose(1, 2)
        elif model.attention_score == "general":
            scores = (Q @ a.weight) @ K.transpose(1, 2)
        else:
            hidden = torch.tanh((Q @ a.query_weight.T)[:, :, None] + (K @ a.key_weight.T + a.bias)[:, None])
            scores = hidden @ a.score_weight
        padding = torch.from_numpy(np.arange(steps)[None, :] >= lengths[:, None])
        weights = torch.softmax(scores.masked_fill(padding[:, None, :], float("-inf")), dim=-1)
        context = (weights @ K).transpose(0, 1)
        features = torch.tanh(twin.combine(torch.cat([context, dec_out], dim=-1)))
    return twin.output_projection(features)


@pytest.mark.parametrize("cell,bidirectional,attention,num_layers", CONFIGS)
def test_matches_torch_loss_and_every_gradient(torch, cell, bidirectional, attention, num_layers):
    model = tiny(cell, bidirectional, attention, num_layers, hidden=6)
    source, target_input = batch_ids(2, steps=5, target_steps=4)
    target_output = np.random.default_rng(3).integers(2, TARGET_VOCAB, target_input.shape)
    target_output[3, 1] = model.pad_id                                                   # ignored
    criterion = CrossEntropyLoss(ignore_index=model.pad_id)
    logits = model(source, target_input, source_lengths=LENGTHS)
    loss = criterion(logits.reshape(-1, TARGET_VOCAB), target_output.reshape(-1))
    model.zero_grad()
    model.backward(criterion.backward().reshape(logits.shape))

    twin = torch_twin(torch, model)
    expected_logits = torch_logits(torch, model, twin, source, target_input, LENGTHS)
    expected_loss = torch.nn.functional.cross_entropy(expected_logits.reshape(-1, TARGET_VOCAB),
                                                      torch.from_numpy(target_output.reshape(-1)),
                                                      ignore_index=model.pad_id)
    expected_loss.backward()
    np.testing.assert_allclose(logits, expected_logits.detach().numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(loss, expected_loss.item(), rtol=1e-9)
    torch_grads = {name: p.grad for name, p in twin.named_parameters()}
    assert set(torch_grads) == {name for name, _ in model.named_parameters()}
    for name, param in model.named_parameters():
        np.testing.assert_allclose(param.grad, torch_grads[name].numpy(), rtol=1e-9, atol=1e-12, err_msg=name)


# --- teacher forcing ----------------------------------------------------------------------------
def test_teacher_forcing_mixes_in_the_models_own_predictions():
    model = tiny("lstm", True, "general", hidden=6)
    source, target = batch_ids(4, target_steps=6)
    rnnlab.manual_seed(0)
    mixed = model.mix_predictions(source, target, LENGTHS, teacher_forcing=0.5)
    logits = model(source, mixed, source_lengths=LENGTHS)
    predictions = logits.argmax(axis=-1)
    replaced = mixed[1:] != target[1:]
    assert replaced.any() and (mixed[0] == target[0]).all()
    # every replaced input is the argmax of the previous step given the mixed inputs before it
    np.testing.assert_array_equal(mixed[1:][replaced], predictions[:-1][replaced])
    np.testing.assert_array_equal(model.mix_predictions(source, target, LENGTHS, teacher_forcing=1.0), target)
    # forward(teacher_forcing=...) draws the same mix from the same generator state
    rnnlab.manual_seed(0)
    np.testing.assert_allclose(model(source, target, source_lengths=LENGTHS, teacher_forcing=0.5), logits)
    with pytest.raises(ValueError, match="teacher_forcing"):
        model.mix_predictions(source, target, LENGTHS, teacher_forcing=1.5)


# --- decoding -----------------------------------------------------------------------------------
@pytest.mark.parametrize("cell,bidirectional,attention", [("lstm", True, "additive"), ("gru", False, "dot"),
                                                          ("rnn", False, None)])
def test_beam_of_one_is_greedy(cell, bidirectional, attention):
    model = tiny(cell, bidirectional, attention, hidden=8)
    source, _ = batch_ids(5)
    greedy, greedy_logp = model.greedy_search(source, LENGTHS, max_length=7)
    beam, beam_logp = model.beam_search(source, LENGTHS, beam_size=1, max_length=7)
    assert len(greedy) == len(beam) == 3
    for a, b in zip(greedy, beam):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(greedy_logp, beam_logp, rtol=1e-12)


def test_greedy_log_probs_are_the_models_scores():
    model = tiny("lstm", True, "general", hidden=8)
    source, _ = batch_ids(6)
    sequences, log_probs = model.greedy_search(source, LENGTHS, max_length=6)
    for n, ids in enumerate(sequences):
        finished = len(ids) < 6
        target_input = np.concatenate(([model.bos_id], ids))[:, None]
        target_output = np.concatenate((ids, [model.eos_id] if finished else []))
        logits = model(source[:LENGTHS[n], n:n + 1], target_input[:len(target_output)], [LENGTHS[n]])
        shifted = logits[:, 0] - logits[:, 0].max(axis=-1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
        assert np.isclose(log_p[np.arange(len(target_output)), target_output.astype(int)].sum(), log_probs[n])


def test_decoding_a_batch_equals_decoding_each_sequence():
    model = tiny("gru", True, "additive", hidden=8)
    source, _ = batch_ids(7)
    batched, _ = model.beam_search(source, LENGTHS, beam_size=3, max_length=6)
    greedy, _ = model.greedy_search(source, LENGTHS, max_length=6)
    for n in range(3):
        alone, _ = model.beam_search(source[:LENGTHS[n], n:n + 1], [LENGTHS[n]], beam_size=3, max_length=6)
        np.testing.assert_array_equal(batched[n], alone[0])
        alone, _ = model.greedy_search(source[:LENGTHS[n], n:n + 1], [LENGTHS[n]], max_length=6)
        np.testing.assert_array_equal(greedy[n], alone[0])


def markov_model():
    """A model whose step is a hand-made table of next-symbol probabilities given the previous symbol:
    pad 0, bos 1, eos 2, a 3, b 4. Greedy takes 'a' (0.55) then must stop with 0.4: p = 0.22;
    'b' (0.45) then stop (0.9) is p = 0.405, which a beam of 2 finds."""
    model = tiny("rnn", attention=None)
    table = np.full((5, 5), 1e-9)
    table[1, [3, 4]] = [0.55, 0.45]
    table[3, [2, 3, 4]] = [0.4, 0.3, 0.3]
    table[4, [2, 3]] = [0.9, 0.1]
    table[2, 2] = table[0, 0] = 1.0
    table /= table.sum(axis=1, keepdims=True)
    logits_table = np.log(table)
    padded = np.full((5, TARGET_VOCAB), -40.0)
    padded[:, :5] = logits_table

    def start(source, source_lengths=None):
        return np.zeros((1, np.asarray(source).shape[1], 1)), None

    def step(ids, state, memory=None):
        return padded[np.asarray(ids)], state

    model.start, model.step = start, step
    return model


def test_beam_search_finds_a_more_likely_sequence_than_greedy():
    model = markov_model()
    source = np.full((2, 2), 4)
    greedy, greedy_logp = model.greedy_search(source, max_length=5)
    beam, beam_logp = model.beam_search(source, beam_size=2, max_length=5, length_penalty=0.0)
    assert [s.tolist() for s in greedy] == [[3], [3]] and [s.tolist() for s in beam] == [[4], [4]]
    np.testing.assert_allclose(np.exp(greedy_logp), 0.22, rtol=1e-6)
    np.testing.assert_allclose(np.exp(beam_logp), 0.405, rtol=1e-6)
    one, one_logp = model.beam_search(source, beam_size=1, max_length=5)
    assert [s.tolist() for s in one] == [[3], [3]]


def test_length_penalty_prefers_longer_hypotheses():
    """Among finished hypotheses 'b' (p = 0.405) and 'a a' or similar, a strong penalty picks by the mean
    log-probability per symbol; with 0 the raw total wins."""
    model = markov_model()
    source = np.full((2, 1), 4)
    raw, raw_logp = model.beam_search(source, beam_size=4, max_length=6, length_penalty=0.0)
    normalised, norm_logp = model.beam_search(source, beam_size=4, max_length=6, length_penalty=3.0)
    assert raw[0].tolist() == [4]
    assert len(normalised[0]) > 1 and norm_logp[0] < raw_logp[0]


# --- configuration, vocabularies, translate, errors ---------------------------------------------
def test_config_round_trip_and_state_dict():
    model = tiny("lstm", True, "additive", num_layers=2)
    clone = Seq2Seq.from_config(model.config())
    clone.load_state_dict(model.state_dict())
    source, target = batch_ids()
    np.testing.assert_array_equal(clone(source, target, LENGTHS), model(source, target, LENGTHS))
    assert clone.config() == model.config()
    names = [name for name, _ in model.named_parameters()]
    assert names[0] == "source_embedding.weight" and names[-1] == "output_projection.bias"
    assert "bridge_c.weight" in names and "attention.score_weight" in names and "combine.weight" in names


def test_translate_with_vocabularies():
    pairs = [("abc", "cba"), ("ab", "ba"), ("cab", "bac")]
    source_vocab = SymbolVocabulary.build(s for s, _ in pairs)
    target_vocab = SymbolVocabulary.build(t for _, t in pairs)
    rnnlab.manual_seed(0)
    model = Seq2Seq(source_vocab, target_vocab, hidden_size=8)
    assert (model.pad_id, model.bos_id, model.eos_id) == (0, 1, 2)
    out = model.translate(["abc", "zz", ""], max_length=5)
    beam = model.translate(["abc", "zz", ""], beam_size=3, max_length=5)
    assert len(out) == len(beam) == 3 and all(isinstance(text, str) and len(text) <= 5 for text in out + beam)
    with pytest.raises(TypeError, match="needs vocabularies"):
        Seq2Seq(5, 5).translate(["a"])


def test_errors():
    with pytest.raises(ValueError, match="cell must be one of"):
        Seq2Seq(5, 5, cell="tree")
    with pytest.raises(ValueError, match="attention must be one of"):
        Seq2Seq(5, 5, attention="cosine")
    with pytest.raises(ValueError, match="attention='dot' needs"):
        Seq2Seq(5, 5, attention="dot", bidirectional=True)
    model = tiny()
    source, target = batch_ids()
    with pytest.raises(ValueError, match="source_lengths must lie in"):
        model(source, target, source_lengths=[6, 1, 1])
    with pytest.raises(ValueError, match="same number of sequences"):
        model(source, target[:, :2])
    with pytest.raises(ValueError, match=r"shape \(L, N\)"):
        model(source[:, 0], target)
    with pytest.raises(RuntimeError, match="no forward"):
        tiny().backward(np.zeros((4, 3, TARGET_VOCAB)))
    with pytest.raises(ValueError, match="beam_size"):
        model.beam_search(source, beam_size=0)


# --- it learns ----------------------------------------------------------------------------------
@pytest.mark.slow
def test_learns_to_reverse_short_strings():
    rng = np.random.default_rng(0)
    texts = ["".join(rng.choice(list("abcde"), rng.integers(2, 6))) for _ in range(1200)]
    vocab = SymbolVocabulary.build(texts)
    data = PairBatches([vocab.encode(t) for t in texts], [vocab.encode(t[::-1]) for t in texts], batch_size=32)
    rnnlab.manual_seed(0)
    model = Seq2Seq(vocab, vocab, hidden_size=32, embedding_size=16)
    optimizer = rnnlab.optim.Adam(model.parameters(), lr=0.01)
    criterion = CrossEntropyLoss(ignore_index=vocab.pad_id)
    for _ in range(6):
        for batch in data.epoch(rnnlab.backend.generator()):
            logits = model(batch.source, batch.target_input, batch.source_lengths)
            criterion(logits.reshape(-1, len(vocab)), batch.target_output.reshape(-1))
            model.zero_grad()
            model.backward(criterion.backward().reshape(logits.shape))
            optimizer.step()
    tests = ["abcd", "eda", "bbace", "ca"]
    assert model.translate(tests) == [t[::-1] for t in tests]
    assert model.translate(tests, beam_size=3) == [t[::-1] for t in tests]
    batch = make_pair_batch([vocab.encode(t) for t in tests])
    assert batch.source.shape == (5, 4)


# --- the compiled path (float32) gives the reference's numbers --------------------------------------
@pytest.mark.parametrize("cell,bidirectional,attention", [("lstm", True, "general"), ("gru", False, "additive")])
def test_compiled_path_matches_reference_float32(cell, bidirectional, attention):
    from compiled_paths import compiled_path, reference_path

    rng = np.random.default_rng(8)
    source, target = batch_ids(8)
    grad = rng.standard_normal((target.shape[0], 3, TARGET_VOCAB)).astype(np.float32)
    results = []
    for path in (reference_path(), compiled_path(f"{cell}_forward", f"{cell}_backward")):
        rnnlab.manual_seed(1)
        model = Seq2Seq(SOURCE_VOCAB, TARGET_VOCAB, hidden_size=16, cell=cell, bidirectional=bidirectional,
                        attention=attention)
        with path:
            logits = model(source, target, LENGTHS)
            model.backward(grad)
            decoded, log_probs = model.beam_search(source, LENGTHS, beam_size=2, max_length=5)
        results.append((logits, {n: p.grad for n, p in model.named_parameters()}, log_probs))
    (ref_logits, ref_grads, ref_logp), (fast_logits, fast_grads, fast_logp) = results
    assert ref_logits.dtype == np.float32
    np.testing.assert_allclose(fast_logits, ref_logits, rtol=1e-4, atol=2e-6)
    for name in ref_grads:
        np.testing.assert_allclose(fast_grads[name], ref_grads[name], rtol=1e-4, atol=2e-6, err_msg=name)
    np.testing.assert_allclose(fast_logp, ref_logp, rtol=1e-4, atol=1e-5)


def test_top_k_partition_agrees_with_a_full_sort():
    from rnnlab.models.seq2seq import _top_k

    rng = np.random.default_rng(10)
    scores = rng.standard_normal((6, 9000))
    scores[0, [5, 17, 4000]] = 10.0                                  # a tie: the lower indices first
    scores[1, :] = -np.inf                                           # dead hypotheses
    scores[1, [3, 8000, 7, 12, 9]] = [-1.0, -2.0, -3.0, -3.0, -4.0]
    expected = np.argsort(-scores, axis=1, kind="stable")[:, :4]
    np.testing.assert_array_equal(_top_k(scores, 4), expected)
    assert _top_k(scores, 4)[0, :3].tolist() == [5, 17, 4000]
