"""The weight-sharing supernet: slicing, the file's checks, and a search that scores with it end to end."""

import dataclasses
import json
import re

import numpy as np
import pandas as pd
import optuna
import pytest
from conftest import REPO, assert_one_line_error, run_cli

from mcunas.errors import UserError
from mcunas.spaces import RandomTrial, load_space, sample_arch
from mcunas.supernet.members import extreme_arch, largest_shape, member_slots

TINY_IR = str(REPO / "tests/spaces/tiny_ir.yaml")


@pytest.mark.parametrize("name", ["mobilenet_v2", "mobilenet_v1", "mnasnet", "shufflenet_v2"])
def test_every_sampled_member_maps_to_supernet_slots(name):
    space = load_space(name)
    shape = largest_shape(space)
    for seed in range(300):
        arch = sample_arch(space, RandomTrial(seed))
        slots = member_slots(space, arch)
        blocks = sum(b.repeats for b in arch.blocks)
        assert sorted(slots) == list(range(1, blocks + 1)) and slots[1] == "stem"
        assert (slots[2] == "pool") == (name == "shufflenet_v2")
        for slot in slots.values():
            found = re.fullmatch(r"s(\d+)b(\d+)", slot)  # block of a stage: within the largest member's depth
            if found:
                stage, block = map(int, found.groups())
                assert block < shape.stages[stage - 1].repeats
    largest = extreme_arch(space, True)
    assert largest.resolution == 224 and largest.blocks[0].channels == shape.stem_channels


def test_a_non_member_and_a_space_of_plain_conv_stages_are_refused(tmp_path):
    space = load_space("mobilenet_v2")
    wider = dataclasses.replace(extreme_arch(space, True), classes=3)
    with pytest.raises(UserError, match="not a member of space 'mobilenet_v2'"):
        member_slots(space, dataclasses.replace(wider, blocks=wider.blocks[:1] + wider.blocks[3:]))
    shuffle = load_space("shufflenet_v2")
    largest = extreme_arch(shuffle, True)
    with pytest.raises(UserError, match="not a member of space 'shufflenet_v2'"):  # its max pool left out
        member_slots(shuffle, dataclasses.replace(largest, blocks=largest.blocks[:1] + largest.blocks[2:]))
    convs = tmp_path / "convs.yaml"
    convs.write_text((REPO / "tests/spaces/tiny_ir.yaml").read_text().replace("block: ir", "block: cv"))
    with pytest.raises(UserError, match="has stages of cv blocks: the supernet supports stages of ds, ir and sf"):
        largest_shape(load_space(str(convs)))


def test_shufflenet_channels_read_the_rows_of_the_supernet_channels_they_stand_for():
    """Member concat [24 passed | 24 branch] of a stage whose largest is [122 | 122]: the member's channel 24 + i is
    the supernet's 122 + i, so the next basic unit's odd half (member channels 1, 3, ..., 47) reads the rows of
    the supernet's odd positions 0..11 and 61..72, and the next stage's down-sampling unit the rows 0..23 and
    122..145; the largest member is the supernet itself."""
    from mcunas.arch import parse_arch
    from mcunas.supernet.net import channel_ids, weight_shapes

    space = load_space("shufflenet_v2")
    weights = {name: np.empty(dims, np.float32) for name, dims in weight_shapes(largest_shape(space)).items()}
    arch = parse_arch("in_r128_c1-cv_k3_s2_c8-mp_k3_s2-sf_r3_k5_s2_c48-sf_r4_k5_s2_c96-sf_r2_k7_s2_c192-gap-fc_c2")
    ids = channel_ids(arch, member_slots(space, arch), weights)
    stage_1 = (*range(24), *range(122, 146))
    assert ids["b3_concat"] == ids["b5_concat"] == ids["b6_down_dw"] == stage_1
    assert ids["b4_odd"] == ids["b4_even"] == (*range(12), *range(61, 73))
    assert ids["b10_concat"] == ids["gap"] == (*range(96), *range(488, 584))  # no head: fc_body reads these rows
    assert "b6_down_pw" not in ids and "b6_pw2" not in ids  # a conv's outputs are its leading channels
    largest = extreme_arch(space, True)
    assert channel_ids(largest, member_slots(space, largest), weights) == {}


