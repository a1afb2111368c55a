"""``rnnlab inspect RUN_DIR [TEXT]``: what a character model's units do, as an HTML report or terminal colours.

The text is TEXT (a file) or, by default, the start of the run's validation split (the slice training
scored, cut as ``rnnlab.training.charlm.load_corpus`` cuts it). Characters the model does not know are left
out and named on stderr.
"""
from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

from ..errors import RnnlabError, require
from .flags import add_checkpoint_flag, check_positive_int, one_line_errors
from .messages import to_stdout

DEFAULT_CHARS = {"html": 5000, "ansi": 2000}


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "inspect", help="see what a trained character model learned: cells, gates, predictions",
        description="Run the model in RUN_DIR over a text and show its units: an HTML report (the text coloured "
                    "by any unit, the next-character guesses, the loss per character, gate saturation, the units "
                    "that follow quotes, brackets, line position ..., training curves), or with --format ansi one "
                    "unit's activation as coloured terminal text.",
        epilog="Examples: rnnlab inspect runs/x --out report.html ; "
               "rnnlab inspect runs/x --format ansi --cell 1:42 --state c")
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by `rnnlab train`")
    parser.add_argument("text_file", metavar="TEXT", nargs="?", default=None,
                        help="a text file to read (default: the start of the run's validation split)")
    parser.add_argument("--out", metavar="FILE", default=None,
                        help="where to write the report (html default: RUN_DIR/report.html; ansi default: stdout)")
    parser.add_argument("--format", choices=("html", "ansi"), default="html",
                        help="html: the self-contained report (default); ansi: one unit as coloured terminal text")
    parser.add_argument("--chars", type=int, metavar="N", default=None,
                        help="characters of the text to read (default: 5000 for html, 2000 for ansi)")
    parser.add_argument("--cell", metavar="LAYER:UNIT", default=None,
                        help="the unit to show (ansi) or to show first (html); default: the unit that follows a "
                             "text feature best")
    parser.add_argument("--state", metavar="NAME", default=None,
                        help="which state of --cell: h (default), c for an LSTM, or a gate (i f g o; r z n)")
    parser.add_argument("--encoding", default=None, metavar="NAME",
                        help="text encoding of TEXT (default: the run's)")
    add_checkpoint_flag(parser)
    one_line_errors(parser)
    parser.set_defaults(handler=run)


def parse_cell(value: str, state: str | None, model) -> tuple[int, str, int]:
    """``"LAYER:UNIT"`` -> ``(layer, state, unit)``, checked against the model (one line if wrong)."""
    parts = value.split(":")
    if len(parts) != 2 or not all(p.strip().lstrip("-").isdigit() for p in parts):
        raise RnnlabError(f"--cell {value}: must be LAYER:UNIT, two integers like 1:42")
    layer, unit = int(parts[0]), int(parts[1])
    require(0 <= layer < model.num_layers, "--cell", value, f"a layer in 0..{model.num_layers - 1}")
    require(0 <= unit < model.hidden_size, "--cell", value, f"a unit in 0..{model.hidden_size - 1}")
    return layer, check_state(state or "h", model), unit


def check_state(state: str, model) -> str:
    """``--state`` checked against the model's cell (one line if it has no such state or gate)."""
    from ..inspect.trace import STATE_NAMES

    names = STATE_NAMES[model.cell]
    require(state in names, "--state", state, f"one of {' '.join(names)} for this {model.cell} model")
    return state


def default_text(loaded, chars: int):
    """``(text, description)``: the first ``chars`` characters of the run's validation split."""
    from ..training.charlm import load_corpus
    from ..training.config import TrainConfig

    config = loaded.config
    if not isinstance(config.get("train"), dict) or not config.get("corpus"):
        raise RnnlabError(f"{loaded.path}: config.json does not say what text the model was trained on; "
                          f"give a TEXT file to inspect it on")
    # the corpus as training resolved it (one file: a folder or several files were joined into it); the split
    # and --val-file as recorded
    train = replace(TrainConfig.from_dict(config["train"]), text_file=str(config["corpus"]), glob=None)
    corpus = load_corpus(train, vocab=loaded.vocab)
    if len(corpus.val) < 2:
        raise RnnlabError(f"{corpus.path}: the validation split is empty; give a TEXT file to inspect")
    ids = corpus.val[:chars]
    text = loaded.vocab.decode_bytes(ids) if loaded.vocab.byte_mode else loaded.vocab.decode(ids)
    recorded = config["train"].get("text_file")
    if train.val_file is not None:
        where = f"{train.val_file} (the run's validation file)"
    else:
        named = ", ".join(map(str, recorded)) if isinstance(recorded, list) else recorded
        where = f"validation split of {named or 'the Python standard library'}"
    return text, f"{where}, first {len(ids):,} characters"


def read_metrics(run_path: Path) -> list:
    """The records of ``RUN_DIR/metrics.jsonl`` (lines that do not parse are skipped)."""
    path = run_path / "metrics.jsonl"
    records = []
    if path.is_file():
        with open(path, encoding="utf-8", errors="replace") as file:
            for line in file:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict):
                    records.append(record)
    return records


