"""``load_split`` on the two MLPerf folder formats, checked against the raw files."""

import csv
import hashlib
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from conftest import assert_one_line_error, run_cli
from mcunas.data import load_split
from mcunas.data.synth import synthesize
from mcunas.errors import UserError


@pytest.fixture
def vww01(shared_data):
    if not (shared_data / "vww01_dev").is_dir():
        pytest.skip(f"{shared_data / 'vww01_dev'} is absent")
    return shared_data / "vww01_dev"


def digest(image: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest()


def test_vww01_images_and_labels_match_the_raw_bins(vww01, user_cache_dir):
    with open(vww01 / "y_labels.csv", newline="") as f:
        truth = Counter((digest(np.fromfile(vww01 / name, np.uint8)), int(label)) for name, _, label in csv.reader(f))
    images, labels = load_split(vww01, "all", 96, 3)
    assert images.shape == (500, 96, 96, 3) and images.dtype == np.uint8 and labels.dtype == np.int32
    assert int(labels.sum()) == 250
    assert Counter((digest(img), int(y)) for img, y in zip(images, labels)) == truth
    assert isinstance(images, np.memmap), "a split is a slice of the memory-mapped cache"
    assert any(user_cache_dir.glob("data/vww01_dev-*/r96_c3.npy"))
    train, y_train = load_split(vww01, "train", 96, 3)
    evals, y_eval = load_split(vww01, "eval", 96, 3)
    assert len(train) + len(evals) == 500 and 70 <= len(evals) <= 130  # the ~20 % hash split
    assert np.array_equal(np.concatenate([train, evals]), images)
    assert np.array_equal(np.concatenate([y_train, y_eval]), labels)


def test_vww01_resized_and_grayscale(vww01):
    images, labels = load_split(vww01, "all", 64, 1)
    assert images.shape == (500, 64, 64, 1) and images.dtype == np.uint8 and int(labels.sum()) == 250


def test_person_folders_from_synth(tmp_path):
    fig = synthesize(tmp_path / "synth", n=21, resolution=96, seed=3)
    assert (fig["person"], fig["non_person"]) == (11, 10)
    truth = Counter()
    for sub, label in (("person", 1), ("non_person", 0)):
        for f in (tmp_path / "synth" / sub).glob("*.jpg"):
            truth[(digest(np.asarray(Image.open(f).convert("RGB"))), label)] += 1
    images, labels = load_split(tmp_path / "synth", "all", 96, 3)
    assert images.shape == (21, 96, 96, 3) and int(labels.sum()) == 11
    assert Counter((digest(img), int(y)) for img, y in zip(images, labels)) == truth
    small, _ = load_split(tmp_path / "synth", "all", 32, 1)
    assert small.shape == (21, 32, 32, 1)


def test_synth_is_deterministic(tmp_path):
    synthesize(tmp_path / "a", n=4, resolution=48, seed=1)
    synthesize(tmp_path / "b", n=4, resolution=48, seed=1)
    synthesize(tmp_path / "c", n=4, resolution=48, seed=2)
    read = lambda d: (d / "person" / "00000.jpg").read_bytes()  # noqa: E731
    assert read(tmp_path / "a") == read(tmp_path / "b") != read(tmp_path / "c")


def test_synth_cli_and_its_refusals(tmp_path):
    proc = run_cli("data", "synth", "--out", tmp_path / "s", "--n", "6", "--resolution", "32", "--json")
    assert proc.returncode == 0, proc.stderr
    assert len(list((tmp_path / "s" / "person").glob("*.jpg"))) == 3
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    assert_one_line_error(run_cli("data", "synth", "--out", tmp_path / "mine"), "not an earlier `mcunas data synth`")
    assert_one_line_error(run_cli("data", "synth", "--out", tmp_path / "t", "--n", "1"), "--n must be at least 2")


def test_bad_data_folders(tmp_path):
    with pytest.raises(UserError, match="is not a dataset folder"):
        load_split(tmp_path, "all", 96, 3)
    with pytest.raises(UserError, match="does not exist"):
        load_split(tmp_path / "nope", "all", 96, 3)
    (tmp_path / "person").mkdir()
    (tmp_path / "non_person").mkdir()
    with pytest.raises(UserError, match="no images in them"):
        load_split(tmp_path, "all", 96, 3)
    with pytest.raises(UserError, match="split must be one of"):
        load_split(tmp_path, "test", 96, 3)
    bad = tmp_path / "v"
    bad.mkdir()
    (bad / "y_labels.csv").write_text("a.bin,2\n")
    with pytest.raises(UserError, match="expected file_name,2,label"):
        load_split(bad, "all", 96, 3)
