"""Reading text files and the Vocabulary: sorting, round trips, dtypes, unknown symbols, every bad input."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from rnnlab.data import Vocabulary, read_text, smallest_id_dtype
from rnnlab.errors import RnnlabError

KOREAN = "옛날 옛적에 호랑이가 살았어요.\n호랑이는 떡을 좋아했어요!\r\n"
EMOJI = "fire 🔥 and ice 🧊 — 😀\n"


def test_vocabulary_is_sorted_and_unique():
    vocab = Vocabulary.from_text("banana band")
    assert vocab.symbols == (" ", "a", "b", "d", "n")
    assert Vocabulary(["n", "a", "a", "b", "d", " "]) == vocab
    assert [vocab.decode_one(i) for i in range(len(vocab))] == sorted(set("banana band"))


def test_vocabulary_is_the_same_in_a_fresh_process():
    # Sorted by code point, not by set iteration order (which depends on the process's hash seed).
    text = KOREAN + EMOJI + "the quick brown fox"
    script = ("import sys, json; from rnnlab.data import Vocabulary; "
              "print(json.dumps(Vocabulary.from_text(sys.argv[1]).to_config()))")
    configs = []
    for seed in ("1", "2"):
        result = subprocess.run([sys.executable, "-c", script, text], capture_output=True, text=True, check=True,
                                env={**os.environ, "PYTHONHASHSEED": seed, "PYTHONIOENCODING": "utf-8"})
        configs.append(json.loads(result.stdout))
    assert configs[0] == configs[1] == Vocabulary.from_text(text).to_config()


@pytest.mark.parametrize("text", ["hello, world", KOREAN, EMOJI, KOREAN + EMOJI + "a\r\nb\tc"])
def test_round_trip(text):
    vocab = Vocabulary.from_text(text)
    ids = vocab.encode(text)
    assert ids.dtype == vocab.dtype and ids.shape == (len(text),)
    assert vocab.decode(ids) == text
    assert "".join(vocab.decode_one(i) for i in ids) == text
    assert vocab.decode_bytes(ids) == text.encode("utf-8")


def test_ids_are_positions_in_the_sorted_symbols():
    text = KOREAN + EMOJI
    vocab = Vocabulary.from_text(text)
    expected = [sorted(set(text)).index(char) for char in text]
    assert vocab.encode(text).tolist() == expected


def test_astral_code_points_are_one_symbol():
    vocab = Vocabulary.from_text("😀a")
    assert vocab.symbols == ("a", "😀") and len(vocab.encode("😀😀")) == 2


def test_smallest_dtype():
    # ids run 0 .. len-1, so 256 symbols still fit uint8 (byte mode over all bytes is exactly that case)
    assert Vocabulary([chr(c) for c in range(255)]).dtype == np.uint8
    assert Vocabulary([chr(c) for c in range(256)]).dtype == np.uint8
    assert Vocabulary([chr(c) for c in range(257)]).dtype == np.uint16
    assert Vocabulary([chr(c) for c in range(0x10000, 0x10000 + 65536)]).dtype == np.uint16
    assert Vocabulary([chr(c) for c in range(0x10000, 0x10000 + 65537)]).dtype == np.uint32
    assert smallest_id_dtype(1) == np.uint8
    big = "".join(chr(c) for c in range(0x4E00, 0x4E00 + 300))
    assert Vocabulary.from_text(big).encode(big).dtype == np.uint16


def test_unknown_symbols():
    vocab = Vocabulary.from_text("호랑이 cat")
    assert vocab.unknown("호랑이 dog!") == ["!", "d", "g", "o"]
    assert vocab.unknown("cat") == []
    assert vocab.encode("c!a?t", unknown="skip").tolist() == vocab.encode("cat").tolist()
    with pytest.raises(RnnlabError) as error:
        vocab.encode("떡 cat 😀")
    message = str(error.value)
    assert "'떡'" in message and "'😀'" in message and "2 characters" in message and "\n" not in message
    with pytest.raises(ValueError):
        vocab.encode("cat", unknown="ignore")


def test_unknown_prime_is_named():
    vocab = Vocabulary.from_text("호랑이가 살았어요")
    with pytest.raises(RnnlabError) as error:
        vocab.encode("호랑이와 곰", where="the prime")
    message = str(error.value)
    assert message.startswith("the prime has 2 characters") and "'곰', '와'" in message and "\n" not in message


def test_config_round_trip_through_json():
    for vocab in (Vocabulary.from_text(KOREAN + EMOJI + '"\\\x00'), Vocabulary.from_text(b"\x00\xff\x80ab")):
        restored = Vocabulary.from_config(json.loads(json.dumps(vocab.to_config())))
        assert restored == vocab and restored.symbols == vocab.symbols and restored.byte_mode == vocab.byte_mode


def test_damaged_config_is_a_user_error():
    with pytest.raises(RnnlabError, match="damaged"):
        Vocabulary.from_config({"byte_mode": False})
    with pytest.raises(RnnlabError, match="damaged"):
        Vocabulary.from_config({"byte_mode": False, "symbols": "aab", "size": 3})
    with pytest.raises(RnnlabError, match="damaged"):
        Vocabulary.from_config({"byte_mode": True, "symbols": [1, 300]})


def test_extended_vocabulary_keeps_old_ids_and_appends_new_symbols():
    old = Vocabulary.from_text("hello world")
    grown = old.extended("hello, wörld! 세")
    assert grown.symbols[:len(old)] == old.symbols
    assert grown.symbols[len(old):] == ("!", ",", "ö", "세")
    text = "hello, wörld! 세 hello"
    ids = grown.encode(text)
    assert grown.decode(ids) == text and grown.unknown(text) == []
    assert grown.encode("hello world").tolist() == old.encode("hello world").tolist()
    assert grown.encode("!").tolist() == [len(old)]
    assert "세" in grown and "x" not in grown and grown.unknown("xyz!") == ["x", "y", "z"]
    assert grown.encode("a!b", unknown="skip").tolist() == [len(old)]
    assert old.extended("lo") == old and old.extended("!") != Vocabulary.from_text("hello world!")
    restored = Vocabulary.from_config(json.loads(json.dumps(grown.to_config())))
    assert restored == grown and restored.symbols == grown.symbols
    raw = Vocabulary.from_text(b"ba").extended(b"\x00a")
    assert raw.symbols == (97, 98, 0) and raw.encode(b"\x00ab").tolist() == [2, 0, 1]


def test_byte_mode_vocabulary():
    data = "café, naïve".encode("latin-1")
    vocab = Vocabulary.from_text(data)
    assert vocab.byte_mode and vocab.symbols == tuple(sorted(set(data)))
    ids = vocab.encode(data)
    assert vocab.decode_bytes(ids) == data
    assert vocab.decode(ids) == "café, naïve"  # byte mode decodes each byte as its Latin-1 character
    assert vocab.encode("caf").tolist() == vocab.encode(b"caf").tolist()  # str primes: their UTF-8 bytes
    assert vocab.unknown(b"cafe\x00") == [0]
    assert 233 in vocab and 0 not in vocab


def test_contains_and_repr():
    vocab = Vocabulary.from_text("ab세")
    assert "세" in vocab and "c" not in vocab and "ab" not in vocab
    assert "3 symbols" in repr(vocab)


# --- read_text: good files ---------------------------------------------------------------------------

def test_read_utf8_korean_and_keeps_crlf(tmp_path):
    path = tmp_path / "story.txt"
    path.write_bytes(KOREAN.encode("utf-8"))
    text = read_text(path)
    assert text == KOREAN and "\r\n" in text


def test_read_latin1_with_encoding_and_byte_mode(tmp_path):
    path = tmp_path / "latin.txt"
    path.write_bytes("Ça va, señor?\n".encode("latin-1"))
    assert read_text(path, encoding="latin-1") == "Ça va, señor?\n"
    assert read_text(path, encoding="LATIN1") == "Ça va, señor?\n"
    assert read_text(path, byte_mode=True) == "Ça va, señor?\n".encode("latin-1")


def test_read_utf16_with_encoding(tmp_path):
    path = tmp_path / "wide.txt"
    path.write_bytes(KOREAN.encode("utf-16"))
    assert read_text(path, encoding="utf-16") == KOREAN


# --- read_text: every bad input is one line naming the file and what to do ------------------------------

def _error(path, **options) -> str:
    with pytest.raises(RnnlabError) as error:
        read_text(path, **options)
    message = str(error.value)
    assert "\n" not in message
    return message


def test_missing_file(tmp_path):
    message = _error(tmp_path / "nope.txt")
    assert "not found" in message and "nope.txt" in message


def test_directory(tmp_path):
    message = _error(tmp_path)
    assert "directory" in message and str(tmp_path) in message


def test_empty_file(tmp_path):
    (tmp_path / "empty.txt").write_bytes(b"")
    message = _error(tmp_path / "empty.txt")
    assert "empty" in message and "empty.txt" in message


@pytest.mark.skipif(sys.platform == "win32" or (hasattr(os, "geteuid") and os.geteuid() == 0),
                    reason="root reads files regardless of permissions")
def test_unreadable_file(tmp_path):
    path = tmp_path / "secret.txt"
    path.write_text("x")
    path.chmod(0)
    try:
        message = _error(path)
        assert "permission" in message and "secret.txt" in message
    finally:
        path.chmod(0o644)


def test_binary_file_with_nul_bytes(tmp_path):
    path = tmp_path / "image.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    message = _error(path, encoding="latin-1")  # latin-1 decodes anything: the binary check must catch it
    assert "binary" in message and "image.png" in message


def test_mostly_control_characters_is_binary(tmp_path):
    path = tmp_path / "blob.bin"
    path.write_bytes(bytes([1, 2, 3, 4, 5, 6, 7, 8, 14, 15]) * 50 + b"some text")
    message = _error(path)
    assert "binary" in message and "blob.bin" in message


def test_utf16_read_as_utf8_is_reported(tmp_path):
    path = tmp_path / "wide.txt"
    path.write_bytes("hello".encode("utf-16-le"))
    message = _error(path)
    assert "wide.txt" in message and ("binary" in message) and "--encoding" in message


def test_undecodable_byte_names_offset_and_suggests_encoding_or_bytes(tmp_path):
    path = tmp_path / "latin.txt"
    path.write_bytes(b"plain ascii then caf\xe9 ok")
    message = _error(path)
    assert "latin.txt" in message and "0xe9" in message and "byte offset 20" in message
    assert "--encoding" in message and "--bytes" in message


def test_unknown_encoding(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("abc")
    message = _error(path, encoding="no-such-codec")
    assert "no-such-codec" in message and "--encoding" in message


def test_unreadable_file_message(tmp_path, monkeypatch):
    # The same check as above, made to run as root too: the permission test is os.access.
    import rnnlab.data.text as text_module

    path = tmp_path / "secret.txt"
    path.write_text("x")
    monkeypatch.setattr(text_module.os, "access", lambda *args: False)
    message = _error(path)
    assert "permission" in message and "secret.txt" in message


def test_binary_file_that_is_not_utf8_says_binary_not_try_another_encoding(tmp_path):
    # an executable fails UTF-8 decoding before the binary check would see it: still called binary
    path = tmp_path / "program"
    path.write_bytes(b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x03\x00>\x00\x01\x00\x00\x00\xd0\xff")
    message = _error(path)
    assert "program looks like a binary file (NUL byte at byte offset 7)" in message and "--bytes" in message


def test_windows_1252_text_gets_cp1252_suggested(tmp_path):
    path = tmp_path / "windows.txt"
    path.write_bytes("\u201cquoted\u201d caf\u00e9".encode("cp1252"))
    message = _error(path)
    assert "byte 0x93 at byte offset 0" in message and "--encoding cp1252" in message and "--bytes" in message
    assert read_text(path, encoding="cp1252") == "\u201cquoted\u201d caf\u00e9"
