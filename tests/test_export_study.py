"""Export of trained winners from a study, and ``mcunas query`` on a study with accuracies.

The study is built here with Optuna directly, the way ``mcunas search``
records trials (same user attributes, constraints and states), so these
tests do not wait on a full campaign: two tiny networks are really trained
on generated bright-blob/noise images, converted to int8 with the project's
converter, evaluated with LiteRT and measured in TFLM.  The accuracies are
what those real models score; nothing is typed in.
"""

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, assert_one_line_error, run_cli

pytestmark = pytest.mark.slow  # the module fixture trains, converts and measures real models

ARCH_BIG = "in_r32_c1-cv_k3_s2_c8-ds_k3_s1_c16-ds_k3_s2_c32-gap-fc_c2"
ARCH_SMALL = "in_r32_c1-cv_k3_s2_c8-ds_k3_s2_c8-gap-fc_c2"
ARCH_REJECTED = "in_r96_c3-cv_k3_s2_c32-ds_k3_s1_c64-ds_k3_s2_c128-gap-fc_c2"
SEARCH_SRAM_BYTES = 40_000


def blob_images(n: int, seed: int):
    """uint8 32×32×1 images: label 1 has a bright square somewhere, label 0 is noise only."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 120, size=(n, 32, 32, 1), dtype=np.uint8)
    y = np.arange(n) % 2
    for i in np.flatnonzero(y):
        r, c = rng.integers(2, 20, size=2)
        x[i, r:r + 10, c:c + 10] = 255
    x[0, 0, 0], x[1, 0, 0] = 0, 255  # span the full input range (the converter pins 0..255)
    return x, y


def int8_accuracy(tflite: bytes, x, y) -> float:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=tflite)
    it.allocate_tensors()
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    hits = 0
    for image, label in zip(x, y):
        it.set_tensor(inp["index"], (image[None].astype(np.int16) - 128).astype(np.int8))
        it.invoke()
        hits += int(np.argmax(it.get_tensor(out["index"])[0]) == label)
    return hits / len(y)


def train_and_record(trial, arch_text: str, job_dir, x_tr, y_tr, x_ev, y_ev, budget):
    """What a search worker does for one candidate, recorded like ``mcunas.search.campaign``."""
    import keras

    from mcunas.arch import parse_arch
    from mcunas.cost import estimate
    from mcunas.export.tflite import convert_int8
    from mcunas.input_convention import preprocess
    from mcunas.keras_model import build_keras_model
    from mcunas.tflm import measure_arena

    arch = parse_arch(arch_text)
    costs = estimate(arch)
    trial.set_user_attr("arch", arch_text)
    trial.set_user_attr("costs", costs)
    for name, value in budget.constraints(costs).items():
        trial.set_constraint(name, value)
    keras.utils.set_random_seed(trial.number)
    model = build_keras_model(arch, batch_size=None)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(preprocess(x_tr), y_tr, epochs=12, batch_size=16, verbose=0)
    float_acc = float(model.evaluate(preprocess(x_ev), y_ev, verbose=0, return_dict=True)["accuracy"])
    deploy = build_keras_model(arch)
    deploy.set_weights(model.get_weights())
    job_dir.mkdir(parents=True)
    deploy.save(job_dir / "model.keras")
    tflite = convert_int8(deploy, x_tr[:64])
    (job_dir / "model_int8.tflite").write_bytes(tflite)
    acc = int8_accuracy(tflite, x_ev, y_ev)
    rel = job_dir.relative_to(job_dir.parents[3])  # stored relative, as the campaign does
    attrs = {"float_accuracy": float_acc, "int8_accuracy": acc,
             "tflm_arena_bytes_measured": measure_arena(job_dir / "model_int8.tflite")["tflm_arena_bytes"],
             "tflite_bytes_measured": len(tflite), "keras_path": str(rel / "model.keras"),
             "tflite_path": str(rel / "model_int8.tflite")}
    for k, v in attrs.items():
        trial.set_user_attr(k, v)
    return [acc, float(costs[budget.key("sram")])]


@pytest.fixture(scope="module")
def trained_study(tmp_path_factory):
    """results/tr/study.journal with 2 trained, 1 rejected, 1 failed, 1 pruned trial; plus cost-only 'co'."""
    import optuna
    from optuna.storages.journal import JournalFileBackend

    from mcunas.cost import estimate
    from mcunas.arch import parse_arch
    from mcunas.budget import parse_budget

    root = tmp_path_factory.mktemp("trained")
    study_dir = root / "results" / "tr"
    study_dir.mkdir(parents=True)
    storage = optuna.storages.JournalStorage(JournalFileBackend(str(study_dir / "study.journal")))
    # Deployable figures once the cost model gives them; the paper's until then.
    model = "deployable" if "sram_tflm_bytes" in estimate(parse_arch(ARCH_BIG)) else "paper"
    budget = parse_budget(f"{SEARCH_SRAM_BYTES}B", "250KB", "60M", model=model)
    study = optuna.create_study(study_name="tr", storage=storage, directions=["maximize", "minimize"])
    study.set_user_attr("objectives", ["accuracy", "sram"])
    study.set_user_attr("budget", budget.as_dict())
    study.set_user_attr("space", "mobilenet_v1")
    x, y = blob_images(240, seed=0)
    x_tr, y_tr, x_ev, y_ev = x[:160], y[:160], x[160:], y[160:]
    for arch in (ARCH_BIG, ARCH_SMALL):
        t = study.ask()
        values = train_and_record(t, arch, study_dir / "trials" / f"{t.number:05d}", x_tr, y_tr, x_ev, y_ev, budget)
        study.tell(t, values)
    t = study.ask()  # rejected before training, told as a complete infeasible trial
    costs = estimate(parse_arch(ARCH_REJECTED))
    t.set_user_attr("arch", ARCH_REJECTED)
    t.set_user_attr("costs", costs)
    for name, value in budget.constraints(costs).items():
        t.set_constraint(name, value)
    t.set_user_attr("rejected", "; ".join(budget.violations(costs)))
    study.tell(t, [0.0, float(costs[budget.key("sram")])])
    t = study.ask()
    t.set_user_attr("arch", ARCH_SMALL)
    t.set_user_attr("fail_reason", "worker exited with status 134 and no result")
    study.tell(t, state=optuna.trial.TrialState.FAIL)
    t = study.ask()
    t.set_user_attr("arch", ARCH_BIG)
    study.tell(t, state=optuna.trial.TrialState.PRUNED)
    proc = run_cli("search", "--study", "co", "--objectives", "capacity,sram", "--sampler", "random",
                   "--n-trials", 5, "--budget-model", "paper", cwd=root)
    assert proc.returncode == 0, proc.stderr
    return root, {t.number: t for t in study.get_trials()}, model


def ranked(trials, model):
    """Trained trials, best first: int8 accuracy, ties to the smaller SRAM figure."""
    def sram(t):
        return t.user_attrs["tflm_arena_bytes_measured"] if model == "deployable" else \
            t.user_attrs["costs"]["sram_paper_bytes"]
    return sorted((t for t in trials.values() if "int8_accuracy" in t.user_attrs),
                  key=lambda t: (-t.user_attrs["int8_accuracy"], sram(t)))


def test_query_ranks_trained_trials_by_int8_accuracy(trained_study):
    root, trials, model = trained_study
    proc = run_cli("query", "--study", "tr", "--budget-model", model, "--json", cwd=root)
    assert proc.returncode == 0, proc.stderr
    s = json.loads(proc.stdout)["studies"][0]
    assert s["ranked_by"].startswith("int8 accuracy")
    assert [r["number"] for r in s["best"]] == [t.number for t in ranked(trials, model)]
    for r in s["best"]:
        t = trials[r["number"]]
        assert r["int8_accuracy"] == t.user_attrs["int8_accuracy"]
        if model == "deployable":  # trained trials are judged on their measured arena and file
            assert r["sram_bytes"] == t.user_attrs["tflm_arena_bytes_measured"] and r["sram_figure"] == "measured"
            assert r["flash_bytes"] == t.user_attrs["tflite_bytes_measured"]
    # Loosening SRAM past the rejected candidate shows it would fit but was never trained.
    loose = json.loads(run_cli("query", "--study", "tr", "--budget-model", model, "--sram", "10MB", "--json",
                               cwd=root).stdout)["studies"][0]
    assert loose["untrained_fitting"] == 1 and s["untrained_fitting"] == 0


def test_query_budget_below_every_trained_trial(trained_study):
    root, trials, model = trained_study
    proc = run_cli("query", "--study", "tr", "--budget-model", model, "--sram", "1KB", cwd=root)
    assert_one_line_error(proc, "no trial of tr meets SRAM ≤ 1,000 B")
    assert "nearest trials" in proc.stdout
    for number, t in trials.items():
        if "int8_accuracy" in t.user_attrs:
            assert f"#{number} (sram +" in proc.stderr


@pytest.mark.slow
def test_export_best_runs_in_tflm_with_its_arena_constant(trained_study, tmp_path):
    root, trials, model = trained_study
    out = tmp_path / "winner"
    proc = run_cli("export", "--study", "tr", "--best", "--budget-model", model, "--out", out, "--json", cwd=root)
    assert proc.returncode == 0, proc.stderr
    fig = json.loads(proc.stdout)
    best = ranked(trials, model)[0]
    assert f"mcunas: copying trial {best.number}'s model files" in proc.stderr.splitlines()
    assert fig["trial"] == best.number and fig["int8_accuracy"] == best.user_attrs["int8_accuracy"]
    for name in ("model.keras", "model_int8.tflite", "model_data.h", "model_data.cc", "arch.txt", "report.md"):
        assert (out / name).is_file(), name
    tflite = (out / "model_int8.tflite").read_bytes()
    # The very file whose int8 accuracy the study recorded, not a re-conversion.
    assert tflite == (root / best.user_attrs["tflite_path"]).read_bytes()
    assert (out / "arch.txt").read_text().strip() == best.user_attrs["arch"]
    header, source = (out / "model_data.h").read_text(), (out / "model_data.cc").read_text()
    arena = int(re.search(r"kTensorArenaSize = (\d+);", header).group(1))
    assert arena % 16 == 0 and arena == fig["k_tensor_arena_size"]
    assert "alignas(16) const unsigned char g_model_data[]" in source
    assert f"g_model_data_len = {len(tflite)};" in source
    body = re.search(r"\{\n(.*)\n\};", source, re.S).group(1)
    assert bytes(int(b, 16) for b in re.findall(r"0x([0-9a-f]{2})", body)) == tflite
    # TFLM loads and runs the exported model in exactly kTensorArenaSize, and not in 1 KiB less.
    assert tflm_probe(out / "model_int8.tflite", arena) == "ok"
    assert tflm_probe(out / "model_int8.tflite", arena - 1024) != "ok"
    report = (out / "report.md").read_text()
    assert f"{fig['tflm_arena_bytes']:,}" in report and f"{len(tflite):,}" in report
    assert f"{best.user_attrs['int8_accuracy']:.4f}" in report and "Board fit" in report
    assert "nucleo-f746zg" in report
    assert "`AddConv2D()`, `AddDepthwiseConv2D()`" in report and "`AddSoftmax()`" in report


def tflm_probe(path, arena_bytes: int) -> str:
    """Load and invoke in TFLM in a child process: 'ok', 'too small', or the crash."""
    code = textwrap.dedent(f"""
        import numpy as np
        from tflite_micro import runtime
        data = open({str(path)!r}, "rb").read()
        try:
            it = runtime.Interpreter.from_bytes(data, arena_size={arena_bytes})
        except RuntimeError:
            print("too small"); raise SystemExit(0)
        d = it.get_input_details(0)
        it.set_input(np.zeros(d["shape"], dtype=d["dtype"]), 0)
        it.invoke()
        print("ok")
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    return proc.stdout.strip().splitlines()[-1] if proc.returncode == 0 else f"crashed ({proc.returncode})"


