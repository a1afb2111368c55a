"""The "hihello" toy: an RNN learns to predict the next character of "hihello" from the one before.

Input "hihell", target "ihello", five symbols (h, i, e, l, o) as one-hot vectors, one sequence read
batch-first. Note the ambiguity that makes it a *recurrent* problem: after 'h' comes 'i' the first time and
'e' the second, and after 'l' comes 'l' then 'o' -- only the hidden state can tell them apart.

    python examples/hello.py            # trains in well under a second, prints the prediction each 10 steps
"""
import argparse

import numpy as np

import rnnlab
from rnnlab import nn, optim

CHARS = ["h", "i", "e", "l", "o"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cell", choices=["rnn", "lstm", "gru"], default="rnn", help="recurrent layer (default: rnn)")
    parser.add_argument("--hidden-size", type=int, default=8, help="features of the hidden state (default: 8)")
    parser.add_argument("--steps", type=int, default=200, help="most training steps (default: 200)")
    parser.add_argument("--lr", type=float, default=0.1, help="Adam's learning rate (default: 0.1)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    rnnlab.manual_seed(args.seed)
    x_ids = np.array([[0, 1, 0, 2, 3, 3]])                     # h i h e l l   (N=1, L=6)
    y_ids = np.array([[1, 0, 2, 3, 3, 4]])                     # i h e l l o
    x = np.eye(len(CHARS), dtype=np.float32)[x_ids]            # one-hot: (1, 6, 5)

    layer = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[args.cell]
    rnn = layer(len(CHARS), args.hidden_size, batch_first=True)
    decoder = nn.Linear(args.hidden_size, len(CHARS))
    criterion = nn.CrossEntropyLoss()
    params = list(rnn.parameters()) + list(decoder.parameters())
    optimizer = optim.Adam(params, lr=args.lr)

    for step in range(1, args.steps + 1):
        output, _ = rnn(x)                                      # (1, 6, H)
        logits = decoder(output)                                # (1, 6, 5)
        loss = criterion(logits.reshape(-1, len(CHARS)), y_ids.reshape(-1))
        optimizer.zero_grad()
        grad_output = decoder.backward(criterion.backward().reshape(logits.shape))
        rnn.backward(grad_output, None)
        optimizer.step()

        predicted = logits.argmax(axis=-1)[0]
        accuracy = float((predicted == y_ids[0]).mean())
        if step % 10 == 0 or accuracy == 1.0:
            text = "".join(CHARS[i] for i in predicted)
            print(f"step {step:3d}  loss {float(loss):.4f}  prediction {text!r}  accuracy {accuracy:.0%}")
        if accuracy == 1.0:
            print(f"learned 'hihello' to 100% accuracy in {step} steps")
            return 0
    print(f"did not reach 100% accuracy in {args.steps} steps")
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
