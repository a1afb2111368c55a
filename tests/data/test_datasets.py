"""Finding and downloading datasets: the search order, and downloads from a local HTTP server only.

Every test runs with $RNNLAB_DATA unset, the cache and the system directories inside tmp_path and
proxies off, so nothing outside tmp_path is read or written and nothing leaves 127.0.0.1.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import http.server
import socket
import threading

import numpy as np
import pytest

from rnnlab.data import datasets
from rnnlab.data.datasets import FILE_NAMES, download_file, load_dataset, locate_dataset
from rnnlab.data.idx import write_idx
from rnnlab.errors import RnnlabError


def write_tiny_dataset(directory, train_count=3, test_count=2, seed=0, compress=True):
    """Four small MNIST-style files; returns what they hold."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train_images": rng.integers(0, 256, (train_count, 4, 5), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, train_count, dtype=np.uint8),
        "test_images": rng.integers(0, 256, (test_count, 4, 5), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, test_count, dtype=np.uint8),
    }
    for role, array in arrays.items():
        name = FILE_NAMES[role] if compress else FILE_NAMES[role].removesuffix(".gz")
        write_idx(directory / name, array)
    return arrays


def assert_holds(dataset, arrays):
    for role, array in arrays.items():
        np.testing.assert_array_equal(getattr(dataset, role), array)
    assert dataset.train_labels.dtype == np.int64 and dataset.train_images.dtype == np.uint8


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Point every place the loader looks at tmp_path, and keep urllib off any proxy."""
    for variable in ("RNNLAB_DATA", "RNNLAB_DATASET_MIRROR", "http_proxy", "HTTP_PROXY", "https_proxy",
                     "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setitem(datasets.SYSTEM_DATASET_DIRS, "fashion-mnist", [tmp_path / "usr-share-fashion-mnist"])
    monkeypatch.setitem(datasets.SYSTEM_DATASET_DIRS, "mnist", [])
    return tmp_path


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A local HTTP server on 127.0.0.1 serving tmp_path/mirror; $RNNLAB_DATASET_MIRROR points at it."""
    root = tmp_path / "mirror"
    root.mkdir()

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    monkeypatch.setenv("RNNLAB_DATASET_MIRROR", f"http://127.0.0.1:{server.server_address[1]}/{{name}}/")
    try:
        yield root
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def publish(mirror_root, name, monkeypatch, **arrays_kwargs):
    """Put a tiny dataset on the mirror and make its digests the ones the loader expects."""
    arrays = write_tiny_dataset(mirror_root / name, **arrays_kwargs)
    digests = {gz_name: hashlib.sha256((mirror_root / name / gz_name).read_bytes()).hexdigest()
               for gz_name in FILE_NAMES.values()}
    monkeypatch.setitem(datasets.DATASETS, name, dataclasses.replace(datasets.DATASETS[name], sha256=digests))
    return arrays


def leftovers(directory):
    return sorted(path.name for path in directory.rglob("*")) if directory.exists() else []


# --- finding files -----------------------------------------------------------------------------

def test_explicit_data_dir_gzipped_or_raw(tmp_path):
    arrays = write_tiny_dataset(tmp_path / "mine", compress=False)
    dataset = load_dataset("fashion-mnist", data_dir=tmp_path / "mine", download=False)
    assert_holds(dataset, arrays)
    assert dataset.name == "fashion-mnist" and dataset.directory == tmp_path / "mine"
    assert dataset.classes[9] == "Ankle boot" and len(dataset.classes) == 10