def test_bench_members_spread_by_macs_run_from_the_smallest_to_the_largest():
    from mcunas.arch import parse_arch
    from mcunas.bench.supernet import bench_members
    from mcunas.cost import estimate

    space = load_space("mobilenet_v2")
    members = bench_members(space, 16, 48, "macs")
    macs = [estimate(parse_arch(a), deployable=False)["macs"] for a in members]
    assert len(set(members)) == 16 and macs == sorted(macs) and all(parse_arch(a).resolution == 48 for a in members)
    drawn = [estimate(parse_arch(a), deployable=False)["macs"] for a in bench_members(space, 1000, 48, "random")]
    assert macs[0] == min(drawn) and macs[-1] == max(drawn)  # the same 1,000 draws, both ends included
    assert macs[-1] > 20 * macs[0]
    for a in members:
        member_slots(space, parse_arch(a))  # each a member the supernet has weights for


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mobilenet_v2", "mnasnet", "mobilenet_v1", "shufflenet_v2"])
def test_a_sliced_member_computes_exactly_what_its_keras_model_does(name):
    """Weights copied from the supernet into the stand-alone Keras model: same outputs, same parameters
    (for shufflenet_v2 also the largest member, whose channels are all the supernet's in its own order)."""
    import tensorflow as tf

    from mcunas.cost import estimate
    from mcunas.keras_model import build_keras_model
    from mcunas.supernet.net import forward, initial_weights, member_params
    from mcunas.supernet.score import copy_into_keras, recalibrated_stats

    space = load_space(name)
    rng = np.random.default_rng(0)
    weights = {k: tf.constant(v + rng.normal(0, 0.1, v.shape).astype(np.float32))  # beta, bias not 0
               for k, v in initial_weights(largest_shape(space), 1).items()}
    members = [sample_arch(space, RandomTrial(seed)) for seed in (0, 1)]
    for arch in members + [extreme_arch(space, True)] * (name == "shufflenet_v2"):
        arch = dataclasses.replace(arch, resolution=48)
        slots = member_slots(space, arch)
        images = rng.integers(0, 256, (70, 48, 48, arch.in_channels), dtype=np.uint8)
        params = member_params(weights, arch, slots)
        stats = recalibrated_stats(params, arch, images)
        x = images[:8].astype(np.float32) / 255
        sliced = tf.nn.softmax(forward(weights, arch, slots, x, stats=stats)).numpy()
        model = build_keras_model(arch, batch_size=None)
        before = model.get_weights()
        copy_into_keras(model, params, stats)
        assert np.abs(sliced - model(x, training=False).numpy()).max() < 1e-5
        assert sliced[:, 0].std() > 0.01  # not a saturated softmax that would hide a difference
        assert all(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))  # every weight inherited
        assert model.count_params() == estimate(arch)["keras_params"]  # the network the cost model describes


