"""Several files and folders as one text, the split flags, --val-file, and every hostile layout as one line."""
from __future__ import annotations

import os

import numpy as np
import pytest

from rnnlab.data import Vocabulary
from rnnlab.data.sources import find_text_files, join_text_files, load_corpus, parse_split, text_source
from rnnlab.errors import RnnlabError


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def one_line(call, *must_contain):
    with pytest.raises(RnnlabError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message
    for text in must_contain:
        assert str(text) in message, (text, message)
    return message


@pytest.fixture
def books(tmp_path):
    root = tmp_path / "books"
    write(root / "b" / "two.txt", "second, no newline")
    write(root / "a.txt", "first\n")
    write(root / "b" / "notes.md", "markdown\n")
    write(root / ".git" / "HEAD.txt", "hidden\n")
    write(root / "empty.txt", "")
    return root


def test_a_folder_is_read_recursively_sorted_hidden_and_empty_files_left_out(books):
    files = find_text_files([books])
    assert [f.relative_to(books).as_posix() for f in files] == ["a.txt", "b/notes.md", "b/two.txt"]
    assert [f.name for f in find_text_files([books], "*.txt")] == ["a.txt", "two.txt"]


def test_joined_text_ends_each_file_with_a_newline_and_is_keyed_on_contents(books, tmp_path):
    cache = tmp_path / "cache"
    source = text_source([books], "*.txt", cache_dir=cache)
    assert source.path.read_text() == "first\nsecond, no newline\n"
    assert source.name == f"{books} (2 files)" and len(source.files) == 2
    assert text_source([books], "*.txt", cache_dir=cache).path == source.path  # same contents: reused
    write(books / "a.txt", "FIRST\n")
    changed = text_source([books], "*.txt", cache_dir=cache)
    assert changed.path != source.path and changed.path.read_text().startswith("FIRST\n")


def test_several_files_in_the_order_given_each_once(tmp_path):
    one, two = write(tmp_path / "z.txt", "zz\n"), write(tmp_path / "y.txt", "yy")
    source = text_source([one, two, one], cache_dir=tmp_path / "cache")
    assert source.path.read_text() == "zz\nyy\n" and source.files == [one, two]
    single = text_source([one], cache_dir=tmp_path / "cache")
    assert single.path == one and single.name == str(one)  # one file: used as it is


def test_hostile_layouts_are_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    one_line(lambda: find_text_files([tmp_path / "empty"]), "empty", "no non-empty file")
    write(tmp_path / "docs" / "a.md", "x\n")
    one_line(lambda: find_text_files([tmp_path / "docs"], "*.txt"), "docs", "--glob '*.txt'")
    one_line(lambda: find_text_files([tmp_path / "docs" / "a.md"], "*.txt"), "no TEXT is a folder")
    os.symlink(tmp_path / "loop1", tmp_path / "loop2")
    os.symlink(tmp_path / "loop2", tmp_path / "loop1")
    one_line(lambda: find_text_files([tmp_path / "loop1"]), "loop1", "symbolic link loop")
    write(tmp_path / "linked" / "ok.txt", "fine\n")
    os.symlink(tmp_path / "linked", tmp_path / "linked" / "again")    # a link back up: visited once, no loop
    assert [f.name for f in find_text_files([tmp_path / "linked"])] == ["ok.txt"]
    os.symlink(tmp_path / "linked" / "self.txt", tmp_path / "linked" / "self.txt.tmp")
    os.symlink(tmp_path / "linked" / "self.txt.tmp", tmp_path / "linked" / "self.txt")
    one_line(lambda: find_text_files([tmp_path / "linked"]), "self.txt", "symbolic link loop")
    one_line(lambda: find_text_files([tmp_path / "missing.txt"]), "missing.txt")
    one_line(lambda: find_text_files([tmp_path / "docs"], ""), "--glob ''")
    one_line(lambda: text_source(None, "*.txt"), "no TEXT is given")
    assert text_source([tmp_path / "docs"], cache_dir=tmp_path / "c").name == f"{tmp_path / 'docs'} (1 file)"


def test_unreadable_files_and_folders_are_one_line(tmp_path):
    secret = write(tmp_path / "box" / "secret.txt", "x\n")
    secret.chmod(0)
    try:
        if os.access(secret, os.R_OK):
            pytest.skip("running as a user who reads any file (root)")
        one_line(lambda: find_text_files([secret]), "secret.txt", "permission denied")
        one_line(lambda: text_source([tmp_path / "box"], cache_dir=tmp_path / "c"), "secret.txt")
    finally:
        secret.chmod(0o644)


def test_a_binary_or_undecodable_file_in_a_folder_is_named(tmp_path):
    write(tmp_path / "mixed" / "a.txt", "text\n")
    (tmp_path / "mixed" / "b.png").write_bytes(b"\x89PNG\x00\x00\x00\rIHDR" * 10)
    one_line(lambda: text_source([tmp_path / "mixed"], cache_dir=tmp_path / "c"), "b.png", "binary")
    (tmp_path / "mixed" / "b.png").unlink()
    (tmp_path / "mixed" / "c.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    one_line(lambda: text_source([tmp_path / "mixed"], cache_dir=tmp_path / "c"), "c.txt", "byte offset 3")
    joined = text_source([tmp_path / "mixed"], encoding="latin-1", cache_dir=tmp_path / "c")
    assert joined.path.read_bytes() == "text\ncafé\n".encode("latin-1")
    one_line(lambda: join_text_files(find_text_files([tmp_path / "mixed"]), "utf-16"), "utf-16", "--bytes")


@pytest.mark.parametrize("text, message", [
    ("0.9,0.1", "must be three fractions"),
    ("a,b,c", "must be three fractions"),
    ("0.9,-0.05,0.15", "must be three fractions"),
    ("nan,0.5,0.5", "must be three fractions"),
    ("0.8,0.1,0.05", "sum to 0.95, not 1"),
    ("0,0.5,0.5", "leaves the training part empty"),
    ("1,0,0", "leaves the validation part empty"),
])
def test_bad_splits_are_one_line(text, message):
    one_line(lambda: parse_split(text), f"--split {text}", message)


def test_split_fractions_and_a_part_too_short(tmp_path):
    path = write(tmp_path / "t.txt", "abcdefghij" * 10)
    corpus = load_corpus(path, split=parse_split("0.8,0.2,0"))
    assert (len(corpus.train), len(corpus.val), len(corpus.test)) == (80, 20, 0)
    one_line(lambda: load_corpus(path, split=(0.98, 0.01, 0.01)), "leaves the validation part", "1 characters")


def test_val_file_validates_and_the_whole_text_trains(tmp_path):
    train = write(tmp_path / "train.txt", "aaaa bbbb\n" * 5)
    val = write(tmp_path / "val.txt", "ab cz!\n")
    corpus = load_corpus(train, val_file=val)
    assert len(corpus.train) == 50 and len(corpus.test) == 0
    assert corpus.vocab.decode(corpus.val) == "ab cz!\n"   # its characters are in the vocabulary too
    assert corpus.vocab == Vocabulary.from_text("aaaa bbbb\nab cz!\n")
    one_line(lambda: load_corpus(train, val_file=tmp_path / "nope.txt"), "--val-file", "nope.txt")


def test_extending_a_vocabulary_keeps_its_ids(tmp_path):
    base = Vocabulary.from_text("abc\n")
    path = write(tmp_path / "new.txt", "cab\nxyz\n")
    corpus = load_corpus(path, split=(0.5, 0.5, 0), vocab=base, extend=True)
    assert corpus.new_symbols == ("x", "y", "z") and corpus.vocab.symbols[:4] == base.symbols
    ids = np.concatenate([corpus.train, corpus.val])
    assert corpus.vocab.decode(ids) == "cab\nxyz\n" and ids[0] == base.encode("c")[0]
    one_line(lambda: load_corpus(path, vocab=base), "does not contain")   # without extend: exactly the vocabulary


def test_permission_errors_are_one_line_even_as_root(tmp_path, monkeypatch):
    import rnnlab.data.sources as sources

    secret = write(tmp_path / "box" / "secret.txt", "x\n")
    write(tmp_path / "box" / "other.txt", "y\n")
    real_access = os.access
    monkeypatch.setattr("rnnlab.data.text.os.access", lambda p, mode: False if str(p) == str(secret)
                        else real_access(p, mode))
    one_line(lambda: find_text_files([secret]), "secret.txt", "permission denied")

    def denied(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(sources, "file_digest", denied)
    one_line(lambda: text_source([tmp_path / "box"], cache_dir=tmp_path / "c"), "cannot read", "Permission denied")
    monkeypatch.setattr(sources.os, "scandir", denied)
    one_line(lambda: find_text_files([tmp_path / "box"]), "cannot read the folder", "box")
