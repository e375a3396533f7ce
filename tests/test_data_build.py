"""``mcunas data build`` on the real coco_tiny set, checked against plain-JSON recounts (no pycocotools)."""

import csv
import hashlib
import json
import shutil

import pytest

from conftest import assert_one_line_error, cli_json, run_cli



@pytest.fixture
def coco(shared_data):
    root = shared_data / "coco_tiny"
    if not root.is_dir():
        pytest.skip(f"{root} is absent")
    return root


def sources(coco, parts=("train", "val")):
    args = []
    for part in parts:
        args += ["--images", coco / f"{part}2017", "--annotations", coco / "annotations" / f"instances_{part}2017.json"]
    return args


def recount(coco, classes, rule="segmentation", threshold=0.005, parts=("train", "val")):
    """{image id: label} by the VWW rule, straight from the JSON files."""
    labels = {}
    for part in parts:
        data = json.loads((coco / "annotations" / f"instances_{part}2017.json").read_text())
        wanted = {c["id"] for c in data["categories"] if c["name"] in classes}
        size = {im["id"]: im["width"] * im["height"] for im in data["images"]}
        labels.update({i: 0 for i in size})
        for a in data["annotations"]:
            if a["category_id"] in wanted:  # crowd annotations count, as in the reference builder
                area = a["area"] if rule == "segmentation" else a["bbox"][2] * a["bbox"][3]
                if area / size[a["image_id"]] > threshold:
                    labels[a["image_id"]] = 1
    return labels


def manifest(out):
    with open(out / "manifest.csv", newline="") as f:
        return list(csv.DictReader(f))


def build(*args):
    return cli_json("data", "build", *args)


def test_defaults_160_images_82_person(coco, tmp_path):
    out = tmp_path / "vww"
    fig = build(*sources(coco), "--out", out)
    assert (fig["images"], fig["person"], fig["skipped"]) == (160, 82, 0)
    assert sum(recount(coco, {"person"}).values()) == 82
    rows = manifest(out)
    expected = recount(coco, {"person"})
    assert {int(r["image_id"]): int(r["label"]) for r in rows} == expected
    # default split: SHA-256 of the id, eval when its first 32 bits are divisible by 5; train rows first
    for r in rows:
        h = int(hashlib.sha256(r["image_id"].encode()).hexdigest()[:8], 16)
        assert r["split"] == ("eval" if h % 5 == 0 else "train")
    splits = [r["split"] for r in rows]
    assert splits == sorted(splits, key=lambda s: s != "train")
    assert (fig["train"], fig["eval"]) == (splits.count("train"), splits.count("eval")) == (128, 32)
    assert fig["cache_r96_c3"] == "built" and fig["images_per_s"] > 0


def test_bbox_rule_counts_86_because_boxes_cover_masks(coco, tmp_path):
    fig = build(*sources(coco), "--out", tmp_path / "vww", "--area", "bbox")
    seg, box = recount(coco, {"person"}), recount(coco, {"person"}, "bbox")
    assert fig["person"] == sum(box.values()) == 86
    # A box is never smaller than its mask, so every segmentation-person image is a bbox-person
    # image; the 4 extra ones have a person whose box is over 0.5 % of the image but mask is not.
    assert {i for i, v in seg.items() if v} <= {i for i, v in box.items() if v}
    assert len([i for i in box if box[i] and not seg[i]]) == 4


def test_several_classes_mean_any_of_them(coco, tmp_path):
    person = recount(coco, {"person"})
    dog = build(*sources(coco), "--out", tmp_path / "dog", "--class", "person", "--class", "dog")
    # All 4 dog images of coco_tiny are also person images (checked here), so the count stays 82.
    dogs = {i for i, v in recount(coco, {"dog"}).items() if v}
    assert len(dogs) == 4 and all(person[i] for i in dogs)
    assert dog["person"] == sum(recount(coco, {"person", "dog"}).values()) == 82 >= sum(person.values())
    cat = build(*sources(coco), "--out", tmp_path / "cat", "--class", "person", "--class", "cat")
    assert cat["person"] == sum(recount(coco, {"person", "cat"}).values()) == 88 > 82


def test_eval_ids_choose_the_eval_split(coco, tmp_path):
    val = json.loads((coco / "annotations" / "instances_val2017.json").read_text())
    chosen = sorted(im["id"] for im in val["images"])[:10]
    ids = tmp_path / "minival.txt"
    ids.write_text("# like mscoco_minival_ids.txt\n" + "\n".join(map(str, chosen)) + "\n\n999999999\n")
    out = tmp_path / "vww"
    fig = build(*sources(coco), "--out", out, "--eval-ids", ids)
    assert (fig["train"], fig["eval"], fig["eval_ids_unmatched"]) == (150, 10, 1)
    rows = manifest(out)
    assert sorted(int(r["image_id"]) for r in rows if r["split"] == "eval") == chosen
    assert [r["split"] for r in rows] == ["train"] * 150 + ["eval"] * 10


