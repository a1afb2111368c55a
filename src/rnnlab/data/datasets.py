"""Finding, downloading and loading MNIST and Fashion-MNIST.

:func:`load_dataset` looks for the four standard files (gzipped or not) in this order, and uses
the first directory that holds all four:

1. ``data_dir``, when given (the files in it, or in ``data_dir/<name>/``). If they are not there
   this is an error: an explicit directory is never silently replaced by another.
2. ``$RNNLAB_DATA`` (the files in it, or in ``$RNNLAB_DATA/<name>/``).
3. The cache, ``<cache_dir>/<name>/``; ``cache_dir`` defaults to ``$XDG_CACHE_HOME/rnnlab/datasets``
   or ``~/.cache/rnnlab/datasets``.
4. The system directories in :data:`SYSTEM_DATASET_DIRS` (Debian's ``dataset-fashion-mnist``
   package installs Fashion-MNIST in ``/usr/share/datasets/fashion-mnist``).

When none holds them and ``download`` is true, the missing files are fetched into the cache
from the dataset's published location (or from ``$RNNLAB_DATASET_MIRROR``), each streamed into a
temporary file beside its final name, checked against its published SHA-256, then renamed into
place, so the cache never holds a partial or corrupt file. Offline, the error says which package,
directory or setting would provide the files.

>>> sorted(DATASETS)
['fashion-mnist', 'mnist']
>>> DATASETS["fashion-mnist"].classes[:3]
('T-shirt/top', 'Trouser', 'Pullover')
"""
from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import RnnlabError
from .idx import load_idx_pair

# The four files of an MNIST-style dataset, by role, under their distributed (gzipped) names.
FILE_NAMES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}

MIRROR_ENV = "RNNLAB_DATASET_MIRROR"
DATA_ENV = "RNNLAB_DATA"
DOWNLOAD_TIMEOUT_SECONDS = 30.0
_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset is published and how to check what arrives."""

    name: str
    base_url: str  # the published directory; each file is base_url + file name
    sha256: dict  # file name -> SHA-256 hex digest of the published (gzipped) file
    classes: tuple  # class names, index = label
    apt_package: str | None = None  # a Debian package that installs the files, if any


DATASETS = {
    "mnist": DatasetSpec(
        name="mnist",
        # PyTorch's mirror (torchvision.datasets.MNIST.mirrors[0]); yann.lecun.com no longer serves them reliably.
        base_url="https://ossci-datasets.s3.amazonaws.com/mnist/",
        # SHA-256 of the published files, from TensorFlow Datasets' tensorflow_datasets/url_checksums/mnist.txt
        # (same bytes as on PyTorch's mirror: torchvision's MD5s f68b3c2d..., d53e105e..., 9fb629c4...,
        # ec29112d... name the same files, byte sizes 9912422, 28881, 1648877, 4542).
        sha256={
            "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        },
        classes=tuple(str(digit) for digit in range(10)),
    ),
    "fashion-mnist": DatasetSpec(
        name="fashion-mnist",
        base_url="http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        # SHA-256 of the published files, from TensorFlow Datasets' tensorflow_datasets/url_checksums/
        # fashion_mnist.txt (byte sizes 26421880, 29515, 4422102, 5148; torchvision's MD5s 8d4fb7e6...,
        # 25c81989..., bef4ecab..., bb300cfd... name the same files). Debian's dataset-fashion-mnist ships
        # the same images re-gzipped (24 bytes shorter, no file name in the gzip header), so its files have
        # other digests; files found on disk are validated as IDX, only downloads are checked against these.
        sha256={
            "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        },
        classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                 "Ankle boot"),
        apt_package="dataset-fashion-mnist",
    ),
}

# SHA-256 of a dataset's 10,000 test labels as bytes (uint8): names the dataset whatever the compression,
# so pointing --dataset mnist at Fashion-MNIST's files (the same file names) is caught. (MNIST's files are
# recognised by the published digest of t10k-labels-idx1-ubyte.gz in DATASETS.)
TEST_LABELS_SHA256 = {"fashion-mnist": "3d0e6c6ea990b53b6f8f500a41cac93881d981b315f84578b7d915342ade01e9"}


def _check_is_dataset(name: str, labels_path: Path, labels: np.ndarray) -> None:
    """RnnlabError when the test labels found for ``name`` are another known dataset's."""
    payload_digest = hashlib.sha256(labels.astype(np.uint8).tobytes()).hexdigest()
    file_digest = hashlib.sha256(labels_path.read_bytes()).hexdigest() if labels_path.suffix == ".gz" else None
    for other, spec in DATASETS.items():
        if other != name and (payload_digest == TEST_LABELS_SHA256.get(other)
                              or file_digest == spec.sha256[FILE_NAMES["test_labels"]]):
            raise RnnlabError(f"{labels_path.parent}: holds {other}, not {name} (its test labels are {other}'s); "
                              f"pass --dataset {other}, or point --data-dir at the {name} files")


# Directories that system packages install datasets into, by dataset name (tests point these elsewhere).
SYSTEM_DATASET_DIRS = {
    "mnist": [],
    "fashion-mnist": [Path("/usr/share/datasets/fashion-mnist")],
}