def test_export_trial_from_another_directory_finds_the_artefacts(trained_study, tmp_path):
    """Stored paths are relative to where the campaign ran; the journal's location finds them."""
    root, trials, _ = trained_study
    number = ranked(trials, "paper")[-1].number
    proc = run_cli("export", "--study", "tr", "--storage", root / "results" / "tr" / "study.journal",
                   "--trial", number, "--out", tmp_path / "w", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    fig = json.loads(proc.stdout)
    assert fig["trial"] == number
    assert fig["tflm_arena_bytes"] == trials[number].user_attrs["tflm_arena_bytes_measured"]
    assert (tmp_path / "w" / "model_int8.tflite").read_bytes() == \
        (root / trials[number].user_attrs["tflite_path"]).read_bytes()


@pytest.mark.parametrize("trial,fragment", [
    (2, "trial 2 of study 'tr' was rejected before training ("),
    (3, "trial 3 of study 'tr' failed (worker exited with status 134 and no result): it has no model"),
    (4, "trial 4 of study 'tr' was pruned during training: it has no model"),
    (99, "study 'tr' has no trial 99"),
])
def test_export_trial_without_model_says_why(trained_study, tmp_path, trial, fragment):
    root, _, _ = trained_study
    proc = run_cli("export", "--study", "tr", "--trial", trial, "--out", tmp_path / "x", cwd=root)
    assert_one_line_error(proc, fragment)
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("args,fragment", [
    (("--study", "tr", "--trial", "0", "--best"), "exactly one of --trial N or --best"),
    (("--study", "tr"), "exactly one of --trial N or --best"),
    (("--study", "co", "--best"), "study 'co' is cost-only"),
    (("--study", "co", "--trial", "0"), "was never trained"),
    (("--study", "tr", "--best", "--sram", "1KB"), "no trained trial of study 'tr' meets SRAM ≤ 1,000 B"),
    (("--study", "nope", "--best"), "no study storage at results/nope/study.journal"),
    (("--trial", "0"), "give an ARCH string, or --study NAME"),
])
def test_export_from_study_bad_input(trained_study, tmp_path, args, fragment):
    root, _, model = trained_study
    assert_one_line_error(run_cli("export", *args, "--budget-model", model, "--out", tmp_path / "x", cwd=root),
                          fragment)


def assert_export_of(out, trial, root):
    """``out`` is one whole export of ``trial``: its .tflite, the same bytes in the C array, its arena."""
    tflite = (out / "model_int8.tflite").read_bytes()
    assert tflite == (root / trial.user_attrs["tflite_path"]).read_bytes()
    assert (out / "arch.txt").read_text().strip() == trial.user_attrs["arch"]
    source = (out / "model_data.cc").read_text()
    body = re.search(r"\{\n(.*)\n\};", source, re.S).group(1)
    assert bytes(int(b, 16) for b in re.findall(r"0x([0-9a-f]{2})", body)) == tflite
    arena = int(re.search(r"kTensorArenaSize = (\d+);", (out / "model_data.h").read_text()).group(1))
    assert arena == -(-trial.user_attrs["tflm_arena_bytes_measured"] // 16) * 16
    assert f"trial {trial.number}," in (out / "model_data.h").read_text()


def _export_process(root, number, out):
    return subprocess.Popen([sys.executable, "-m", "mcunas", "export", "--study", "tr", "--trial", str(number),
                             "--out", str(out)], cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(REPO)})


def _written_anywhere(folder, data: bytes) -> bool:
    for path in folder.rglob("model_int8.tflite"):
        try:
            if path.read_bytes() == data:
                return True
        except OSError:  # a temporary folder going away under us
            pass
    return False


def test_export_killed_half_way_leaves_the_previous_folder_whole(trained_study, tmp_path):
    root, trials, _ = trained_study
    first, second = (trials[t.number] for t in ranked(trials, "paper"))
    out = tmp_path / "winner"
    assert run_cli("export", "--study", "tr", "--trial", first.number, "--out", out, cwd=root).returncode == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    new_tflite = (root / second.user_attrs["tflite_path"]).read_bytes()
    proc = _export_process(root, second.number, out)
    deadline = time.monotonic() + 300
    while not _written_anywhere(tmp_path, new_tflite):  # the new .tflite is written, its C array not yet
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert_export_of(out, first, root)
    # the next export clears what the killed one left and completes
    assert run_cli("export", "--study", "tr", "--trial", second.number, "--out", out, cwd=root).returncode == 0
    assert_export_of(out, second, root)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".winner.lock", "winner"]