def test_eval_ids_matching_nothing_warn_and_leave_eval_empty(coco, tmp_path):
    ids = tmp_path / "other.txt"
    ids.write_text("1\n2\n3\n")
    proc = run_cli("data", "build", *sources(coco), "--out", tmp_path / "vww", "--eval-ids", ids, "--json")
    assert proc.returncode == 0, proc.stderr
    fig = json.loads(proc.stdout)
    assert (fig["train"], fig["eval"], fig["eval_ids_unmatched"]) == (160, 0, 3)
    assert "none of the 3 ids in --eval-ids" in proc.stderr and "eval split is empty" in proc.stderr


def test_bad_images_are_skipped_counted_and_listed(coco, tmp_path):
    images = tmp_path / "val2017"
    shutil.copytree(coco / "val2017", images)
    names = sorted(p.name for p in images.iterdir())
    truncated, missing, garbage = images / names[0], images / names[1], images / names[2]
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    missing.unlink()
    garbage.write_bytes(b"not a jpeg at all" * 100)
    out = tmp_path / "vww"
    fig = build("--images", images, "--annotations", coco / "annotations" / "instances_val2017.json", "--out", out)
    assert (fig["images"], fig["skipped"]) == (77, 3)
    assert fig["skipped_list"] == str(out / "skipped.csv")
    with open(out / "skipped.csv", newline="") as f:
        skipped = {r["file_name"]: r["reason"] for r in csv.DictReader(f)}
    assert set(skipped) == {truncated.name, missing.name, garbage.name}
    assert skipped[missing.name] == "missing file"
    assert "truncated" in skipped[truncated.name]
    assert "cannot identify image file" in skipped[garbage.name]
    labels = recount(coco, {"person"}, parts=("val",))
    kept = {int(r["image_id"]) for r in manifest(out)}
    assert len(kept) == 77 and fig["person"] == sum(labels[i] for i in kept)


@pytest.mark.parametrize("annotations, fragment", [
    ("[1, 2", "is not JSON"),
    ('{"images": [], "categories": []}', "no 'annotations' list"),
    ('{"images": [{"id": 1}], "annotations": [], "categories": []}', "images[0] lacks file_name, width, height"),
])
def test_malformed_annotations_are_one_line(coco, tmp_path, annotations, fragment):
    bad = tmp_path / "instances.json"
    bad.write_text(annotations)
    proc = run_cli("data", "build", "--images", coco / "val2017", "--annotations", bad, "--out", tmp_path / "o")
    assert proc.returncode == 2
    assert_one_line_error(proc, fragment)


@pytest.mark.parametrize("extra, fragment", [
    (["--class", "unicorn"], "unknown class 'unicorn'"),
    (["--images", "x"], "give one --annotations per --images"),
    (["--threshold", "1.5"], "--threshold"),
    (["--area", "mask"], "invalid choice"),
])
def test_bad_options_are_one_line(coco, tmp_path, extra, fragment):
    proc = run_cli("data", "build", *sources(coco, ("val",)), "--out", tmp_path / "o", *extra)
    assert proc.returncode == 2
    assert_one_line_error(proc, fragment)


def test_rerun_reuses_the_cache_and_failed_runs_keep_it(coco, tmp_path):
    out = tmp_path / "vww"
    first = build(*sources(coco), "--out", out)
    npy = out / "cache" / "r96_c3.npy"
    before = (npy.stat().st_mtime_ns, npy.read_bytes(), (out / "manifest.csv").read_text())
    again = build(*sources(coco), "--out", out)
    assert first["cache_r96_c3"] == "built" and again["cache_r96_c3"] == "reused"
    assert "decode_images_per_s" not in again
    assert (npy.stat().st_mtime_ns, npy.read_bytes(), (out / "manifest.csv").read_text()) == before
    # failing runs into the same folder: unknown class, and an image folder where nothing decodes
    assert run_cli("data", "build", *sources(coco), "--out", out, "--class", "unicorn").returncode == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = run_cli("data", "build", "--images", empty, "--annotations",
                   coco / "annotations" / "instances_val2017.json", "--out", out)
    assert_one_line_error(proc, "none of the 80 images could be read")
    assert (npy.stat().st_mtime_ns, npy.read_bytes(), (out / "manifest.csv").read_text()) == before
    assert sorted(p.name for p in (out / "cache").iterdir()) == ["r96_c3.json", "r96_c3.npy"]


def test_out_must_be_a_build_folder(coco, tmp_path):
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    proc = run_cli("data", "build", *sources(coco, ("val",)), "--out", other)
    assert_one_line_error(proc, "is not an earlier `mcunas data build` folder")
    assert (other / "notes.txt").read_text() == "keep me"


def test_several_resolutions_and_grayscale(coco, tmp_path):
    import numpy as np

    from mcunas.data import load_split

    out = tmp_path / "vww"
    fig = build(*sources(coco, ("val",)), "--out", out, "--resolution", "96", "--resolution", "64", "--grayscale")
    assert fig["cache_r64_c1"] == fig["cache_r96_c1"] == "built"
    assert np.load(out / "cache" / "r64_c1.npy").shape == (80, 64, 64, 1)
    images, labels = load_split(out, "all", 96, 1)
    assert images.shape == (80, 96, 96, 1) and images.dtype == np.uint8
    assert int(labels.sum()) == sum(recount(coco, {"person"}, parts=("val",)).values())
