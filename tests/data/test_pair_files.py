"""Pairs files: reading (every bad line one RnnlabError naming file and line) and the seeded 90/5/5 split."""
import pytest

from rnnlab.data.pair_files import format_pairs, read_pairs, split_pairs
from rnnlab.errors import RnnlabError


def test_round_trip_blank_lines_and_windows_endings(tmp_path):
    pairs = [("12+3", "15"), ("héllo wörld", "dlröw olléh"), ("a b", " c")]
    path = tmp_path / "p.tsv"
    path.write_text(format_pairs(pairs), encoding="utf-8")
    assert read_pairs(path) == pairs
    path.write_bytes(b"1+1\t2\r\n\r\n\n2+2\t4\r\n")
    assert read_pairs(path) == [("1+1", "2"), ("2+2", "4")]


@pytest.mark.parametrize("text, message", [
    ("a\tb\nno tab here\n", "p.tsv:2: no tab in 'no tab here'"),
    ("a\tb\tc\n", "p.tsv:1: 2 tabs"),
    ("\tb\n", "p.tsv:1: the source is empty"),
    ("a\t  \n", "p.tsv:1: the target is empty"),
    ("\n \n", "holds no pairs"),
])
def test_bad_lines(tmp_path, text, message):
    path = tmp_path / "p.tsv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RnnlabError, match=message):
        read_pairs(path)


def test_a_long_bad_line_is_shortened(tmp_path):
    path = tmp_path / "p.tsv"
    path.write_text("x" * 500 + "\n")
    with pytest.raises(RnnlabError) as error:
        read_pairs(path)
    assert len(str(error.value)) < 200 and "..." in str(error.value)


def test_split_is_seeded_disjoint_and_complete():
    pairs = [(str(k), str(k)) for k in range(1000)]
    train, val, test = split_pairs(pairs, seed=3)
    assert (len(train), len(val), len(test)) == (900, 50, 50)
    assert sorted(train + val + test) == sorted(pairs)
    assert split_pairs(pairs, seed=3) == (train, val, test)
    assert split_pairs(pairs, seed=4)[1] != val


@pytest.mark.parametrize("count, sizes", [(2, (1, 1, 0)), (3, (2, 1, 0)), (4, (3, 1, 0)), (20, (18, 1, 1))])
def test_split_of_few_pairs_keeps_one_for_validation(count, sizes):
    train, val, test = split_pairs([(str(k), "x") for k in range(count)], seed=0)
    assert (len(train), len(val), len(test)) == sizes


def test_one_pair_cannot_be_split():
    with pytest.raises(RnnlabError, match="p.tsv: 1 pair, too few"):
        split_pairs([("a", "b")], seed=0, source="p.tsv")


@pytest.mark.parametrize("content, encoding", [
    (b"1+1\t2\n\x00\x01\x02\x03" * 40, "utf-8"),       # binary: NUL
    (b"caf\xe9\t1\n", "utf-8"),                        # Latin-1 read as UTF-8
    (b"\xff\xff\xff\x7f", "utf-32"),                  # no code point
])
def test_an_unreadable_pairs_file_offers_no_bytes_flag(tmp_path, content, encoding):
    # seq2seq and tag have no --bytes: their messages must not send the user to it
    path = tmp_path / "pairs.tsv"
    path.write_bytes(content)
    with pytest.raises(RnnlabError) as raised:
        read_pairs(path, encoding=encoding)
    message = str(raised.value)
    assert str(path) in message and "--encoding" in message and "--bytes" not in message and "\n" not in message
