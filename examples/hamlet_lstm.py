"""A 3-layer LSTM learns Hamlet character by character, then writes a continuation of a prime.

The configuration of the TensorFlow char-RNN tutorial: 3 LSTM layers of 512 units, 200 parallel streams of
30 characters per step, Adam with learning rate 0.001. The text is cut into 200 contiguous streams, so the
hidden state of each stream carries from one batch to the next (truncated backprop through time). After
training, generation reads the prime in one pass and carries the state on, one character at a time.

    python examples/hamlet_lstm.py                       # 40 seconds of training on the shared hamlet.txt
    python examples/hamlet_lstm.py --time-budget 1800 --prime "HAMLET. "
"""
import argparse
import math
import os
import sys
import time
from pathlib import Path

import rnnlab
import rnnlab.errors
from rnnlab import nn, optim
from rnnlab.data import BatchStreams, encode_corpus, split_ids
from rnnlab.models import CharRNN
from rnnlab.training.charlm import evaluate

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_text(name: str) -> Path:
    """A text from the shared data folder: $RNNLAB_SHARED_DATA, by default ../shared/data beside the repo."""
    folder = Path(os.environ.get("RNNLAB_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
    return folder / "text" / name


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="a 3-layer LSTM on Hamlet, then generation from a prime")
    parser.add_argument("--text", default=str(shared_text("hamlet.txt")), help="text file (default: hamlet.txt)")
    parser.add_argument("--hidden-size", type=int, default=512, help="(default: 512)")
    parser.add_argument("--num-layers", type=int, default=3, help="(default: 3)")
    parser.add_argument("--batch-size", type=int, default=200, help="parallel streams (default: 200)")
    parser.add_argument("--seq-len", type=int, default=30, help="characters per stream per step (default: 30)")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate (default: 0.001)")
    parser.add_argument("--steps", type=int, default=None, help="stop after this many steps")
    parser.add_argument("--time-budget", type=float, default=40.0, help="stop after this many seconds (default: 40)")
    parser.add_argument("--prime", default="HAMLET.", help="text the generation starts from (default: 'HAMLET.')")
    parser.add_argument("--length", type=int, default=300, help="characters to generate (default: 300)")
    parser.add_argument("--temperature", type=float, default=0.8, help="(default: 0.8)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    rnnlab.manual_seed(args.seed)
    ids, vocab = encode_corpus(args.text)
    train_ids, val_ids, _ = split_ids(ids)
    streams = BatchStreams(train_ids, args.batch_size, args.seq_len)
    model = CharRNN(vocab, hidden_size=args.hidden_size, num_layers=args.num_layers, cell="lstm")
    optimizer = optim.Adam(model.parameters(), lr=args.lr)
    criterion = nn.CrossEntropyLoss()
    print(f"{args.text}: {len(ids):,} characters, vocabulary {len(vocab)}; {model.num_parameters():,} parameters; "
          f"{len(streams)} batches of {args.batch_size}x{args.seq_len} per epoch")

    step, state, started = 0, None, time.perf_counter()
    while (args.steps is None or step < args.steps) and time.perf_counter() - started < args.time_budget:
        position = step % len(streams)
        if position == 0:
            state = None                                  # a new epoch: the streams start over
        x, y = streams.batch(position)                    # (T, B) each, time-major
        logits, state = model(x, state)                   # (T, B, V); state carried to the next batch
        loss = criterion(logits.reshape(-1, len(vocab)), y.reshape(-1))
        optimizer.zero_grad()
        model.backward(criterion.backward().reshape(logits.shape))
        optim.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        step += 1
        if step % 10 == 0 or step == 1:
            speed = step * args.batch_size * args.seq_len / (time.perf_counter() - started)
            print(f"step {step:5d}  loss {float(loss):.4f}  {speed:,.0f} chars/s", flush=True)

    val_loss, _ = evaluate(model, val_ids, batch_size=64, seq_len=128)
    print(f"after {step} steps: validation loss {val_loss:.4f} nats, {val_loss / math.log(2):.4f} bits/char")

    missing = vocab.unknown(args.prime)
    if missing:
        print(f"the prime has characters the text never uses: {missing}", file=sys.stderr)
        return 1
    print("----")
    sys.stdout.write(args.prime)
    for char in model.generate(args.prime, args.length, temperature=args.temperature, seed=args.seed):
        sys.stdout.write(char)                            # streamed: the state carries from char to char
        sys.stdout.flush()
    print("\n----")
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except rnnlab.errors.RnnlabError as error:  # a wrong path or flag: one line, not a traceback
        raise SystemExit(f"error: {error}") from None
