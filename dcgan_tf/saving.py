"""Saving a run's state safely: every weight checked finite first, ``config.json`` written beside the
checkpoint, and the advice a run that diverged gives (where to go back to, with which rates).

`save` is called by `epoch_end` (the checkpoint policy) and by `loop` and `training` when a stop is
requested; `check_finite` also guards every epoch's outputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dcgan_tf.config import CONFIG_FILE, TrainConfig
from dcgan_tf.errors import DcganError
from dcgan_tf.files import write_text

if TYPE_CHECKING:
    from dcgan_tf.loop import Session


def save(session: Session) -> str:
    """Checkpoint the run at its batch count, with the config.json it was trained with beside it, once
    every weight is checked finite (a NaN checkpoint would be the one a resume picks up)."""
    check_finite(session)
    write_text(session.store.directory / CONFIG_FILE, session.config.to_json())  # a failed run never rewrites it
    return session.store.save(session.gan.batches_trained)


def check_finite(session: Session) -> None:
    """Raise the diverged-run error unless every weight of the three models is finite."""
    gan = session.gan
    models = {"generator": gan.generator, "discriminator": gan.discriminator, "averaged generator": gan.generator_ema}
    broken = [name for name, model in models.items() if not all(np.isfinite(w).all() for w in model.get_weights())]
    if broken:
        raise diverged(f"the {' and '.join(broken)} weights became NaN/inf by batch {gan.batches_trained}", session)


def diverged(what: str, session: Session) -> DcganError:
    """The one-line error of a run that diverged: nothing of it saved, where to go back to, and how."""
    latest = session.store.latest
    lower = smaller_rates(session.config)
    fix = (
        f"the last good checkpoint is {latest}: resume from it with smaller learning rates, "
        f"--checkpoint {Path(latest).name} {lower} (and this run's other flags)"
        if latest
        else f"no checkpoint was saved yet: start again with smaller learning rates, {lower}"
    )
    return DcganError(f"{what}; nothing of it was saved: {fix}")


def smaller_rates(config: TrainConfig, factor: float = 10.0) -> str:
    """The flags that divide the rates the run used by ``factor``: ``--learning-rate`` where both models
    followed it, else the per-model flags (which win over ``--learning-rate``, so only they change them)."""
    g, d = config.g_learning_rate / factor, config.d_learning_rate / factor
    if config.g_learning_rate == config.d_learning_rate == config.learning_rate:
        return f"--learning-rate {g:g}"
    return f"--g-learning-rate {g:g} --d-learning-rate {d:g}"