def test_explicit_data_dir_missing_files_is_an_error_not_a_fallback(tmp_path, monkeypatch):
    write_tiny_dataset(tmp_path / "elsewhere")
    monkeypatch.setenv("RNNLAB_DATA", str(tmp_path / "elsewhere"))  # would satisfy the search
    partial = tmp_path / "partial"
    write_tiny_dataset(partial)
    (partial / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(RnnlabError) as caught:
        load_dataset("mnist", data_dir=partial)
    message = str(caught.value)
    assert str(partial) in message and "t10k-labels-idx1-ubyte.gz" in message
    assert "train-images" not in message  # only the missing file is named
    with pytest.raises(RnnlabError, match="no such directory"):
        load_dataset("mnist", data_dir=tmp_path / "absent")


def test_rnnlab_data_directly_or_in_named_subdirectory(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNLAB_DATA", str(tmp_path / "data"))
    in_subdir = write_tiny_dataset(tmp_path / "data" / "mnist", seed=1)
    assert_holds(load_dataset("mnist", download=False), in_subdir)
    directly = write_tiny_dataset(tmp_path / "data", seed=2)
    assert_holds(load_dataset("mnist", download=False), directly)  # the directory itself comes first


def test_search_order_data_env_then_cache_then_system(tmp_path, monkeypatch):
    system = write_tiny_dataset(tmp_path / "usr-share-fashion-mnist", seed=3)
    assert_holds(load_dataset("fashion-mnist", download=False), system)
    cached = write_tiny_dataset(tmp_path / "xdg-cache" / "rnnlab" / "datasets" / "fashion-mnist", seed=4)
    assert_holds(load_dataset("fashion-mnist", download=False), cached)
    monkeypatch.setenv("RNNLAB_DATA", str(tmp_path / "data"))
    from_env = write_tiny_dataset(tmp_path / "data" / "fashion-mnist", seed=5)
    assert_holds(load_dataset("fashion-mnist", download=False), from_env)


def test_explicit_cache_dir_is_the_root_of_per_dataset_folders(tmp_path):
    arrays = write_tiny_dataset(tmp_path / "my-cache" / "mnist")
    assert locate_dataset("mnist") is None
    assert_holds(load_dataset("mnist", cache_dir=tmp_path / "my-cache", download=False), arrays)


def test_incomplete_directory_is_skipped_in_the_search(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNLAB_DATA", str(tmp_path / "data"))
    write_tiny_dataset(tmp_path / "data")
    (tmp_path / "data" / "train-images-idx3-ubyte.gz").unlink()
    system = write_tiny_dataset(tmp_path / "usr-share-fashion-mnist", seed=6)
    assert_holds(load_dataset("fashion-mnist", download=False), system)


def test_nothing_found_and_download_off_says_where_it_looked_and_what_provides_it(tmp_path):
    with pytest.raises(RnnlabError) as caught:
        load_dataset("fashion-mnist", download=False)
    message = str(caught.value)
    assert "\n" not in message
    assert str(tmp_path / "usr-share-fashion-mnist") in message
    assert "apt install dataset-fashion-mnist" in message and "--data-dir DIR" in message
    assert "RNNLAB_DATA" in message


def test_unknown_dataset_name():
    with pytest.raises(RnnlabError, match="unknown dataset 'cifar'; choose one of fashion-mnist, mnist"):
        load_dataset("cifar")


def test_labels_outside_the_class_range(tmp_path):
    write_tiny_dataset(tmp_path / "bad")
    write_idx(tmp_path / "bad" / "t10k-labels-idx1-ubyte.gz", np.array([3, 10], dtype=np.uint8))
    with pytest.raises(RnnlabError, match=r"labels must lie in 0..9 for mnist, found 3..10"):
        load_dataset("mnist", data_dir=tmp_path / "bad")


def test_real_fashion_mnist_through_the_system_directory(shared_data, monkeypatch):
    # The shared files are Debian's dataset-fashion-mnist package contents: found like an installed package.
    monkeypatch.setitem(datasets.SYSTEM_DATASET_DIRS, "fashion-mnist", [shared_data / "fashion-mnist"])
    files = locate_dataset("fashion-mnist")
    assert files["test_images"] == shared_data / "fashion-mnist" / "t10k-images-idx3-ubyte.gz"
    dataset = load_dataset("fashion-mnist", download=False)
    assert dataset.train_images.shape == (60000, 28, 28) and dataset.test_images.shape == (10000, 28, 28)
    assert dataset.test_labels.min() == 0 and dataset.test_labels.max() == 9
    assert dataset.classes == ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                               "Sneaker", "Bag", "Ankle boot")


# --- downloading from a local server ----------------------------------------------------------

def test_default_urls_are_the_published_locations(monkeypatch):
    monkeypatch.delenv("RNNLAB_DATASET_MIRROR", raising=False)
    assert datasets.dataset_url("fashion-mnist", "train-images-idx3-ubyte.gz") == (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/train-images-idx3-ubyte.gz")
    assert datasets.dataset_url("mnist", "train-images-idx3-ubyte.gz") == (
        "https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz")
    for spec in datasets.DATASETS.values():
        assert set(spec.sha256) == set(FILE_NAMES.values())
        assert all(len(digest) == 64 and int(digest, 16) >= 0 for digest in spec.sha256.values())


def test_download_lands_in_the_cache_and_loads(tmp_path, mirror, monkeypatch, capsys):
    arrays = publish(mirror, "fashion-mnist", monkeypatch)
    dataset = load_dataset("fashion-mnist")
    assert_holds(dataset, arrays)
    cache = tmp_path / "xdg-cache" / "rnnlab" / "datasets" / "fashion-mnist"
    assert dataset.directory == cache
    assert leftovers(cache) == sorted(FILE_NAMES.values())  # no temporary files left
    assert capsys.readouterr().err.count("rnnlab: downloading http://127.0.0.1:") == 4
    # Second load comes from the cache, with the server's files gone.
    for path in (mirror / "fashion-mnist").iterdir():
        path.unlink()
    assert_holds(load_dataset("fashion-mnist"), arrays)
    assert capsys.readouterr().err == ""


def test_download_fetches_only_the_missing_files(tmp_path, mirror, monkeypatch, capsys):
    arrays = publish(mirror, "mnist", monkeypatch)
    cache = tmp_path / "my-cache" / "mnist"
    cache.mkdir(parents=True)
    for gz_name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"):
        (cache / gz_name).write_bytes((mirror / "mnist" / gz_name).read_bytes())
    assert_holds(load_dataset("mnist", cache_dir=tmp_path / "my-cache"), arrays)
    downloaded = capsys.readouterr().err
    assert "t10k-images" in downloaded and "train-images" not in downloaded


def test_checksum_mismatch_leaves_nothing_behind(tmp_path, mirror, monkeypatch):
    publish(mirror, "fashion-mnist", monkeypatch)
    spec = datasets.DATASETS["fashion-mnist"]
    wrong = dict(spec.sha256, **{"train-labels-idx1-ubyte.gz": "0" * 64})
    monkeypatch.setitem(datasets.DATASETS, "fashion-mnist", dataclasses.replace(spec, sha256=wrong))
    with pytest.raises(RnnlabError) as caught:
        load_dataset("fashion-mnist")
    message = str(caught.value)
    actual = hashlib.sha256((mirror / "fashion-mnist" / "train-labels-idx1-ubyte.gz").read_bytes()).hexdigest()
    assert "SHA-256" in message and "0" * 64 in message and actual in message
    assert "/fashion-mnist/train-labels-idx1-ubyte.gz" in message and "http://127.0.0.1:" in message
    cache = tmp_path / "xdg-cache" / "rnnlab" / "datasets" / "fashion-mnist"
    # The good file before it stays; the bad one and its temporary file are gone.
    assert leftovers(cache) == ["train-images-idx3-ubyte.gz"]


def test_http_404_is_a_clear_error(tmp_path, mirror, monkeypatch):
    publish(mirror, "mnist", monkeypatch)
    (mirror / "mnist" / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(RnnlabError, match=r"download of http://127\.0\.0\.1:\d+/mnist/t10k-images-idx3-ubyte\.gz "
                                          r"failed: HTTP 404"):
        load_dataset("mnist")
    assert not any(name.endswith(".part") for name in leftovers(tmp_path / "xdg-cache"))


def test_server_down_gives_the_offline_message(tmp_path, monkeypatch):
    with socket.socket() as probe:  # a port that was free a moment ago, now closed: connection refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("RNNLAB_DATASET_MIRROR", f"http://127.0.0.1:{port}/")
    with pytest.raises(RnnlabError) as caught:
        load_dataset("fashion-mnist")
    message = str(caught.value)
    assert "\n" not in message and "unreachable" in message
    assert "apt install dataset-fashion-mnist" in message and "/usr-share-fashion-mnist" in message
    assert "--data-dir DIR" in message and "RNNLAB_DATA" in message
    assert leftovers(tmp_path / "xdg-cache" / "rnnlab" / "datasets" / "fashion-mnist") == []
    with pytest.raises(RnnlabError) as caught:
        load_dataset("mnist")
    assert "apt install" not in str(caught.value) and "--data-dir DIR" in str(caught.value)
    # the offline user is told which files, from where, and the mirror setting
    assert "t10k-labels-idx1-ubyte.gz" in str(caught.value) and "RNNLAB_DATASET_MIRROR" in str(caught.value)


def test_download_file_is_all_or_nothing(tmp_path, mirror):
    (mirror / "blob.bin").write_bytes(b"payload")
    port_url = datasets.dataset_url("mnist", "").rsplit("/mnist/", 1)[0]
    destination = tmp_path / "out" / "blob.bin"
    good = hashlib.sha256(b"payload").hexdigest()
    assert download_file(f"{port_url}/blob.bin", destination, good).read_bytes() == b"payload"
    with pytest.raises(RnnlabError, match="failed its SHA-256 check"):
        download_file(f"{port_url}/blob.bin", tmp_path / "out" / "other.bin", "f" * 64)
    assert leftovers(tmp_path / "out") == ["blob.bin"]


def test_unwritable_cache_is_a_clear_error(tmp_path, mirror, monkeypatch):
    publish(mirror, "mnist", monkeypatch)
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    with pytest.raises(RnnlabError, match="cannot write to"):
        load_dataset("mnist", cache_dir=blocker)


def test_the_other_datasets_files_are_recognised_not_trained_on_under_the_wrong_name(tmp_path, monkeypatch):
    arrays = write_tiny_dataset(tmp_path / "digits")
    digest = hashlib.sha256(arrays["test_labels"].astype(np.uint8).tobytes()).hexdigest()
    monkeypatch.setitem(datasets.TEST_LABELS_SHA256, "mnist", digest)  # pretend these are MNIST's labels
    assert load_dataset("mnist", data_dir=tmp_path / "digits", download=False).name == "mnist"
    with pytest.raises(RnnlabError, match="digits: holds mnist, not fashion-mnist .* pass --dataset mnist"):
        load_dataset("fashion-mnist", data_dir=tmp_path / "digits", download=False)


def test_real_fashion_mnist_files_asked_for_as_mnist(shared_data):
    with pytest.raises(RnnlabError, match="holds fashion-mnist, not mnist"):
        load_dataset("mnist", data_dir=shared_data / "fashion-mnist", download=False)