@pytest.mark.slow
def test_recalibration_in_several_passes_pools_the_statistics_exactly(monkeypatch):
    """The stem's statistics pooled over unequal passes (16, 16, 16, 16, 6 images) equal one pass over all 70.

    Only the stem's: deeper layers see inputs normalised with each pass's own
    batch statistics (as in Once-for-All), so they differ a little by pass size.
    """
    import tensorflow as tf

    from mcunas.supernet import score
    from mcunas.supernet.net import initial_weights, member_params

    space = load_space(TINY_IR)
    weights = {k: tf.constant(v) for k, v in initial_weights(largest_shape(space), 0).items()}
    arch = dataclasses.replace(extreme_arch(space, True), resolution=48)
    params = member_params(weights, arch, member_slots(space, arch))
    images = np.random.default_rng(0).integers(0, 256, (70, 48, 48, arch.in_channels), dtype=np.uint8)
    assert score.batch_for(48) >= 70
    whole = score.recalibrated_stats(params, arch, images)
    monkeypatch.setattr(score, "PASS_PIXELS", 16 * 48 * 48)
    assert score.batch_for(48) == 16
    pooled = score.recalibrated_stats(params, arch, images)
    assert list(whole) == list(pooled) and len(whole) > 10
    stem = next(iter(whole))
    direct = tf.nn.moments(tf.nn.conv2d(images.astype(np.float32) / 255, weights["stem/kernel"][:, :, :, :arch.blocks[0].channels],
                                        2, "SAME"), axes=(0, 1, 2))
    np.testing.assert_allclose(whole[stem][0], direct[0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(whole[stem][1], direct[1], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(pooled[stem][0], whole[stem][0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(pooled[stem][1], whole[stem][1], rtol=1e-4, atol=1e-5)
    assert float(tf.reduce_min(whole[stem][1])) > 0
    last = list(whole)[-1]  # and deeper layers stay close
    np.testing.assert_allclose(pooled[last][1], whole[last][1], rtol=0.2, atol=1e-3)


def _tiny_supernet(tmp_path, space_name="mobilenet_v1", data="x"):
    """A real supernet file of untrained weights (for the input checks, which never train)."""
    from mcunas.search.campaign import space_fingerprint
    from mcunas.supernet.file import save_supernet
    from mcunas.supernet.net import initial_weights

    space = load_space(space_name)
    path = tmp_path / f"{space_name}_{len(str(data))}.npz"
    save_supernet(path, initial_weights(largest_shape(space), 0),
                  {"space": space.name, "space_sha256": space_fingerprint(space), "data": str(data), "split_seed": 0})
    return path


def test_residual_blocks_start_as_the_identity_so_a_shallower_member_computes_the_same_at_first():
    """BigNAS's initialisation: gamma 0 on each residual block's projection.  At initialisation, then, a
    member that leaves out the trailing blocks of its stages computes exactly what the deepest does; the
    stride-2 first blocks and the non-residual first stage keep gamma 1."""
    import tensorflow as tf

    from mcunas.supernet.net import forward, initial_weights

    space = load_space("mobilenet_v2")
    weights = initial_weights(largest_shape(space), 0)
    zero = sorted(k for k, v in weights.items() if k.endswith("/gamma") and not v.any())
    assert zero == sorted(f"s{i}b{j}_project/gamma" for i, n in ((2, 3), (3, 4), (4, 4), (5, 4), (6, 4))
                          for j in range(1, n))
    assert weights["s2b0_project/gamma"].min() == 1 and weights["s1b0_project/gamma"].min() == 1
    assert not [k for k, v in initial_weights(largest_shape(load_space("mobilenet_v1")), 0).items()
                if k.endswith("/gamma") and not v.any()]  # no residual blocks
    deep = dataclasses.replace(extreme_arch(space, True), resolution=32)
    shallow = dataclasses.replace(deep, blocks=tuple(
        dataclasses.replace(b, repeats=1) if b.kind == "ir" else b for b in deep.blocks))
    assert shallow != deep and sum(b.repeats for b in shallow.blocks) < sum(b.repeats for b in deep.blocks)
    x = tf.constant(np.random.default_rng(0).random((4, 32, 32, 3), np.float32))
    tensors = {k: tf.constant(v) for k, v in weights.items()}
    logits = [forward(tensors, a, member_slots(space, a), x).numpy() for a in (deep, shallow)]
    np.testing.assert_allclose(logits[0], logits[1], rtol=1e-5, atol=1e-5)
    assert np.abs(logits[0]).max() > 1e-3  # not trivially zero


def test_a_supernet_file_moved_from_its_checkout_finds_its_space_by_name(tmp_path):
    """The file names the space's YAML where it was trained; copied to another machine, that path is gone,
    and the worker once failed every score with "unknown search space '/elsewhere/...'"."""
    from mcunas.supernet import file, score

    path = _tiny_supernet(tmp_path, "mobilenet_v2")
    meta, weights = file.load_supernet(path)
    file.save_supernet(path, weights, {**meta, "space_file": str(tmp_path / "gone/search_spaces/mobilenet_v2.yaml")})
    _, space, tensors = score.loaded(path)
    assert space.name == "mobilenet_v2" and space.path == load_space("mobilenet_v2").path
    assert sorted(tensors) == sorted(weights)


def test_the_benches_score_members_as_a_search_does(tmp_path, synth_data):
    """``search_scores`` (weights in memory, for the bench scripts) gives what a search's score job gives."""
    from mcunas.supernet import score
    from mcunas.train.worker import TrainJob

    path = _tiny_supernet(tmp_path, "mobilenet_v1", synth_data.resolve())
    _, space, weights = score.loaded(path)
    members = [dataclasses.replace(sample_arch(space, RandomTrial(seed)), resolution=32) for seed in (1, 2)]
    found = score.search_scores(weights, space, members, str(synth_data), seed=1)
    jobs = [TrainJob(arch=str(arch), data=str(synth_data), eval_data=None, epochs=1, batch=16, recipe="fast", seed=1,
                     out_dir=str(tmp_path), split_seed=1, kind="score", supernet=str(path)) for arch in members]
    assert found == [score.score_candidate(job)["supernet_accuracy"] for job in jobs]
    assert found != score.search_scores(weights, space, members, str(synth_data), seed=0)  # another split


def test_search_refuses_a_wrong_space_or_a_file_that_is_no_supernet(tmp_path, synth_data):
    base = ["search", "--space", "mobilenet_v2", "--data", synth_data, "--study", "bad",
            "--results-dir", tmp_path / "results"]
    proc = run_cli(*base, "--supernet", _tiny_supernet(tmp_path))
    assert_one_line_error(proc, "was trained for space 'mobilenet_v1', not space 'mobilenet_v2'")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"PK\x03\x04 not a zip")
    assert_one_line_error(run_cli(*base, "--supernet", junk), "is not an mcunas supernet file")
    np.savez(tmp_path / "plain.npz", a=np.zeros(3))
    assert_one_line_error(run_cli(*base, "--supernet", tmp_path / "plain.npz"), "is not an mcunas supernet file")
    proc = run_cli(*base, "--supernet", _tiny_supernet(tmp_path, "mobilenet_v2"))
    assert_one_line_error(proc, "was trained with --data x, not")
    assert not (tmp_path / "results").exists()
    fitting = _tiny_supernet(tmp_path, "mobilenet_v2", synth_data.resolve())
    assert_one_line_error(run_cli(*base, "--supernet", fitting, "--seed", "1"), "was trained with --seed 0, not 1")
    proc = run_cli(*base, "--supernet", fitting, "--sram", "1KB")
    assert_one_line_error(proc, "no member of space 'mobilenet_v2' fits")
    assert not list((tmp_path / "results").rglob("*.journal"))
    shuffle = _tiny_supernet(tmp_path, "shufflenet_v2", synth_data.resolve())
    assert_one_line_error(run_cli(*base, "--supernet", shuffle),
                          "was trained for space 'shufflenet_v2', not space 'mobilenet_v2'")


@pytest.mark.slow
def test_search_scores_with_a_supernet_and_trains_a_finalist(tmp_path, synth_data):
    net = tmp_path / "tiny.npz"
    proc = run_cli("supernet", "train", "--space", TINY_IR, "--data", synth_data, "--epochs", "1", "--batch", "16",
                   "--out", net, "--json")
    assert proc.returncode == 0, proc.stderr
    assert "supernet epoch 1/1" in proc.stderr and "ETA" in proc.stderr
    made = json.loads(proc.stdout)
    assert made["resolutions"] == [32, 48] and made["file_bytes"] == net.stat().st_size
    args = ["search", "--space", TINY_IR, "--supernet", net, "--data", synth_data, "--study", "sn", "--n-trials", "4",
            "--finalists", "1", "--epochs", "1", "--batch", "16", "--results-dir", tmp_path / "results",
            "--objectives", "accuracy,sram", "--json"]
    proc = run_cli(*args)
    assert proc.returncode == 0, proc.stderr
    figures = json.loads(proc.stdout)
    assert figures["scored"] == 4 and figures["finalists"] == 1 and figures["trained"] == 1  # the finalist
    assert "[scored 4/4," in proc.stderr
    out = tmp_path / "results/sn"  # the run's last write redraws the plots, which it skips between trials
    assert all((out / png).stat().st_mtime_ns >= (out / "trials.csv").stat().st_mtime_ns
               for png in ("pareto_sram.png", "pareto_flash.png", "pareto_macs.png"))
    table = pd.read_csv(out / "trials.csv")  # a user reads the scores there, and which trial each finalist was
    assert table.supernet_accuracy.between(0, 1).sum() == 4 and table.finalist_of.notna().sum() == 1
    assert (table.status == "scored").sum() == 4 and table[table.status == "trained"].finalist_of.notna().all()
    assert "- this run: 1 trained, 4 scored," in (out / "summary.md").read_text()
    scored_number = int(table[table.status == "scored"].number.iloc[0])  # a scored trial has no model to export
    assert_one_line_error(run_cli("export", "--study", "sn", "--trial", scored_number, "--storage",
                                  out / "study.journal", "--out", tmp_path / "x"), "was scored with supernet weights")
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(
        str(tmp_path / "results/sn/study.journal")))
    trials = optuna.load_study(study_name="sn", storage=storage).trials
    scored = [t for t in trials if "supernet_accuracy" in t.user_attrs]
    assert len(scored) == 4 and all(0 <= t.user_attrs["supernet_accuracy"] <= 1 for t in scored)
    assert all(t.values[0] == t.user_attrs["supernet_accuracy"] for t in scored)
    finalists = [t for t in trials if "finalist_of" in t.user_attrs]
    assert len(finalists) == 1 and 0 <= finalists[0].user_attrs["test_accuracy"] <= 1
    chosen = trials[finalists[0].user_attrs["finalist_of"]]
    assert finalists[0].user_attrs["arch"] == chosen.user_attrs["arch"]
    measured, predicted = (finalists[0].user_attrs["tflm_arena_bytes_measured"],
                           finalists[0].user_attrs["costs"]["sram_tflm_bytes"])
    assert measured <= predicted <= measured + max(64, 0.01 * measured)
    # resumed: more scores; a finalist already trained is not trained again
    proc = run_cli(*args[:-1] + ["--n-trials", "1", "--json"])
    assert proc.returncode == 0, proc.stderr
    trials = optuna.load_study(study_name="sn", storage=storage).trials
    again = [t.user_attrs["arch"] for t in trials if "finalist_of" in t.user_attrs]
    assert again.count(finalists[0].user_attrs["arch"]) == 1 and len(again) <= 2


@pytest.mark.parametrize("name", [TINY_IR, "shufflenet_v2"])
def test_sorting_channels_keeps_the_largest_member_and_moves_adam_moments_along(name):
    """After a sort the largest member's logits are the same, a narrower member's differ (it now takes other
    channels), every sorted dimension's importance runs downwards, and Adam's moments moved with their weights."""
    import keras
    import tensorflow as tf

    from mcunas.supernet.net import forward, initial_weights
    from mcunas.supernet.sort import adam_moments, channel_groups, importance, sort_channels

    space = load_space(name)
    shape = largest_shape(space)
    rng = np.random.default_rng(0)
    variables = {k: tf.Variable(v + rng.normal(0, 0.1, v.shape).astype(np.float32))
                 for k, v in initial_weights(shape, 1).items()}
    optimizer = keras.optimizers.Adam(1e-3)
    optimizer.apply_gradients([(tf.constant(rng.normal(0, 1, v.shape).astype(np.float32)), v)
                               for v in variables.values()])
    moments = {k: [m.numpy() for m in adam_moments(optimizer, v)] for k, v in variables.items()}
    before = {k: v.numpy() for k, v in variables.items()}
    x = rng.uniform(0, 1, (8, 32, 32, 3)).astype(np.float32)
    ends = [dataclasses.replace(extreme_arch(space, largest), resolution=32, in_channels=3) for largest in (True, False)]

    def logits():
        return [forward(variables, arch, member_slots(space, arch), x).numpy() for arch in ends]

    largest, smallest = logits()
    groups = channel_groups(space)
    orders = sort_channels(variables, space, optimizer)
    assert len(groups) == len(orders) == (6 if name == TINY_IR else 17)  # 5 / 16 blocks with inner channels, head
    sorted_largest, sorted_smallest = logits()
    # the same network up to float32 summation order over the permuted channels (measured ~1e-5 of the scale)
    assert np.abs(sorted_largest - largest).max() < 1e-4 * np.abs(largest).max() and largest.std() > 0.1
    assert np.abs(sorted_smallest - smallest).max() > 1e-2 * np.abs(smallest).max()
    touched = {}
    for reader, axis, channels, weights in groups:
        scores = importance(variables[reader].numpy(), axis)
        assert (np.diff(scores[:channels]) <= 0).all() and scores[0] > scores[channels - 1]
        touched.update({weight: (orders[reader], dim) for weight, dim in weights})
    if name == TINY_IR:  # sized for the 16-channel stem, reads the 8-channel stage 1: 48 of 6 x 16 channels used
        assert next(g[2] for g in groups if g[0] == "s2b0_project/kernel") == 48
        assert variables["s2b0_project/kernel"].shape[2] == 96
    for key, variable in variables.items():
        np.testing.assert_array_equal(variable.numpy(), _moved(before[key], *touched.get(key, (None, None))))
        for slot, start in zip(adam_moments(optimizer, variable), moments[key]):
            np.testing.assert_array_equal(slot.numpy(), _moved(start, *touched.get(key, (None, None))))
    assert len(touched) > 30 and any(not np.array_equal(m, n.numpy()) for m, n in
                                     zip(moments["s2b0_dw/kernel"], adam_moments(optimizer, variables["s2b0_dw/kernel"])))


def _moved(array, order, axis):
    """``array`` with its leading channels on ``axis`` in ``order`` (unchanged without one)."""
    if order is None:
        return array
    whole = np.arange(array.shape[axis])
    whole[:len(order)] = order
    return np.take(array, whole, axis=axis)