def test_concurrent_exports_into_one_folder_never_interleave(trained_study, tmp_path):
    root, trials, _ = trained_study
    out = tmp_path / "winner"
    procs = {t.number: _export_process(root, t.number, out) for t in ranked(trials, "paper")}
    for proc in procs.values():
        assert proc.wait(timeout=600) == 0, proc.stderr.read()
    winner = int(re.search(r"trial (\d+),", (out / "model_data.h").read_text()).group(1))
    assert_export_of(out, trials[winner], root)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".winner.lock", "winner"]


@pytest.mark.parametrize("existing", ["file", "foreign folder"])
def test_export_out_must_be_a_new_empty_or_export_folder(trained_study, tmp_path, existing):
    root, trials, _ = trained_study
    out = tmp_path / "out"
    if existing == "file":
        out.write_text("keep me")
    else:
        out.mkdir()
        (out / "notes.txt").write_text("keep me")
    proc = run_cli("export", "--study", "tr", "--trial", ranked(trials, "paper")[0].number, "--out", out, cwd=root)
    assert_one_line_error(proc, "is a file" if existing == "file" else "holds files an export does not write (notes.txt)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert (out.read_text() if existing == "file" else (out / "notes.txt").read_text()) == "keep me"


def test_export_of_an_offline_study_embeds_the_plan_in_the_trial_file(trained_study, tmp_path):
    """A campaign judged with --memory-plan offline exports the trial's own int8 file with the plan in it."""
    import shutil

    import optuna
    from optuna.storages.journal import JournalFileBackend

    from mcunas.budget import Budget
    from mcunas.cost.flatbuffer import read_tflite
    from mcunas.export.memory_plan import embed_offline_plan

    root, trials, model = trained_study
    if model != "deployable":
        pytest.skip("the offline plan judges deployable figures")
    best = ranked(trials, model)[0]
    study_dir = root / "results" / "tro"
    job = Path(best.user_attrs["tflite_path"]).parent  # results/tr/trials/NNNNN, as the campaign stores it
    shutil.copytree(root / job, study_dir / "trials" / job.name)
    storage = optuna.storages.JournalStorage(JournalFileBackend(str(study_dir / "study.journal")))
    study = optuna.create_study(study_name="tro", storage=storage, directions=["maximize", "minimize"])
    budget = Budget(sram_bytes=SEARCH_SRAM_BYTES, memory_plan="offline")
    for key, value in {"objectives": ["accuracy", "sram"], "budget": budget.as_dict(), "space": "mobilenet_v1"}.items():
        study.set_user_attr(key, value)
    trial = study.ask()
    for key, value in best.user_attrs.items():
        trial.set_user_attr(key, value.replace("results/tr/", "results/tro/") if key.endswith("_path") else value)
    study.tell(trial, best.values)
    proc = run_cli("export", "--study", "tro", "--best", "--out", tmp_path / "w", "--json", cwd=root)
    assert proc.returncode == 0, proc.stderr
    fig = json.loads(proc.stdout)
    trial_file = (root / best.user_attrs["tflite_path"]).read_bytes()
    exported = (tmp_path / "w" / "model_int8.tflite").read_bytes()
    assert exported == embed_offline_plan(trial_file)[0]  # the trial's own int8 model, plan added
    assert read_tflite(exported).offline_offsets is not None
    assert fig["memory_plan"] == "offline" and fig["tflm_arena_stock_bytes"] == best.user_attrs["tflm_arena_bytes_measured"]
    assert fig["tflm_arena_bytes"] == fig["tflm_arena_stock_bytes"] - fig["arena_saved_bytes"]
    assert fig["tflm_arena_bytes"] <= fig["predicted"]["sram_tflm_bytes"] <= 1.01 * fig["tflm_arena_bytes"]
    # a 5 KB file: the size model's fixed 64 B safety margin alone is over 1 % of it; with the plan's 4 B of
    # padding allowance and the fit's residual on this tiny file (the frozen-graph route) it lands 82 B above
    assert fig["tflite_bytes"] == len(exported) <= fig["predicted"]["tflite_bytes"] <= len(exported) + 96
    assert "offline memory plan" in (tmp_path / "w" / "report.md").read_text()
    assert f"kTensorArenaSize = {fig['k_tensor_arena_size']};" in (tmp_path / "w" / "model_data.h").read_text()
