"""The tf.data pipelines: shapes, dtypes, order, augmentation that moves pixels but never labels."""

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # imports TensorFlow


@pytest.fixture(scope="module")
def tf():
    from mcunas.quiet import quiet_tensorflow

    quiet_tensorflow()  # as every mcunas process (this sets TF_CPP_MIN_LOG_LEVEL=3 for the CLI runs after it, too)
    import tensorflow

    return tensorflow


@pytest.fixture
def arrays():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (70, 24, 24, 3), dtype=np.uint8)
    return images, (np.arange(70) % 2).astype(np.int32)


def collect(ds):
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    return xs, ys


def test_eval_dataset_is_in_order_and_exactly_preprocessed(tf, arrays):
    from mcunas.data import make_eval_dataset
    from mcunas.input_convention import preprocess

    images, labels = arrays
    xs, ys = collect(make_eval_dataset(images, labels, 32))
    assert [x.shape for x in xs] == [(32, 24, 24, 3), (32, 24, 24, 3), (6, 24, 24, 3)]
    assert xs[0].dtype == np.float32 and ys[0].dtype == np.int32
    assert np.array_equal(np.concatenate(xs), preprocess(images))
    assert np.array_equal(np.concatenate(ys), labels)


def test_train_dataset_shuffles_and_augments_pixels_not_labels(tf, arrays):
    from mcunas.data import make_train_dataset
    from mcunas.input_convention import preprocess

    images, labels = arrays
    plain = make_train_dataset(images, labels, 32, seed=5, augment=False)
    augmented = make_train_dataset(images, labels, 32, seed=5, augment=True)
    px, py = collect(plain)
    ax, ay = collect(augmented)
    assert [x.shape for x in ax] == [(32, 24, 24, 3), (32, 24, 24, 3), (6, 24, 24, 3)]
    assert ax[0].dtype == np.float32 and ay[0].dtype == np.int32
    # same seed, same shuffle: the augmented batches hold the same images with the same labels
    assert all(np.array_equal(a, p) for a, p in zip(ay, py))
    assert sorted(np.concatenate(py).tolist()) == sorted(labels.tolist())
    # a plain batch is a set of preprocessed source images whose labels match them
    source = {preprocess(img).tobytes(): y for img, y in zip(images, labels)}
    assert all(source[x.tobytes()] == y for xb, yb in zip(px, py) for x, y in zip(xb, yb))
    assert not np.array_equal(np.concatenate(py), labels), "shuffled"
    changed = np.mean([np.abs(a - p).mean() for a, p in zip(ax, px)])
    assert changed > 0.02 and all(0 <= x.min() and x.max() <= 1 for x in ax)
    # reproducible for a seed, new draws each epoch
    again, _ = collect(make_train_dataset(images, labels, 32, seed=5, augment=True))
    second, _ = collect(augmented)
    assert np.array_equal(again[0], ax[0]) and not np.array_equal(second[0], ax[0])


def test_transform_geometry_is_exact(tf, arrays):
    from mcunas.data.pipeline import BRIGHTNESS, SHIFT, transform
    from mcunas.input_convention import preprocess

    images = arrays[0][:4]
    x = preprocess(images)
    u = np.zeros((4, 5), np.float32)
    # box corners are float32 fractions, so "exact" is up to ~1e-6 of a pixel of interpolation
    np.testing.assert_allclose(transform(tf.constant(images), u).numpy(), x, atol=1e-4)  # identity
    u[:, 0] = -1
    np.testing.assert_allclose(transform(tf.constant(images), u).numpy(), x[:, :, ::-1], atol=1e-4)  # flip
    u[:, 0] = 1
    u[:, 2] = 1  # shift by SHIFT * 24 px in x: output column j samples input column j + shift
    step = SHIFT * 24
    shifted = transform(tf.constant(images), u).numpy()
    lo, frac = int(step), step - int(step)
    expect = (1 - frac) * x[:, :, lo:24 - 1] + frac * x[:, :, lo + 1:24]
    np.testing.assert_allclose(shifted[:, :, :24 - 1 - lo], expect, atol=1e-4)
    u[:] = 0
    u[:, 4] = -1  # darker by BRIGHTNESS, clipped at 0
    np.testing.assert_allclose(transform(tf.constant(images), u).numpy(), np.clip(x - BRIGHTNESS, 0, 1), atol=1e-4)
    u = np.ones((4, 5), np.float32) * np.array([1, 1, -1, 1, 0], np.float32)  # extreme zoom-out and shifts
    out = transform(tf.constant(np.full((4, 24, 24, 3), 200, np.uint8)), u).numpy()
    np.testing.assert_allclose(out, 200 / 255, atol=1e-5)  # mirror padding covers every sampled point


def test_pipeline_reads_a_memory_mapped_cache(tf, tmp_path, monkeypatch):
    """The arrays training gets from load_split are memory maps; the pipeline gathers from them directly."""
    from mcunas.data import load_split, make_train_dataset
    from mcunas.data.synth import synthesize

    monkeypatch.setenv("MCUNAS_CACHE_DIR", str(tmp_path / "cache"))
    synthesize(tmp_path / "s", n=10, resolution=32)
    images, labels = load_split(tmp_path / "s", "all", 32, 1)
    assert isinstance(images, np.memmap)
    xs, ys = collect(make_train_dataset(images, labels, 4, seed=0))
    assert [x.shape for x in xs] == [(4, 32, 32, 1), (4, 32, 32, 1), (2, 32, 32, 1)]
    assert sorted(np.concatenate(ys).tolist()) == sorted(labels.tolist())


def test_bench_data_runs_and_reports_both_feeds(tmp_path, monkeypatch):
    """A smoke run of `mcunas bench data` (figures are not asserted: the machines are shared)."""
    import json

    from conftest import run_cli
    from mcunas.data.synth import synthesize

    monkeypatch.setenv("MCUNAS_CACHE_DIR", str(tmp_path / "cache"))
    synthesize(tmp_path / "s", n=64, resolution=96)
    proc = run_cli("bench", "data", "--data", tmp_path / "s", "--rounds", "1", "--json")
    assert proc.returncode == 0, proc.stderr
    fig = json.loads(proc.stdout)
    assert fig["images"] == 64 and len(fig["cached_epochs"]) == len(fig["in_memory_epochs"]) == 1
    assert fig["cached_augmented_img_per_s"] > 0 and fig["in_memory_img_per_s"] > 0 and fig["ratio"] > 0
    assert "build_img_per_s" in fig or fig["build"].startswith("skipped")