@dataclass
class Dataset:
    """An image-classification dataset in memory.

    Attributes:
        name: ``"mnist"`` or ``"fashion-mnist"``.
        train_images: ``uint8`` array of shape ``(60000, 28, 28)`` for the full datasets.
        train_labels: ``int64`` array of shape ``(60000,)``, values in ``0 .. len(classes) - 1``.
        test_images: ``uint8`` array of shape ``(10000, 28, 28)``.
        test_labels: ``int64`` array of shape ``(10000,)``.
        classes: the class names; ``classes[label]`` names a label.
        directory: where the files were read from.
    """

    name: str
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    classes: tuple
    directory: Path

    def __repr__(self) -> str:
        return (f"Dataset(name={self.name!r}, train={self.train_images.shape}, test={self.test_images.shape}, "
                f"classes={len(self.classes)}, directory='{self.directory}')")


def _spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise RnnlabError(f"unknown dataset {name!r}; choose one of {', '.join(sorted(DATASETS))}")
    return DATASETS[name]


def default_cache_dir() -> Path:
    """The root of the download cache: ``$XDG_CACHE_HOME/rnnlab/datasets`` or ``~/.cache/rnnlab/datasets``."""
    cache_home = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache_home) / "rnnlab" / "datasets"


def _existing_file(directory: Path, gz_name: str) -> Path | None:
    """The file for ``gz_name`` in ``directory``, gzipped or decompressed (without ``.gz``), if present."""
    for candidate in (directory / gz_name, directory / gz_name.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    return None


def _complete_files(directory: Path) -> dict | None:
    """Role -> path for all four files in ``directory``, or ``None`` when any is missing."""
    files = {role: _existing_file(directory, gz_name) for role, gz_name in FILE_NAMES.items()}
    return files if all(files.values()) else None


def _in_dir_or_named_subdir(directory: Path, name: str) -> dict | None:
    return _complete_files(directory) or _complete_files(directory / name)


def locate_dataset(name: str, data_dir=None, cache_dir=None) -> dict | None:
    """Find the four files of dataset ``name`` without downloading anything.

    Searches ``data_dir`` (only it, when given), then ``$RNNLAB_DATA``, the cache and the system
    directories, as described in the module docstring.

    Returns:
        ``{"train_images": Path, "train_labels": Path, "test_images": Path, "test_labels": Path}``,
        or ``None`` when no searched directory holds all four.

    Raises:
        RnnlabError: ``name`` is unknown, or ``data_dir`` is given but does not hold the files.
    """
    _spec(name)
    if data_dir is not None:
        data_dir = Path(data_dir).expanduser()
        if not data_dir.is_dir():
            raise RnnlabError(f"data directory {data_dir}: no such directory; pass the directory that holds the "
                              f"{name} IDX files")
        found = _in_dir_or_named_subdir(data_dir, name)
        if found is None:
            missing = [gz_name for gz_name in FILE_NAMES.values()
                       if not (_existing_file(data_dir, gz_name) or _existing_file(data_dir / name, gz_name))]
            raise RnnlabError(f"data directory {data_dir} lacks {name} files {', '.join(missing)} (gzipped or not, "
                              f"in it or in {data_dir / name}); put all four there or leave the directory out")
        return found
    for directory in _search_dirs(name, cache_dir):
        found = _complete_files(directory)
        if found is not None:
            return found
    return None


def _search_dirs(name: str, cache_dir) -> list:
    """The directories searched when no ``data_dir`` is given, in order."""
    directories = []
    if os.environ.get(DATA_ENV):
        data_root = Path(os.environ[DATA_ENV]).expanduser()
        directories += [data_root, data_root / name]
    directories.append(_dataset_cache_dir(name, cache_dir))
    directories += [Path(directory) for directory in SYSTEM_DATASET_DIRS.get(name, [])]
    return directories


def _dataset_cache_dir(name: str, cache_dir) -> Path:
    return (Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()) / name


def dataset_url(name: str, file_name: str) -> str:
    """Where ``file_name`` of dataset ``name`` is downloaded from.

    ``$RNNLAB_DATASET_MIRROR`` replaces the published base URL; a ``{name}`` in it is replaced by the
    dataset name, so one mirror can serve both (``http://host/datasets/{name}/``).

    >>> dataset_url("mnist", "t10k-labels-idx1-ubyte.gz")
    'https://ossci-datasets.s3.amazonaws.com/mnist/t10k-labels-idx1-ubyte.gz'
    """
    base_url = os.environ.get(MIRROR_ENV) or _spec(name).base_url
    base_url = base_url.replace("{name}", name)
    return base_url.rstrip("/") + "/" + file_name


def _how_to_provide(name: str) -> str:
    spec = _spec(name)
    ways = []
    if spec.apt_package:
        system_dirs = ", ".join(str(directory) for directory in SYSTEM_DATASET_DIRS.get(name, []))
        ways.append(f"`apt install {spec.apt_package}` (installs {system_dirs})")
    ways.append(f"put the four files ({', '.join(FILE_NAMES.values())}, from {spec.base_url} or a copy) in "
                f"a directory and pass --data-dir DIR or set {DATA_ENV}=DIR")
    ways.append(f"set {MIRROR_ENV} to a reachable mirror")
    return "; or ".join(ways)


def download_file(url: str, destination, sha256: str, timeout: float = DOWNLOAD_TIMEOUT_SECONDS) -> Path:
    """Download ``url`` to ``destination``, checking its SHA-256; all or nothing.

    The bytes stream into a temporary file beside ``destination`` and are renamed into place only
    when their digest matches, so an interrupted or corrupt download leaves nothing behind.

    Raises:
        RnnlabError: the server answered with an HTTP error, the digest differs (the message gives the
            URL, expected and actual digests), or writing failed.
        urllib.error.URLError, OSError: the server could not be reached (no network, refused, timed
            out); :func:`load_dataset` turns these into a message saying how else to get the files.
    """
    destination = Path(destination)
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        file_descriptor, temporary_name = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.",
                                                           suffix=".part")
    except OSError as error:
        raise RnnlabError(f"cannot write to {destination.parent} ({error.strerror or error}); choose another cache "
                          f"directory or download elsewhere and pass --data-dir DIR") from None
    temporary = Path(temporary_name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(file_descriptor, "wb") as handle:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response:
                    while chunk := response.read(_CHUNK_BYTES):
                        digest.update(chunk)
                        handle.write(chunk)
            except urllib.error.HTTPError as error:
                raise RnnlabError(f"download of {url} failed: HTTP {error.code} {error.reason}; check the URL "
                                  f"or ${MIRROR_ENV}") from None
        actual = digest.hexdigest()
        if actual != sha256:
            raise RnnlabError(f"download of {url} failed its SHA-256 check: expected {sha256}, got {actual}; "
                              f"nothing was kept, try again or use another mirror (${MIRROR_ENV})")
        os.replace(temporary, destination)
    finally:
        temporary.unlink(missing_ok=True)
    return destination


def download_dataset(name: str, cache_dir=None, timeout: float = DOWNLOAD_TIMEOUT_SECONDS) -> dict:
    """Download whichever of the four files are missing from the cache; return role -> path.

    Raises:
        RnnlabError: an HTTP error or a checksum mismatch (see :func:`download_file`), or the server
            is unreachable, in which case the message names what else would provide the files.
    """
    spec = _spec(name)
    directory = _dataset_cache_dir(name, cache_dir)
    files = {}
    for role, gz_name in FILE_NAMES.items():
        existing = _existing_file(directory, gz_name)
        if existing is not None:
            files[role] = existing
            continue
        url = dataset_url(name, gz_name)
        print(f"rnnlab: downloading {url} -> {directory / gz_name}", file=sys.stderr)
        try:
            files[role] = download_file(url, directory / gz_name, spec.sha256[gz_name], timeout=timeout)
        except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
            reason = getattr(error, "reason", error)
            raise RnnlabError(f"cannot download {name}: {url} is unreachable ({reason}); to use it offline, "
                              f"{_how_to_provide(name)}") from None
    return files


def load_dataset(name: str, data_dir=None, download: bool = True, cache_dir=None) -> Dataset:
    """Load MNIST or Fashion-MNIST, finding the files on disk or downloading them once into the cache.

    Args:
        name: ``"mnist"`` or ``"fashion-mnist"``.
        data_dir: a directory holding the four files (gzipped or not, in it or in ``data_dir/<name>/``).
            When given, only it is used.
        download: fetch missing files into the cache when no directory holds them.
        cache_dir: root of the download cache (files go to ``cache_dir/<name>/``); default
            :func:`default_cache_dir`.

    Returns:
        A :class:`Dataset`: ``uint8`` images ``(N, 28, 28)``, ``int64`` labels ``(N,)``, class names.

    Raises:
        RnnlabError: unknown name; ``data_dir`` without the files; nothing found with ``download``
            off, or the download failing (the message says which package, directory or setting would
            provide the files); a file that is not valid IDX; labels outside the class range.
    """
    spec = _spec(name)
    files = locate_dataset(name, data_dir=data_dir, cache_dir=cache_dir)
    if files is None:
        if not download:
            searched = ", ".join(str(directory) for directory in _search_dirs(name, cache_dir))
            raise RnnlabError(f"{name} not found (searched {searched}) and downloading is off; "
                              f"{_how_to_provide(name)}")
        files = download_dataset(name, cache_dir=cache_dir)
    splits = {}
    for split in ("train", "test"):
        images_path, labels_path = files[f"{split}_images"], files[f"{split}_labels"]
        images, labels = load_idx_pair(images_path, labels_path)
        if labels.size and (labels.min() < 0 or labels.max() >= len(spec.classes)):
            raise RnnlabError(f"{labels_path}: labels must lie in 0..{len(spec.classes) - 1} for {name}, found "
                              f"{labels.min()}..{labels.max()}")
        splits[f"{split}_images"], splits[f"{split}_labels"] = images, labels
    _check_is_dataset(name, Path(files["test_labels"]), splits["test_labels"])
    return Dataset(name=name, classes=spec.classes, directory=files["train_images"].parent, **splits)
