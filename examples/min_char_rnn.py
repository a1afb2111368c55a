"""min-char-rnn, the tutorials' algorithm, written with rnnlab's layers.

Karpathy's minimal character-level vanilla RNN: one-hot characters in, a tanh RNN with 100 hidden units,
25 characters per truncated-backprop window (the hidden state carries on between windows), the summed
cross-entropy of the window as the loss, Adagrad with learning rate 0.1, every gradient element clipped
to [-5, 5], and a sample printed every 100 iterations. The equations are PyTorch's ``nn.RNN``:
``h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)``, ``y_t = h_t W_hy^T + b_y``.

    python examples/min_char_rnn.py                      # the shared hamlet.txt, for 50 seconds
    python examples/min_char_rnn.py --text input.txt --iterations 5000
"""
import argparse
import os
import time
from pathlib import Path

import numpy as np

import rnnlab
import rnnlab.errors
from rnnlab import nn, optim
from rnnlab.data import Vocabulary, read_text

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_text(name: str) -> Path:
    """A text from the shared data folder: $RNNLAB_SHARED_DATA, by default ../shared/data beside the repo."""
    folder = Path(os.environ.get("RNNLAB_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
    return folder / "text" / name


def sample(rnn, decoder, h, seed_id: int, length: int, vocab_size: int) -> list:
    """Feed one character at a time from hidden state h; draw the next from the softmax."""
    ids, x_id = [], seed_id
    with rnnlab.no_grad():
        for _ in range(length):
            x = np.zeros((1, 1, vocab_size), dtype=np.float32)
            x[0, 0, x_id] = 1.0
            output, h = rnn(x, h)
            logits = decoder(output[0, 0]).astype(np.float64)
            p = np.exp(logits - logits.max())
            x_id = int(rnnlab.backend.generator().choice(vocab_size, p=p / p.sum()))
            ids.append(x_id)
    return ids


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="min-char-rnn with rnnlab: a vanilla RNN on a text file")
    parser.add_argument("--text", default=str(shared_text("hamlet.txt")), help="text file (default: hamlet.txt)")
    parser.add_argument("--hidden-size", type=int, default=100, help="(default: 100)")
    parser.add_argument("--seq-len", type=int, default=25, help="steps to unroll the RNN for (default: 25)")
    parser.add_argument("--lr", type=float, default=0.1, help="Adagrad's learning rate (default: 0.1)")
    parser.add_argument("--iterations", type=int, default=None, help="stop after this many (default: --time)")
    parser.add_argument("--time", type=float, default=50.0, help="stop after this many seconds (default: 50)")
    parser.add_argument("--sample-every", type=int, default=100, help="(default: 100)")
    parser.add_argument("--sample-length", type=int, default=200, help="(default: 200)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    rnnlab.manual_seed(args.seed)
    data = read_text(args.text)
    vocab = Vocabulary.from_text(data)
    ids = vocab.encode(data).astype(np.intp)
    vocab_size = len(vocab)
    print(f"data has {len(ids):,} characters, {vocab_size} unique.")
    one_hot = np.eye(vocab_size, dtype=np.float32)

    rnn = nn.RNN(vocab_size, args.hidden_size)                # time-major: (L, N=1, V) -> (L, 1, H)
    decoder = nn.Linear(args.hidden_size, vocab_size)
    criterion = nn.CrossEntropyLoss(reduction="sum")          # min-char-rnn sums the window's losses
    params = list(rnn.parameters()) + list(decoder.parameters())
    optimizer = optim.Adagrad(params, lr=args.lr)

    smooth_loss = -np.log(1.0 / vocab_size) * args.seq_len    # the loss at iteration 0
    n, p, h = 0, 0, None
    started = time.perf_counter()
    while True:
        if args.iterations is not None and n >= args.iterations:
            break
        if args.iterations is None and time.perf_counter() - started >= args.time:
            break
        if p + args.seq_len + 1 >= len(ids) or n == 0:
            h, p = None, 0                                    # reset the memory, go from the start of the data
        inputs, targets = ids[p:p + args.seq_len], ids[p + 1:p + args.seq_len + 1]

        if n % args.sample_every == 0:
            sampled = sample(rnn, decoder, h, int(inputs[0]), args.sample_length, vocab_size)
            print(f"----\n {vocab.decode(sampled)} \n----")

        output, h = rnn(one_hot[inputs][:, None, :], h)       # (L, 1, H); h carries to the next window
        logits = decoder(output[:, 0])                        # (L, V)
        loss = float(criterion(logits, targets))
        optimizer.zero_grad()
        rnn.backward(decoder.backward(criterion.backward())[:, None, :], None)
        optim.clip_grad_value_(params, 5.0)                   # mitigate exploding gradients
        optimizer.step()

        smooth_loss = smooth_loss * 0.999 + loss * 0.001
        if n % args.sample_every == 0:
            print(f"iter {n}, loss: {smooth_loss:f}")
        p += args.seq_len
        n += 1
    print(f"{n} iterations in {time.perf_counter() - started:.1f} s, smoothed loss {smooth_loss:f}")
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except rnnlab.errors.RnnlabError as error:  # a wrong path or flag: one line, not a traceback
        raise SystemExit(f"error: {error}") from None
