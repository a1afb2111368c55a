"""The IDX reader and writer: round trips of every type, gzip by content, and every broken file."""
from __future__ import annotations

import gzip

import numpy as np
import pytest

from rnnlab.data.idx import load_idx_pair, read_idx, write_idx
from rnnlab.errors import RnnlabError

ALL_DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]


def idx_bytes(type_code: int, shape, payload: bytes) -> bytes:
    """An IDX file built by hand from the spec, independent of write_idx."""
    header = bytes([0, 0, type_code, len(shape)]) + b"".join(size.to_bytes(4, "big") for size in shape)
    return header + payload


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("name", ["values-idx", "values-idx.gz"])
def test_round_trip_every_type_gzipped_and_raw(tmp_path, dtype, name):
    rng = np.random.default_rng(0)
    array = (rng.standard_normal((3, 4, 5)) * 100).astype(dtype)
    path = write_idx(tmp_path / name, array)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")
    result = read_idx(path)
    assert result.dtype == np.dtype(dtype) and result.dtype.isnative
    assert result.shape == (3, 4, 5)
    np.testing.assert_array_equal(result, array)
    result[0, 0, 0] = 1  # callers may normalise in place


def test_reads_hand_built_big_endian_file(tmp_path):
    # int16 values 1, -2, 258 big-endian in shape (3,): proves byte order and type code 0x0B.
    path = tmp_path / "hand-built"
    path.write_bytes(idx_bytes(0x0B, (3,), b"\x00\x01\xff\xfe\x01\x02"))
    np.testing.assert_array_equal(read_idx(path), np.array([1, -2, 258], dtype=np.int16))


def test_writer_matches_the_spec_byte_for_byte(tmp_path):
    array = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.uint8)
    path = write_idx(tmp_path / "raw", array)
    assert path.read_bytes() == idx_bytes(0x08, (2, 3), bytes([1, 2, 3, 4, 5, 6]))


def test_gzip_detected_by_content_not_name(tmp_path):
    array = np.arange(6, dtype=np.uint8).reshape(1, 2, 3)
    gzipped_without_suffix = write_idx(tmp_path / "images-idx3-ubyte", array, compress=True)
    raw_with_gz_suffix = write_idx(tmp_path / "images-idx3-ubyte.gz", array, compress=False)
    np.testing.assert_array_equal(read_idx(gzipped_without_suffix), array)
    np.testing.assert_array_equal(read_idx(raw_with_gz_suffix), array)


def test_gzip_is_reproducible(tmp_path):
    array = np.arange(10, dtype=np.uint8)
    assert write_idx(tmp_path / "a.gz", array).read_bytes() == write_idx(tmp_path / "b.gz", array).read_bytes()


@pytest.mark.parametrize("compress", [False, True])
def test_truncated_data_names_file_and_byte_counts(tmp_path, compress):
    content = idx_bytes(0x08, (2, 3, 4), bytes(24))[:-5]  # 19 of the 24 data bytes
    path = tmp_path / "short-idx"
    path.write_bytes(gzip.compress(content) if compress else content)
    with pytest.raises(RnnlabError) as caught:
        read_idx(path)
    message = str(caught.value)
    assert str(path) in message and "truncated" in message
    assert "24" in message and "19" in message


def test_truncated_gzip_stream(tmp_path):
    path = write_idx(tmp_path / "images.gz", np.arange(4000, dtype=np.int32))
    path.write_bytes(path.read_bytes()[:-20])  # cut into the deflate stream and trailer
    with pytest.raises(RnnlabError, match="truncated or corrupt gzip"):
        read_idx(path)


@pytest.mark.parametrize("compress", [False, True])
def test_too_long_names_expected_and_actual(tmp_path, compress):
    content = idx_bytes(0x08, (5,), bytes(5) + b"extra")
    path = tmp_path / "long-idx"
    path.write_bytes(gzip.compress(content) if compress else content)
    with pytest.raises(RnnlabError) as caught:
        read_idx(path)
    message = str(caught.value)
    assert str(path) in message and "too long" in message and "needs 5 bytes, got 10" in message


def test_header_promising_more_than_the_file_can_hold_does_not_allocate(tmp_path):
    path = tmp_path / "huge-header"
    path.write_bytes(idx_bytes(0x0E, (60000, 60000, 60000), bytes(16)))  # would be 1.7 PB
    with pytest.raises(RnnlabError, match="truncated IDX data.*got 16"):
        read_idx(path)


