"""`rnnlab inspect` in-process: the HTML report of a trained run (default text: its validation split), the ANSI
view of one unit, every cell, Korean and code text, unknown characters, and one-line errors."""
import json
import re

import pytest

import rnnlab
from rnnlab.cli.main import main
from rnnlab.data import Vocabulary
from rnnlab.inspect.ansi import diverging_code
from rnnlab.models import CharRNN

from helpers import fails

CODE = ('def area(width, height):\n    """The area (in [units])."""\n    # multiply\n    return width * height\n\n'
        "class Box:\n    size = {'w': 2, 'h': (3, 4)}\n") * 8
KOREAN = '안녕하세요. "오늘은" 날씨가 좋습니다.\n우리는 공원에서 (산책을) 합니다.\n' * 12
TINY = ["--hidden-size", "12", "--num-layers", "2", "--seq-len", "8", "--batch-size", "4", "--eval-chars", "200",
        "--eval-every", "5", "--sample-length", "0", "--lr", "0.01", "--steps", "10"]
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inspect_runs")
    made = {}
    for name, text, cell in (("code", CODE, "lstm"), ("korean", KOREAN, "gru")):
        path = folder / f"{name}.txt"
        path.write_text(text, encoding="utf-8")
        assert main(["train", str(path), "--out", str(folder / name), "--model", cell, *TINY]) == 0
        made[name] = (folder / name, path)
    return made


def report_data(path):
    page = path.read_text(encoding="utf-8")
    match = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page, re.S)
    return page, json.loads(match.group(1))


