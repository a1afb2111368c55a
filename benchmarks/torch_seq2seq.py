"""rnnlab's :class:`~rnnlab.models.Seq2Seq` written in torch.nn, with its weights: the peer of ``patterns.py``'s
``torch-*`` tasks (training to a target) and of ``speed.py``'s seq2seq row (the training step's speed).

The twin holds the model's parameters under the same names (PyTorch's: ``encoder.weight_hh_l0_reverse``, ...),
copied in float32 when it is built, so both start from the same weights. The encoder packs the padded
source (``pack_padded_sequence``), a bidirectional encoder's final states are joined per layer and bridged
(``tanh`` for ``h``), the decoder is teacher-forced, and attention (dot, general, additive) masks the
padding; features ``tanh(combine([context; decoder output]))`` -> ``output_projection`` -> logits ``(T, N, V)``.

torch is imported here at module level: this file belongs to the benchmarks (and their tests), never to rnnlab.
"""
from __future__ import annotations

import numpy as np
import torch


def twin_of(model) -> torch.nn.Module:
    """The Seq2Seq's twin in torch.nn, with a float32 copy of its weights."""
    nn = torch.nn
    classes = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}
    H, E, D = model.hidden_size, model.embedding_size, 2 if model.bidirectional else 1
    twin = nn.Module()
    twin.source_embedding = nn.Embedding(model.source_vocab_size, E, padding_idx=model.pad_id)
    twin.encoder = classes[model.cell](E, H, model.num_layers, bidirectional=model.bidirectional)
    if model.bidirectional:
        twin.bridge_h = nn.Linear(2 * H, H)
        if model.cell == "lstm":
            twin.bridge_c = nn.Linear(2 * H, H)
    twin.target_embedding = nn.Embedding(model.target_vocab_size, E, padding_idx=model.pad_id)
    twin.decoder = classes[model.cell](E, H, model.num_layers)
    if model.attention_score is not None:
        twin.attention = nn.Module()
        for name, param in model.attention.named_parameters():
            twin.attention.register_parameter(name, nn.Parameter(torch.zeros(param.shape)))
        twin.combine = nn.Linear(D * H + H, H)
    twin.output_projection = nn.Linear(H, model.target_vocab_size)
    twin.load_state_dict({k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in model.state_dict().items()})
    return twin


def encode(model, twin, source, lengths):
    """source ``(S, N)``, lengths ``(N,)`` (int64 tensors) -> encoder outputs ``(S, N, D*H)``, the decoder's
    initial state, the padding mask ``(N, S)`` (``True`` = padding)."""
    nn = torch.nn
    embedded = twin.source_embedding(source)
    packed = nn.utils.rnn.pack_padded_sequence(embedded, lengths, enforce_sorted=False)
    out, state = twin.encoder(packed)
    out, _ = nn.utils.rnn.pad_packed_sequence(out, total_length=source.shape[0])
    parts = list(state) if model.cell == "lstm" else [state]
    if model.bidirectional:
        joined = [torch.cat([p[0::2], p[1::2]], dim=-1) for p in parts]                # (L, N, 2H)
        parts = [torch.tanh(twin.bridge_h(joined[0]))] + [twin.bridge_c(j) for j in joined[1:]]
    padding = torch.arange(source.shape[0])[None, :] >= lengths[:, None]
    return out, (tuple(parts) if model.cell == "lstm" else parts[0]), padding


def features(model, twin, dec_out, enc_out, padding):
    """Decoder outputs ``(T, N, H)`` -> the features the output projection reads (attention applied)."""
    if model.attention_score is None:
        return dec_out
    Q, K = dec_out.transpose(0, 1), enc_out.transpose(0, 1)                           # (N, T, H), (N, S, D*H)
    a = twin.attention
    if model.attention_score == "dot":
        scores = Q @ K.transpose(1, 2)
    elif model.attention_score == "general":
        scores = (Q @ a.weight) @ K.transpose(1, 2)
    else:
        hidden = torch.tanh((Q @ a.query_weight.T)[:, :, None] + (K @ a.key_weight.T + a.bias)[:, None])  # (N, T, S, A)
        scores = hidden @ a.score_weight
    weights = torch.softmax(scores.masked_fill(padding[:, None, :], float("-inf")), dim=-1)
    context = (weights @ K).transpose(0, 1)
    return torch.tanh(twin.combine(torch.cat([context, dec_out], dim=-1)))


def teacher_forced_logits(model, twin, batch):
    """A :class:`~rnnlab.data.pairs.PairBatch` -> logits ``(T, N, V_tgt)``, the decoder fed ``target_input``."""
    source, lengths = torch.from_numpy(batch.source), torch.from_numpy(batch.source_lengths)
    enc_out, state, padding = encode(model, twin, source, lengths)
    dec_out, _ = twin.decoder(twin.target_embedding(torch.from_numpy(batch.target_input)), state)
    return twin.output_projection(features(model, twin, dec_out, enc_out, padding))


class TorchSeq2SeqTrainer:
    """``trainer(batch) -> loss``: the training step of ``rnnlab.bench.rnnlab_seq2seq_trainer`` in PyTorch
    (teacher forcing, mean cross-entropy over the targets with ``<pad>`` ignored, backward, global-norm clip,
    Adam with PyTorch's defaults), on ``twin`` (default: a new twin of ``model``, its current weights).
    ``optimizer`` is exposed for a learning-rate schedule."""

    def __init__(self, model, lr: float = 3e-3, grad_clip: float = 5.0, twin=None):
        self.model = model
        self.twin = twin_of(model) if twin is None else twin
        self.twin.train()
        self.grad_clip = grad_clip
        self.optimizer = torch.optim.Adam(self.twin.parameters(), lr=lr)
        self.criterion = torch.nn.CrossEntropyLoss(ignore_index=model.pad_id)

    def __call__(self, batch) -> float:
        logits = teacher_forced_logits(self.model, self.twin, batch)
        loss = self.criterion(logits.reshape(-1, logits.shape[-1]), torch.from_numpy(batch.target_output).reshape(-1))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.twin.parameters(), self.grad_clip)
        self.optimizer.step()
        return loss.item()


def first_losses(settings: dict, steps: int = 2) -> dict:
    """The losses of the first ``steps`` training steps of rnnlab and of PyTorch, from the same initial
    weights on the same batches (``rnnlab.bench.seq2seq_setup(steps, settings)``): the first compares the
    forward passes, the later ones the backward, the clip and Adam too. -> ``{"rnnlab": [...],
    "torch": [...], "max_abs_difference": d}``."""
    from rnnlab.bench import rnnlab_seq2seq_trainer, seq2seq_setup

    model, batches = seq2seq_setup(steps, settings)
    theirs = TorchSeq2SeqTrainer(model, lr=settings["lr"], grad_clip=settings["grad_clip"])  # copies the weights first
    ours = rnnlab_seq2seq_trainer(model, lr=settings["lr"], grad_clip=settings["grad_clip"])
    losses = {"rnnlab": [ours(b) for b in batches], "torch": [theirs(b) for b in batches]}
    losses["max_abs_difference"] = max(abs(a - b) for a, b in zip(losses["rnnlab"], losses["torch"]))
    return losses