@pytest.mark.parametrize("magic", [b"\x00\x00\x07\x01", b"\x01\x00\x08\x01", b"\x00\x00\x08\x00", b"PK\x03\x04"])
def test_wrong_magic(tmp_path, magic):
    path = tmp_path / "not-idx"
    path.write_bytes(magic + bytes(8))
    with pytest.raises(RnnlabError, match="not an IDX file: magic number") as caught:
        read_idx(path)
    assert str(path) in str(caught.value)


def test_text_file_is_not_idx(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_text("<html>404 Not Found</html>")  # what a bad mirror returns
    with pytest.raises(RnnlabError, match="not an IDX file"):
        read_idx(path)


@pytest.mark.parametrize("content", [b"", b"\x00\x00"])
def test_too_short_for_a_header(tmp_path, content):
    path = tmp_path / "stub"
    path.write_bytes(content)
    with pytest.raises(RnnlabError, match="too short for an IDX file"):
        read_idx(path)


def test_truncated_dimensions(tmp_path):
    path = tmp_path / "dims"
    path.write_bytes(b"\x00\x00\x08\x03" + (2).to_bytes(4, "big"))
    with pytest.raises(RnnlabError, match="truncated IDX header: expected 12 bytes"):
        read_idx(path)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(RnnlabError, match="no such file"):
        read_idx(tmp_path / "absent.gz")
    with pytest.raises(RnnlabError, match="is a directory"):
        read_idx(tmp_path)


def test_write_rejects_types_idx_cannot_hold(tmp_path):
    with pytest.raises(TypeError, match="IDX cannot hold dtype int64"):
        write_idx(tmp_path / "x", np.arange(3))
    with pytest.raises(ValueError, match="1 to 255 dimensions"):
        write_idx(tmp_path / "x", np.uint8(3))
    assert list(tmp_path.iterdir()) == []


def test_load_idx_pair(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    images_path = write_idx(tmp_path / "images.gz", images)
    labels_path = write_idx(tmp_path / "labels.gz", np.array([9, 0], dtype=np.uint8))
    loaded_images, loaded_labels = load_idx_pair(images_path, labels_path)
    np.testing.assert_array_equal(loaded_images, images)
    assert loaded_labels.dtype == np.int64 and loaded_labels.tolist() == [9, 0]


def test_load_idx_pair_count_mismatch_names_both_files_and_counts(tmp_path):
    images_path = write_idx(tmp_path / "images.gz", np.zeros((3, 2, 2), dtype=np.uint8))
    labels_path = write_idx(tmp_path / "labels.gz", np.zeros(4, dtype=np.uint8))
    with pytest.raises(RnnlabError) as caught:
        load_idx_pair(images_path, labels_path)
    message = str(caught.value)
    assert str(images_path) in message and str(labels_path) in message
    assert "3 images" in message and "4 labels" in message


def test_load_idx_pair_checks_ranks(tmp_path):
    images_path = write_idx(tmp_path / "images.gz", np.zeros((3, 2, 2), dtype=np.uint8))
    labels_2d = write_idx(tmp_path / "labels.gz", np.zeros((3, 1), dtype=np.uint8))
    with pytest.raises(RnnlabError, match="expected 1-D integer labels"):
        load_idx_pair(images_path, labels_2d)
    with pytest.raises(RnnlabError, match=r"expected images of shape \(N, rows, cols\)"):
        load_idx_pair(labels_2d, images_path)
    float_labels = write_idx(tmp_path / "float-labels.gz", np.zeros(3, dtype=np.float32))
    with pytest.raises(RnnlabError, match="expected 1-D integer labels"):
        load_idx_pair(images_path, float_labels)


def test_real_fashion_mnist_test_split(shared_data):
    directory = shared_data / "fashion-mnist"
    images, labels = load_idx_pair(directory / "t10k-images-idx3-ubyte.gz", directory / "t10k-labels-idx1-ubyte.gz")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,) and labels.dtype == np.int64
    assert np.bincount(labels).tolist() == [1000] * 10  # the test split is balanced
    assert labels[:5].tolist() == [9, 2, 1, 1, 6]  # ankle boot, pullover, trouser, trouser, shirt
    assert 0 < images.mean() < 255 and images.max() == 255
