"""A full disk, a read-only folder, an --out that is a file, wrong-typed COCO fields: one line each.

Full and read-only file systems are real: each command runs in a private
user + mount namespace (``unshare -rm``, no root needed where user
namespaces are enabled) with a tiny tmpfs or a read-only bind mount over one
folder.  The namespace's mounts vanish with it, so what the folder holds
afterwards is listed from inside.
"""

import json
import os
import shlex
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, assert_one_line_error, run_cli

COST_ONLY = ["--objectives", "capacity,sram", "--space", "mobilenet_v2", "--sram", "150KB"]


def _namespaces_work() -> bool:
    try:
        return subprocess.run(["unshare", "-rm", "true"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


needs_namespaces = pytest.mark.skipif(not _namespaces_work(), reason="unshare -rm (user namespaces) is not available")


def run_with_mount(folder, mount: str, commands: list[list], cwd, log_dir, env=None):
    """Run ``mcunas`` commands with ``folder`` mounted as ``mount`` ('ro' or a tmpfs size like '64k').

    Returns one CompletedProcess per command and the files left in ``folder``
    (relative paths, hidden ones included).
    """
    folder.mkdir(parents=True, exist_ok=True)
    q = shlex.quote
    lines = [f"mount -t tmpfs -o size={mount} tmpfs {q(str(folder))}" if mount != "ro" else
             f"mount --bind {q(str(folder))} {q(str(folder))} && mount -o remount,ro,bind {q(str(folder))}"]
    for i, args in enumerate(commands):
        cmd = " ".join(q(str(a)) for a in [sys.executable, "-m", "mcunas", *args])
        lines.append(f"{cmd} >{q(str(log_dir / f'{i}.out'))} 2>{q(str(log_dir / f'{i}.err'))}; "
                     f"echo $? >{q(str(log_dir / f'{i}.rc'))}")
    lines.append(f"cd {q(str(folder))} && find . -mindepth 1 | sort >{q(str(log_dir / 'left'))}")
    proc = subprocess.run(["unshare", "-rm", "sh", "-c", "\n".join(lines)], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})
    assert proc.returncode == 0, proc.stderr
    done = [subprocess.CompletedProcess(args, int((log_dir / f"{i}.rc").read_text()),
                                        (log_dir / f"{i}.out").read_text(), (log_dir / f"{i}.err").read_text())
            for i, args in enumerate(commands)]
    return done, (log_dir / "left").read_text().split()


def tiny_coco(root, n=24, size=96):
    """``root/images`` with ``n`` JPEGs and ``root/instances.json`` (every other image has a big person)."""
    from PIL import Image

    (root / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    images, annotations = [], []
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(root / "images" / f"{i}.jpg")
        images.append({"id": i, "file_name": f"{i}.jpg", "width": size, "height": size})
        if i % 2:
            annotations.append({"id": i, "image_id": i, "category_id": 1, "area": 900.0, "bbox": [0, 0, 30, 30],
                                "iscrowd": 0})
    (root / "instances.json").write_text(json.dumps({"images": images, "annotations": annotations,
                                                      "categories": [{"id": 1, "name": "person"}]}))
    return root / "images", root / "instances.json"


@pytest.mark.parametrize("field, value, fragment", [
    ("width", "640px", "images[0].width is '640px', expected a number"),
    ("id", "1", "images[0].id is '1', expected an integer"),
    ("file_name", 7, "images[0].file_name is 7, expected a file name"),
    ("area", "big", "annotations[0].area is 'big', expected a number"),
    ("bbox", None, "annotations[0].bbox is None, expected [x, y, width, height] numbers"),
])
def test_wrong_typed_coco_fields_are_one_line(tmp_path, field, value, fragment):
    images, annotations = tiny_coco(tmp_path, n=2)
    data = json.loads(annotations.read_text())
    data["images" if field in ("width", "id", "file_name") else "annotations"][0][field] = value
    annotations.write_text(json.dumps(data))
    proc = run_cli("data", "build", "--images", images, "--annotations", annotations, "--out", tmp_path / "o")
    assert_one_line_error(proc, fragment)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("command", [["export", "in_r32_c1-cv_k3_s2_c8-gap-fc_c2"],
                                     ["train", "in_r32_c1-cv_k3_s2_c8-gap-fc_c2", "--data", "."]])
def test_out_that_is_a_file_is_one_line(tmp_path, command):
    out = tmp_path / "model.bin"
    out.write_bytes(b"keep")
    if command[0] == "train":
        from mcunas.data.synth import synthesize

        synthesize(tmp_path / "d", n=8, resolution=32, seed=0)
        command = [*command[:-1], tmp_path / "d"]
    assert_one_line_error(run_cli(*command, "--out", out), f"--out {out} is a file")
    assert out.read_bytes() == b"keep"


@needs_namespaces
def test_full_disk_during_data_build(tmp_path):
    images, annotations = tiny_coco(tmp_path / "coco")  # 24 images: a 650 KB cache at 96x96x3
    out = tmp_path / "disk" / "vww"
    (done,), left = run_with_mount(tmp_path / "disk", "256k", [
        ["data", "build", "--images", images, "--annotations", annotations, "--out", out]], tmp_path, tmp_path)
    assert_one_line_error(done, "No space left on device")
    assert left == ["./vww", "./vww/cache"]  # no temporary cache file, no half CSV


@needs_namespaces
def test_full_disk_during_search_keeps_every_recorded_trial(tmp_path):
    (search, query), left = run_with_mount(tmp_path / "results", "256k", [
        ["search", "--study", "s", *COST_ONLY, "--n-trials", "2000", "--sampler", "random"],
        ["query", "--study", "s", "--json"]], tmp_path, tmp_path)
    assert search.returncode == 2 and "Traceback" not in search.stderr, search.stderr
    last = search.stderr.strip().splitlines()[-1]  # after the live view's lines
    assert last.startswith("mcunas: error: cannot write journal") and "No space left on device" in last
    assert query.returncode == 0, query.stderr
    recorded = json.loads(query.stdout)["studies"][0]["trials"]
    assert recorded > 5
    assert not [p for p in left if "tmp" in p], left  # no temporary file left behind


@needs_namespaces
def test_full_cache_disk_during_evaluate(tmp_path, shared_models):
    from mcunas.data.synth import synthesize

    synthesize(tmp_path / "d", n=40, resolution=96, seed=0)  # a 1.1 MB cache
    cache = tmp_path / "cache"
    (done,), left = run_with_mount(cache, "256k", [
        ["evaluate", shared_models / "mlperf_vww_96_int8.tflite", "--data", tmp_path / "d"]],
        tmp_path, tmp_path, env={"MCUNAS_CACHE_DIR": str(cache)})
    assert_one_line_error(done, "No space left on device")
    assert not [p for p in left if p.endswith(".npy")], left


@needs_namespaces
@pytest.mark.parametrize("command", [
    ["search", "--study", "s", *COST_ONLY, "--n-trials", "1", "--results-dir", "{ro}/results"],
    ["export", "in_r32_c1-cv_k3_s2_c8-gap-fc_c2", "--out", "{ro}/winner"],
])
def test_read_only_folders_are_one_line(tmp_path, command):
    ro = tmp_path / "ro"
    (done,), left = run_with_mount(ro, "ro", [[str(a).format(ro=ro) for a in command]], tmp_path, tmp_path)
    assert_one_line_error(done, "Read-only file system")
    assert left == []


@needs_namespaces
def test_read_only_cache_folder_during_evaluate(tmp_path, shared_models):
    from mcunas.data.synth import synthesize

    synthesize(tmp_path / "d", n=8, resolution=96, seed=0)
    cache = tmp_path / "cache"
    (done,), left = run_with_mount(cache, "ro", [
        ["evaluate", shared_models / "mlperf_vww_96_int8.tflite", "--data", tmp_path / "d"]],
        tmp_path, tmp_path, env={"MCUNAS_CACHE_DIR": str(cache)})
    assert_one_line_error(done, "Read-only file system")
    assert left == []


def test_out_that_is_a_link_to_a_folder_replaces_that_folder_and_keeps_the_link(tmp_path):
    from mcunas.atomic import atomic_folder

    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "old.txt").write_text("old")
    (tmp_path / "link").symlink_to("real")
    with atomic_folder(tmp_path / "link") as tmp:
        (tmp / "new.txt").write_text("new")
    assert (tmp_path / "link").is_symlink()
    assert sorted(p.name for p in (tmp_path / "real").iterdir()) == ["new.txt"]
