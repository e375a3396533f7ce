"""Training recipes: ``paper`` (the VWW paper's) and ``fast`` (short campaigns).

``paper``: RMSProp with decay (rho) 0.9 and momentum 0.9, learning rate 0.045
decayed ×0.98 per epoch, batch-norm decay 0.99 (set in the Keras builder).
RMSProp's epsilon is 1.0 as in the TF-slim MobileNet training scripts the
paper's models come from; with Keras' default 1e-7 the 0.045 rate diverges.

``fast``: Adam at 2e-3 with cosine decay to zero over the run, batch-norm
momentum 0.9 — for
campaigns of a few epochs per candidate, where the paper's slow schedule
would barely move from its starting point.
"""

from __future__ import annotations

RECIPES = ("fast", "paper")
# BatchNorm moving-average momentum: the paper's 0.99 needs thousands of steps to
# forget its initial statistics; a few-epoch campaign evaluates with BN stats that
# are still mostly the initial ones (chance accuracy), so `fast` uses 0.9.
BN_MOMENTUM = {"paper": 0.99, "fast": 0.9}


def compile_for_recipe(model, recipe: str, steps_per_epoch: int, epochs: int = 1) -> None:
    import keras

    if recipe == "paper":
        schedule = keras.optimizers.schedules.ExponentialDecay(
            0.045, decay_steps=steps_per_epoch, decay_rate=0.98, staircase=True)
        optimizer = keras.optimizers.RMSprop(schedule, rho=0.9, momentum=0.9, epsilon=1.0)
    elif recipe == "fast":
        schedule = keras.optimizers.schedules.CosineDecay(2e-3, decay_steps=steps_per_epoch * max(1, epochs))
        optimizer = keras.optimizers.Adam(schedule)
    else:
        raise ValueError(f"unknown recipe {recipe!r}; expected one of {RECIPES}")
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