def test_html_report_of_the_validation_split(runs, capsys, tmp_path):
    run, text_file = runs["code"]
    out = tmp_path / "report.html"
    assert main(["inspect", str(run), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed and "bits/char" in printed and "position in line" in printed
    page, data = report_data(out)
    # the default text: the validation split (90%..95%) of the training text, as training cut it
    ids = Vocabulary.from_text(CODE).encode(CODE)
    start = int(len(ids) * 0.9)
    expected = CODE[start:start + int(len(ids) * 0.05)]
    assert data["text"] == expected
    assert f"validation split of {text_file}" in page
    assert len(data["series"]) == 2 * 6 * 12                       # every unit of every state fits
    assert 'src="http' not in page and "<link" not in page         # self-contained
    assert "Training curves" in page and "<polyline" in page        # metrics.jsonl plotted
    assert page.count("<svg") >= 4                                  # i, f, o saturation + the curves


def test_text_file_chars_cell_and_checkpoint(runs, capsys, tmp_path):
    run, text_file = runs["code"]
    out = tmp_path / "r.html"
    assert main(["inspect", str(run), str(text_file), "--chars", "120", "--cell", "1:3", "--state", "f",
                 "--checkpoint", "latest", "--out", str(out)]) == 0
    page, data = report_data(out)
    assert data["text"] == CODE[:120]
    shown = data["series"][data["selected"]]
    assert (shown["layer"], shown["state"], shown["unit"]) == (1, "f", 3)
    assert "latest" in page


def test_default_out_is_inside_the_run(runs, capsys):
    run, _ = runs["korean"]
    assert main(["inspect", str(run), "--chars", "300"]) == 0
    page, data = report_data(run / "report.html")
    assert data["text"] and set(data["text"]) <= set(KOREAN)
    assert [s["state"] for s in data["series"]].count("z") == 2 * 12      # GRU gates r, z, n
    assert "update gate" in page


def test_ansi_prints_the_text_coloured_by_one_unit(runs, capsys):
    run, text_file = runs["code"]
    assert main(["inspect", str(run), str(text_file), "--format", "ansi", "--cell", "0:2", "--state", "c",
                 "--chars", "200"]) == 0
    out = capsys.readouterr().out
    header, legend, body = out.split("\n", 2)
    assert header.startswith("layer 0, c, unit 2;") and "bits/char" in header
    assert ANSI.sub("", body) == CODE[:200] + ("" if CODE[199] == "\n" else "\n")
    assert len(set(ANSI.findall(body))) > 4                        # several colours
    # each character's colour is the unit's value there (c coloured over [-1, 1])
    model = rnnlab.load(run, checkpoint="best")
    values = rnnlab.inspect.trace(model, CODE[:200]).states[0]["c"][:, 2]
    expected = [diverging_code(float(v))[0] for ch, v in zip(CODE[:200], values) if ch != "\n"]
    codes, current = [], None
    for token in re.split(r"(\x1b\[[0-9;]*m)", body):
        if token.startswith("\x1b[48;5;"):
            current = int(token[len("\x1b[48;5;"):-1])
        elif not token.startswith("\x1b["):
            codes.extend(current for ch in token if ch != "\n")
    assert codes == expected


def test_ansi_without_cell_picks_the_unit_that_follows_a_feature(runs, capsys, tmp_path):
    run, text_file = runs["korean"]
    assert main(["inspect", str(run), str(text_file), "--format", "ansi", "--chars", "150"]) == 0
    printed = capsys.readouterr().out
    header = printed.split("\n", 1)[0]
    assert "follows" in header and "best (r = " in header
    assert ANSI.sub("", printed.split("\n", 2)[2]).rstrip("\n") == KOREAN[:150].rstrip("\n")
    out = tmp_path / "unit.ansi"
    assert main(["inspect", str(run), str(text_file), "--format", "ansi", "--chars", "150", "--out", str(out)]) == 0
    assert capsys.readouterr().out == f"wrote {out}\n"
    assert out.read_text(encoding="utf-8") == printed


@pytest.mark.parametrize("cell", ["rnn", "rnn_relu"])
def test_every_cell(tmp_path, capsys, cell):
    rnnlab.manual_seed(0)
    model = CharRNN(Vocabulary.from_text(CODE), hidden_size=8, num_layers=3, cell=cell)
    model.save(tmp_path / "run")
    text = tmp_path / "code.py"
    text.write_text(CODE, encoding="utf-8")
    assert main(["inspect", str(tmp_path / "run"), str(text), "--out", str(tmp_path / "r.html")]) == 0
    page, data = report_data(tmp_path / "r.html")
    assert data["num_layers"] == 3 and data["state_names"] == ["h"] and "has no gates" in page
    assert main(["inspect", str(tmp_path / "run"), str(text), "--format", "ansi", "--cell", "2:7"]) == 0


def test_unknown_characters_are_left_out_and_named(runs, capsys, tmp_path):
    run, _ = runs["code"]
    text = tmp_path / "odd.py"
    text.write_text("def area(width):\n    return width ~ 2 §\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["inspect", str(run), str(text), "--out", str(tmp_path / "odd.html")]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("rnnlab: warning: 2 characters not in the model's vocabulary")
    assert "'~'" in err and "'§'" in err
    page, data = report_data(tmp_path / "odd.html")
    assert "~" not in data["text"] and "left out" in page


def test_one_line_errors(runs, capsys, tmp_path):
    run, text_file = runs["code"]
    fails(capsys, ["inspect", tmp_path / "nope"], "no such run directory")
    fails(capsys, ["inspect", run, "--cell", "2:0", "--format", "ansi"], "--cell 2:0", "layer in 0..1")
    fails(capsys, ["inspect", run, "--cell", "0:12"], "unit in 0..11")
    fails(capsys, ["inspect", run, "--cell", "x"], "LAYER:UNIT")
    fails(capsys, ["inspect", run, "--cell", "0:1", "--state", "z"], "--state z", "i f g o")
    fails(capsys, ["inspect", run, "--state", "c"], "--cell")
    fails(capsys, ["inspect", run, "--state", "z"], "--state z", "i f g o")  # a state the cell lacks, before "--cell"
    fails(capsys, ["inspect", run, "--chars", "0"], "--chars 0")
    fails(capsys, ["inspect", run, "--format", "pdf"], "--format")
    fails(capsys, ["inspect", run, tmp_path / "missing.txt"], "missing.txt")
    empty = tmp_path / "unknown.txt"
    empty.write_text("~~~§§", encoding="utf-8")
    fails(capsys, ["inspect", run, empty], "no character the model knows")
    rnnlab.manual_seed(0)
    CharRNN(Vocabulary.from_text(CODE), hidden_size=4, num_layers=1).save(tmp_path / "saved")
    fails(capsys, ["inspect", tmp_path / "saved"], "give a TEXT file")


def test_the_default_text_follows_the_runs_split_and_val_file(tmp_path, capsys):
    text = tmp_path / "code.py"
    text.write_text(CODE, encoding="utf-8")
    assert main(["train", str(text), "--out", str(tmp_path / "split"), "--split", "0.8,0.2,0", *TINY]) == 0
    assert main(["inspect", str(tmp_path / "split"), "--chars", "100000"]) == 0
    _, data = report_data(tmp_path / "split" / "report.html")
    start = int(len(CODE) * 0.8)
    assert data["text"] == CODE[start:start + int(len(CODE) * 0.2)]     # floor sizes, the remainder to the test part
    other = tmp_path / "other.py"
    other.write_text(CODE[:500][::-1], encoding="utf-8")
    assert main(["train", str(text), "--out", str(tmp_path / "val"), "--val-file", str(other), *TINY]) == 0
    assert main(["inspect", str(tmp_path / "val"), "--chars", "300"]) == 0
    _, data = report_data(tmp_path / "val" / "report.html")
    assert data["text"] == CODE[:500][::-1][:300]


def test_too_many_characters_for_memory_is_one_line(runs, capsys, monkeypatch):
    import rnnlab.cli.inspect as inspect_cli

    run, text_file = runs["code"]
    monkeypatch.setattr(inspect_cli, "MAX_TRACE_BYTES", 100_000)
    line = fails(capsys, ["inspect", run, text_file, "--chars", "5000"], f"tracing {len(CODE):,} characters",
                 "MB of states", "or fewer")
    most = int(line.rsplit("--chars ", 1)[1].split()[0])
    assert main(["inspect", str(run), str(text_file), "--chars", str(most), "--format", "ansi"]) == 0
