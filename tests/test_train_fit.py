"""train_candidate's fit step (TensorFlow, slow)."""

import pytest


@pytest.mark.slow
def test_float_accuracy_is_the_final_weights_on_validation(synth_data, tmp_path):
    """The float accuracy is taken from fit's last validation pass instead of a second evaluation:
    the same number as evaluating the trained model on the validation set."""
    from mcunas.arch import parse_arch
    from mcunas.data import train_val_test
    from mcunas.train import _fit
    from mcunas.train.worker import TrainJob

    arch = parse_arch("in_r16_c3-cv_k3_s2_c8-ds_k3_s2_c16-gap-fc_c2")
    job = TrainJob(arch=str(arch), data=str(synth_data), eval_data=None, epochs=2, batch=16, recipe="fast",
                   seed=1, out_dir=str(tmp_path))
    sets = train_val_test(job.data, None, arch.resolution, arch.in_channels, 0)
    (x_train, y_train), (x_val, y_val) = sets["train"], sets["val"]
    fitted = _fit(job, arch, x_train, y_train, x_val, y_val, None)
    evaluated = fitted.model.evaluate(fitted.eval_ds, verbose=0, return_dict=True)["accuracy"]
    assert fitted.float_accuracy == pytest.approx(float(evaluated), abs=1e-7)
    assert 0 < len(y_val) and 0.0 <= fitted.float_accuracy <= 1.0