MAX_TRACE_BYTES = 4 << 30


def check_memory(model, chars: int) -> None:
    """One line instead of a MemoryError: the trace keeps ``chars x H x 4`` bytes per state and layer."""
    from ..inspect.trace import STATE_NAMES

    needed = chars * model.hidden_size * 4 * model.num_layers * len(STATE_NAMES[model.cell])
    needed += chars * model.vocab_size * 4                                    # the logits
    if needed > MAX_TRACE_BYTES:
        most = int(chars * MAX_TRACE_BYTES / needed)
        raise RnnlabError(f"tracing {chars:,} characters through this {model.cell} {model.num_layers}x"
                          f"{model.hidden_size} would keep {needed / 1e6:,.0f} MB of states (at most "
                          f"{MAX_TRACE_BYTES / 1e6:,.0f} MB); give --chars {most} or fewer")


def run(args) -> int:
    from ..data import read_text
    from ..inspect import trace
    from ..training.rundir import load_run

    check_positive_int("--chars", args.chars)
    chars = args.chars or DEFAULT_CHARS[args.format]
    loaded = load_run(args.run_dir, "charlm", args.checkpoint)
    model, vocab = loaded.model, loaded.vocab
    selected = parse_cell(args.cell, args.state, model) if args.cell else None
    if args.state and not args.cell:
        check_state(args.state, model)
        raise RnnlabError(f"--state {args.state}: give the unit too, with --cell LAYER:UNIT")
    if args.text_file is None:
        text, source = default_text(loaded, chars)
    else:
        encoding = args.encoding or loaded.config.get("train", {}).get("encoding", "utf-8")
        text = read_text(args.text_file, encoding=encoding, byte_mode=vocab.byte_mode)[:chars]
        source = f"{args.text_file}" + (f", first {len(text):,} characters" if len(text) == chars else "")
    check_memory(model, len(text))
    try:
        tr = trace(model, text)
    except MemoryError:
        raise RnnlabError(f"not enough memory to trace {len(text):,} characters; lower --chars") from None
    if tr.skipped:
        shown = ", ".join(repr(s) for s in tr.unknown[:20]) + (" ..." if len(tr.unknown) > 20 else "")
        print(f"rnnlab: warning: {tr.skipped:,} characters not in the model's vocabulary were left out: {shown}",
              file=sys.stderr)
    if args.format == "ansi":
        return print_ansi(tr, selected, args.out)
    return write_html(tr, loaded, source, selected, args.out)


def print_ansi(tr, selected, out) -> int:
    from ..inspect import FEATURES, correlations, rank_units
    from ..inspect.ansi import colour_text, legend
    from ..inspect.features import best_unit
    from ..inspect.report import display_range

    why = ""
    if selected is None:
        best = best_unit(rank_units(correlations(tr), top=1))
        if best:
            name, row = best
            selected, why = (row.layer, row.state, row.unit), f", follows {FEATURES[name]} best (r = {row.r:+.3f})"
        else:
            selected = (tr.num_layers - 1, "h", 0)
    layer, state, unit = selected
    values = tr.states[layer][state][:, unit]
    low, high = display_range(tr.cell, state, values)
    header = (f"layer {layer}, {state}, unit {unit}{why}; {len(tr.text):,} characters, "
              f"{tr.bits_per_char:.3f} bits/char\n")
    body = header + legend(low, high) + "\n" + colour_text(tr.text, values, low, high)
    if not body.endswith("\n"):
        body += "\n"
    if out is None:
        to_stdout(body, end="")
    else:
        from ..training.atomic import atomic_write_bytes

        atomic_write_bytes(Path(out), body.encode("utf-8"))
        to_stdout(f"wrote {out}")
    return 0


def write_html(tr, loaded, source, selected, out) -> int:
    from ..inspect.features import FEATURES
    from ..inspect.report import build_report
    from ..training.atomic import atomic_write_bytes

    model = loaded.model
    parameters = sum(int(p.data.size) for _, p in model.named_parameters())
    about = [("run", str(loaded.path)),
             ("model", f"{model.cell}, {model.num_layers} x {model.hidden_size}, embedding {model.embedding_size}, "
                       f"{model.vocab_size} symbols"),
             ("parameters", f"{parameters:,}"), ("checkpoint", loaded.checkpoint), ("text", source)]
    report = build_report(tr, about=about, metrics=read_metrics(Path(loaded.path)), selected=selected,
                          title=f"rnnlab inspect: {Path(loaded.path).name}")
    path = Path(out) if out else Path(loaded.path) / "report.html"
    data = report.html.encode("utf-8")
    atomic_write_bytes(path, data)
    to_stdout(f"wrote {path} ({len(data) / 1e6:.1f} MB; {len(tr.text):,} characters, {tr.bits_per_char:.3f} bits/char; "
          f"{len(report.included):,} of {report.total_series:,} unit-states)")
    for name, rows in report.ranked.items():
        if rows:
            row = rows[0]
            to_stdout(f"  {FEATURES[name]:<18} layer {row.layer} {row.state} unit {row.unit}: r = {row.r:+.3f}")
    return 0
