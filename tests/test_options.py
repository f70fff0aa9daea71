"""Training options: learning-rate schedules and two rates, R1, spectral norm, hinge loss, DiffAugment,
the averaging half-life, and the conditional-BatchNorm generator; each trains, resumes exactly and samples."""

from __future__ import annotations

import contextlib
import math
import shutil
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import REPO, assert_one_line_error, differing_share, run_tool, snapshot, tiny_flags

from dcgan_tf import augment
from dcgan_tf.averaging import half_life_decay
from dcgan_tf.checkpoints import list_checkpoints, load_generator
from dcgan_tf.config import AUGMENTATIONS, RECIPES, TrainConfig, build_parser, parse_config
from dcgan_tf.draws import AUGMENT_FAKE, AUGMENT_REAL, Draws
from dcgan_tf.errors import DcganError
from dcgan_tf.losses import Batch, get_loss, hinge_discriminator_loss, hinge_generator_loss, r1_penalty
from dcgan_tf.models import build_models, make_discriminator
from dcgan_tf.players import Players
from dcgan_tf.schedules import lr_factor, top_k_fraction
from dcgan_tf.training import fit

RESUME_TOLERANCE = 1e-3  # as tests/test_train.py: oneDNN may sum a gradient in another order

# Every option at once (the hinge loss carries R1); tiny, so it trains in seconds.
ALL_OPTIONS = dict(
    loss="hinge",
    lr_schedule="cosine",
    g_learning_rate=1e-4,
    d_learning_rate=4e-4,
    r1=1.0,
    spectral_norm=True,
    augment="translation,cutout",
    ema_half_life=2000.0,
    top_k=0.5,
    top_k_decay=0.5,  # the whole batch in epoch 1, half of it from epoch 2
    g_width=0.75,
    d_width=1.25,
)


def test_r1_penalty_matches_the_closed_form_of_a_quadratic_discriminator():
    rng = np.random.default_rng(0)
    images = tf.constant(rng.standard_normal((4, 28, 28, 1)), tf.float32)
    a = tf.constant(rng.uniform(0.5, 2.0, (28, 28, 1)), tf.float32)

    # D(x) = sum(a * x^2) / 2 + 1: its gradient is a * x, so R1 = gamma / 2 * sum(a^2 x^2) per example.
    def judge(x):
        return 0.5 * tf.reduce_sum(a * tf.square(x), axis=[1, 2, 3])[:, None] + 1.0

    logits, penalty = r1_penalty(judge, images, gamma=3.0)
    expected = 1.5 * np.sum(np.square(a.numpy() * images.numpy()), axis=(1, 2, 3))
    np.testing.assert_allclose(penalty.numpy(), expected, rtol=1e-5)
    np.testing.assert_allclose(logits.numpy(), judge(images).numpy())


def test_hinge_losses_count_only_scores_inside_the_margin():
    real, fake = tf.constant([[2.0], [0.5]]), tf.constant([[-3.0], [0.25]])
    np.testing.assert_allclose(hinge_discriminator_loss(real, fake).numpy(), [0.0, 0.5 + 1.25])
    np.testing.assert_allclose(hinge_generator_loss(fake).numpy(), [3.0, -0.25])


def test_schedules_decay_to_zero_at_epochs_end_through_the_last_batch():
    def factor(schedule, batches):  # the factor of the batch trained after `batches` of 100
        return float(lr_factor(schedule, tf.constant(batches, tf.int64), 100))

    assert factor("constant", 99) == 1.0
    assert factor("linear", 25) == pytest.approx(0.75)
    assert factor("cosine", 0) == 1.0 and factor("cosine", 50) == pytest.approx(0.5)
    # The last batch a run trains (the 100th, after 99) takes the smallest rate, one step short of zero...
    assert factor("linear", 99) == pytest.approx(0.01)
    assert factor("cosine", 99) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.99)), rel=1e-4)  # float32
    assert 0 < factor("cosine", 99) < factor("cosine", 98)
    # ...and zero is where the schedule ends, at --epochs (a run continued past it would train at rate 0).
    assert factor("linear", 100) == 0.0 and factor("cosine", 100) == pytest.approx(0.0, abs=1e-7)
    assert factor("cosine", 150) == pytest.approx(0, abs=1e-7)


def test_top_k_keeps_exactly_k_of_the_batch_those_rated_most_real():
    per_example = tf.constant(np.arange(10, dtype=np.float32))  # the generator loss of images 0-9
    scores = tf.constant([0.3, 2.0, -1.0, 5.0, 0.0, 1.0, -3.0, 4.0, 0.1, -0.2])  # D's logits of the same images
    assert float(Batch(None, None, 10).generator_mean(per_example, scores)) == pytest.approx(4.5)  # all of them
    # k = round(0.3 x 10) = 3: images 3, 7 and 1 (logits 5, 4, 2), whatever their losses.
    assert float(Batch(None, None, 10, tf.constant(0.3)).generator_mean(per_example, scores)) == pytest.approx(11 / 3)
    # Never fewer than one; on one of two replicas (global batch 20) its share is half its own mean.
    assert float(Batch(None, None, 10, tf.constant(0.01)).generator_mean(per_example, scores)) == 3.0
    assert float(Batch(None, None, 20, tf.constant(0.3)).generator_mean(per_example, scores)) == pytest.approx(11 / 6)


def test_top_k_anneals_by_the_decay_each_epoch_down_to_its_fraction():
    def fraction(batches):  # at 10 batches an epoch, --top-k 0.5 --top-k-decay 0.8
        return float(top_k_fraction(tf.constant(batches, tf.int64), 10, 0.5, 0.8))

    assert fraction(0) == fraction(9) == 1.0  # the whole first epoch
    assert fraction(10) == pytest.approx(0.8) and fraction(25) == pytest.approx(0.64)
    assert fraction(30) == pytest.approx(0.512)  # 0.8^3, still above the floor
    assert fraction(40) == 0.5 == fraction(1000)  # 0.8^4 = 0.41 is below it


def test_width_multipliers_scale_every_layer_and_the_card_stays_the_default():
    def channels(model):  # every Dense's units and every convolution's filters, in order
        return [getattr(layer, "filters", None) or layer.units for layer in model.layers if "kernel" in dir(layer)]

    generator, discriminator = build_models("dcgan", 100)
    wide_g, narrow_d = build_models("dcgan", 100, widths=(1.5, 0.5))
    assert channels(generator) == [12544, 128, 64, 1] and channels(wide_g) == [18816, 192, 96, 1]
    assert channels(discriminator) == [64, 128, 1] and channels(narrow_d) == [32, 64, 1]
    assert wide_g.output_shape == generator.output_shape == (None, 28, 28, 1)


def test_half_life_window_ramps_up_then_holds():
    # 10,000 images seen: the window is 5% of them (500 images); later the half-life itself (2,000 images).
    assert float(half_life_decay(2000, 100, 100)) == pytest.approx(0.5 ** (100 / 500))
    assert float(half_life_decay(2000, 100, 10_000)) == pytest.approx(0.5 ** (100 / 2000))
    # The first update comes after the first optimizer step (t = 1): 100 images seen, a window of 5, so the
    # average moves 1 - 0.5**20 of the way to the weights: all but a copy.
    assert float(half_life_decay(2000, 100, 1)) == pytest.approx(0.5**20)


def test_augmentations_move_and_blank_with_the_background():
    page = -np.ones((2, 28, 28, 1), np.float32)
    page[:, 10, 12] = 1.0  # one white pixel
    # u = 1/9 * k + tiny picks shift k - 4: (+4 down, -4 right) for image 0, no shift for image 1.
    u = tf.constant([[8.5 / 9, 0.5 / 9], [4.5 / 9, 4.5 / 9]], tf.float32)
    moved = augment.translation(tf.constant(page), u).numpy()
    assert moved[0, 14, 8, 0] == 1.0 and moved[0].sum() == -28 * 28 + 2  # moved, nothing else lit
    np.testing.assert_array_equal(moved[1], page[1])
    assert (moved[0, :4] == -1).all()  # what moved in is background

    ones = tf.ones((2, 28, 28, 1))
    centre = tf.constant([[14.5 / 29, 14.5 / 29], [0.5 / 29, 0.5 / 29]], tf.float32)  # centres (14, 14) and (0, 0)
    cut = augment.cutout(ones, centre).numpy()
    assert (cut[0] == -1).sum() == 14 * 14 and cut[0, 7:21, 7:21].min() == cut[0, 7:21, 7:21].max() == -1
    assert (cut[1] == -1).sum() == 7 * 7  # clipped at the corner
    assert tuple(augment.POLICIES) == AUGMENTATIONS


@pytest.mark.parametrize("loss, r1", [("bce", 1.0), ("hinge", 0.0), ("wgan-gp", 0.0)])
def test_the_discriminator_sees_real_and_generated_images_only_through_the_augmentation(loss, r1):
    """An augmentation that blanks every image makes real and generated images identical to a dropout-free
    discriminator: equal scores prove it judged the augmented tensors, both kinds."""
    generator = build_models("dcgan", noise_dim=8, seed=0)[0]
    discriminator = make_discriminator(seed=0, dropout=0.0)
    optimizers = [keras.optimizers.Adam(1e-4) for _ in range(2)]
    for model, optimizer in zip((generator, discriminator), optimizers):
        optimizer.build(model.trainable_variables)
    streams = []

    class Blanking(Draws):  # the step's draws, with an augmentation that blanks every image
        def augment(self, images, stream):
            streams.append(stream)
            return images * 0.0 - 1.0  # connected to the images, so the generator's gradient exists (zero)

    draws = Blanking(seed=0, step=tf.constant(0, tf.int64), global_batch=4, first=0, local_batch=4)
    images = tf.random.uniform((4, 28, 28, 1), -1, 1, seed=1)
    blank_score = float(tf.reduce_mean(discriminator(-tf.ones((4, 28, 28, 1)))))  # before the update
    metrics = get_loss(loss, r1).replica_step(
        Players(generator, discriminator, *optimizers), Batch(images, tf.zeros(4, tf.int32), 4), draws, True
    )
    assert {AUGMENT_REAL, AUGMENT_FAKE} <= set(streams)
    assert float(metrics["d_real"]) == pytest.approx(float(metrics["d_fake"]), abs=1e-6)
    shown = 1 / (1 + math.exp(-blank_score)) if loss == "bce" else blank_score  # bce: a probability; else raw
    assert float(metrics["d_real"]) == pytest.approx(shown, abs=1e-5)


@pytest.mark.parametrize(
    "flags, fragment",
    [
        (dict(r1=-1.0), "--r1"),
        (dict(r1=math.nan), "--r1"),
        (dict(r1=1.0, loss="wgan-gp"), "--r1"),
        (dict(r1=1.0, precision="mixed_bfloat16"), "--r1"),
        (dict(augment="translation,flip"), "flip"),
        (dict(lr_schedule="step"), "--lr-schedule"),
        (dict(d_learning_rate=0.0), "--d-learning-rate"),
        (dict(ema_half_life=-5.0), "--ema-half-life"),
        (dict(spectral_norm=True, strategy="mirrored"), "--spectral-norm"),
        (dict(top_k=0.0), "--top-k"),
        (dict(top_k=1.5), "--top-k"),
        (dict(top_k=0.5, top_k_decay=0.0), "--top-k-decay"),
        (dict(g_width=0.1), "--g-width"),
        (dict(d_width=math.nan), "--d-width"),
    ],
)
def test_impossible_options_are_refused(flags, fragment):
    with pytest.raises(DcganError, match=fragment):
        TrainConfig(**flags)


def test_options_resolve_from_the_recipe_and_older_configs_count_as_off():
    config = TrainConfig(augment="cutout, translation,cutout", learning_rate=3e-4)
    assert config.augment == "cutout,translation" and config.augmentations == ("cutout", "translation")
    assert (config.g_learning_rate, config.d_learning_rate) == (3e-4, 3e-4)
    assert (config.r1, config.lr_schedule, config.spectral_norm) == (0.0, "constant", False)
    older = {"learning_rate": 3e-4, "recipe": "tutorial", "epochs": 100}  # saved before the options existed
    assert TrainConfig(learning_rate=3e-4).conflicts_with(older) == []
    assert TrainConfig(learning_rate=3e-4, r1=1.0).conflicts_with(older) == ["r1=0.0 (now 1.0)"]
    decaying = TrainConfig(learning_rate=3e-4, lr_schedule="linear", epochs=50)
    assert TrainConfig(**older).conflicts_with(older) == []
    assert "epochs=100 (now 50)" in decaying.conflicts_with({**older, "lr_schedule": "linear"})
    # Another --learning-rate is one change, even though both per-model rates followed it.
    assert TrainConfig(learning_rate=1e-4).conflicts_with(older) == ["learning_rate=0.0003 (now 0.0001)"]
    two_rates = TrainConfig(learning_rate=1e-4, d_learning_rate=4e-4).conflicts_with(older)
    assert two_rates == ["learning_rate=0.0003 (now 0.0001)", "d_learning_rate=0.0003 (now 0.0004)"]


def test_all_options_train_resume_exactly_and_sample(mnist_path, tmp_path):
    """A branch from epoch 1 retrains epoch 2 exactly: the schedule's position, the R1 and augmentation
    draws, the spectral norms' vectors and the averaging window all come back from the checkpoint."""
    straight = tmp_path / "straight"
    fit(TrainConfig(**tiny_flags(mnist_path, straight, **ALL_OPTIONS)))
    first, last = list_checkpoints(straight)
    variables = [name for name, _ in tf.train.list_variables(last.path)]
    assert sum("vector_u" in name for name in variables) == 3  # two convolutions and the logit layer

    branch = tmp_path / "branch"
    shutil.copytree(straight, branch)
    fit(TrainConfig(**tiny_flags(mnist_path, branch, checkpoint=first.name, **ALL_OPTIONS)))
    for which in ("raw", "ema"):
        want, got = (
            load_generator(straight, which=which).get_weights(),
            load_generator(branch, which=which).get_weights(),
        )
        assert differing_share(want, got) <= RESUME_TOLERANCE, which
    # The cosine schedule set the rates of the last of the 8 batches (t = 7) at 8 batches in all.
    reader = tf.train.load_checkpoint(last.path)
    factor = 0.5 * (1 + math.cos(math.pi * 7 / 8))
    for name, base in (("generator", 1e-4), ("discriminator", 4e-4)):
        rate = reader.get_tensor(f"{name}_optimizer/_learning_rate/.ATTRIBUTES/VARIABLE_VALUE")
        assert rate == pytest.approx(base * factor, rel=1e-5), name

    result = run_tool("dcgan_tf.sample", f"--checkpoint-dir={branch}", f"--out={tmp_path / 's.png'}", "--num=4")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "s.png").is_file()


@pytest.mark.parametrize("model", ["dense", "conditional"])
def test_options_work_with_the_other_models(model, mnist_path, tmp_path):
    flags = tiny_flags(mnist_path, tmp_path / model, model=model, epochs=1, **ALL_OPTIONS)
    history = fit(TrainConfig(**flags))
    assert len(history) == 1 and np.isfinite(history[0]["generator_loss"])
    widths = (ALL_OPTIONS["g_width"], ALL_OPTIONS["d_width"])
    assert load_generator(tmp_path / model).count_params() == build_models(model, 100, widths=widths)[0].count_params()


def test_a_resume_with_other_options_is_refused_in_one_line(trained_run, mnist_path, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    before = snapshot(run)
    base = ["dcgan_tf.train", "--data", str(mnist_path), "--train-size", "256", "--batch-size", "64"]
    assert_one_line_error(
        run_tool(*base, "--epochs", "3", "--r1", "1", "--checkpoint-dir", str(run)), "r1=0.0 (now 1.0)"
    )
    for option, fragment in (
        (dict(augment="cutout"), "augment='none' (now 'cutout')"),
        (dict(lr_schedule="cosine"), "lr_schedule='constant' (now 'cosine')"),
        (dict(spectral_norm=True), "spectral_norm=False (now True)"),
        (dict(top_k=0.5), "top_k=1.0 (now 0.5)"),
        (dict(g_width=2.0), "g_width=1.0 (now 2.0)"),
    ):
        with pytest.raises(DcganError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
            fit(TrainConfig(**tiny_flags(mnist_path, run, epochs=3, **option)))
    assert snapshot(run) == before


def test_the_recipe_search_ablates_each_part_and_shares_runs_by_their_parts():
    sys.path.insert(0, str(REPO / "benchmarks"))
    import recipe_search

    runs = recipe_search.ablation(("paper", "cosine", "r1"))
    assert runs == {
        "paper+cosine+r1 -paper": ("cosine", "r1"),
        "paper+cosine+r1 -cosine": ("paper", "r1"),
        "paper+cosine+r1 -r1": ("paper", "cosine"),
    }
    # "-r1" is the candidate "+cosine": the same parts, the same run folder, trained once.
    assert recipe_search.run_name(runs["paper+cosine+r1 -r1"]) == recipe_search.run_name(
        recipe_search.CANDIDATES["+cosine"]
    )
    for name, flags in recipe_search.PARTS.items():  # every part's flags give a valid configuration with them
        config, parsed = parse_config(flags), build_parser().parse_args(flags)
        given = {key: value for key, value in vars(parsed).items() if value != build_parser().get_default(key)}
        assert given, name
        for key, value in given.items():
            assert getattr(config, key) == value, (name, key)


def test_the_recipe_search_leaderboard_states_the_limits_its_runs_recorded():
    sys.path.insert(0, str(REPO / "benchmarks"))
    import recipe_search

    def result(minutes: float, epochs: int, fid: float) -> dict:
        final = {"fid": fid, "classifier_score": 8.0, "precision": 0.5, "recall": 0.8, "class_histogram": [1] * 10}
        last = {"epoch": epochs}
        return {"final": final, "rows": [], "last": last, "steps": 10, "parts": ("paper",), "config": {
            "max_minutes": minutes, "epochs": epochs}}  # fmt: skip

    same = recipe_search.leaderboard({"a": result(300, 21, 5.0), "b": result(300, 21, 6.0)})
    assert same.startswith("Each run trained for at most 300 minutes or 21 epochs")
    mixed = recipe_search.leaderboard({"a": result(300, 30, 5.0), "b": result(300, 21, 6.0)})
    assert mixed.startswith("Each run trained to the limits in its config.json")
    assert mixed.index("| a |") < mixed.index("| b |")  # sorted by FID


def test_spectral_norm_keeps_the_logits_float32_under_mixed_precision():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        discriminator = make_discriminator(seed=0, spectral_norm=True)
    finally:
        keras.config.set_dtype_policy(previous)
    assert discriminator(tf.zeros((2, 28, 28, 1)), training=True).dtype == tf.float32


def test_a_recipe_may_set_options_and_flags_still_win(monkeypatch):
    monkeypatch.setitem(RECIPES, "trial", {"learning_rate": 2e-4, "lr_schedule": "cosine", "r1": 0.5})
    trial = TrainConfig(recipe="trial")
    assert (trial.lr_schedule, trial.r1, trial.augment) == ("cosine", 0.5, "none")
    assert TrainConfig(recipe="trial", lr_schedule="constant", r1=0.0).lr_schedule == "constant"


def test_r1_is_taken_on_the_real_images_as_they_are_not_as_augmented(monkeypatch):
    from dcgan_tf import losses

    seen = []
    real_r1 = losses.r1_penalty

    def recording_r1(judge, images, gamma):
        seen.append(images)
        return real_r1(judge, images, gamma)

    monkeypatch.setattr(losses, "r1_penalty", recording_r1)
    generator = build_models("dcgan", noise_dim=8, seed=0)[0]
    discriminator = make_discriminator(seed=0)
    optimizers = [keras.optimizers.Adam(1e-4) for _ in range(2)]
    for model, optimizer in zip((generator, discriminator), optimizers):
        optimizer.build(model.trainable_variables)
    images = tf.random.uniform((4, 28, 28, 1), -1, 1, seed=1)
    for augmentations in ((), ("cutout",)):
        draws = Draws(seed=0, step=tf.constant(0, tf.int64), global_batch=4, first=0, local_batch=4,
                      augmentations=augmentations)  # fmt: skip
        assert not np.array_equal(draws.augment(images, AUGMENT_REAL).numpy(), images.numpy()) or not augmentations
        get_loss("bce", 1.0).replica_step(
            Players(generator, discriminator, *optimizers), Batch(images, tf.zeros(4, tf.int32), 4), draws, True
        )
        np.testing.assert_array_equal(seen[-1].numpy(), images.numpy())


@pytest.mark.parametrize("policy", AUGMENTATIONS)
def test_the_generator_gets_a_gradient_through_each_augmentation(policy):
    generator = build_models("dcgan", noise_dim=8, seed=0)[0]
    discriminator = make_discriminator(seed=0, dropout=0.0)
    draws = Draws(seed=3, step=tf.constant(5, tf.int64), global_batch=8, first=0, local_batch=8,
                  augmentations=(policy,))  # fmt: skip
    noise = tf.random.normal((8, 8), seed=2)
    with tf.GradientTape() as tape:
        score = tf.reduce_sum(discriminator(draws.augment(generator(noise, training=True), AUGMENT_FAKE)))
    grads = tape.gradient(score, generator.trainable_variables)
    assert all(g is not None for g in grads)
    assert all(float(tf.reduce_max(tf.abs(g))) > 0 for g in grads), policy


def test_a_half_life_average_resumes_mid_epoch_exactly(mnist_path, tmp_path, monkeypatch):
    """A window of several steps (batches of 8: the 5% ramp allows ~26 images, ~3 batches) resumed from a
    checkpoint that a stop request left in the middle of epoch 2 ends where the uninterrupted run ends."""
    from dcgan_tf import training
    from dcgan_tf.gan import Gan

    flags = dict(batch_size=8, train_size=128, ema_half_life=5000.0)  # a stop request is seen after any batch
    straight = tmp_path / "straight"
    fit(TrainConfig(**tiny_flags(mnist_path, straight, **flags)))  # 2 epochs of 16 batches
    raw, averaged = (load_generator(straight, which=w).get_weights() for w in ("raw", "ema"))
    assert differing_share(raw, averaged, atol=2e-5) > 0.5  # a real average (Adam moves a weight ~1e-4 a step)

    requests, make_step = [], Gan.make_step

    def stopping_step(self, *args, **kwargs):  # a stop request after the 21st batch: epoch 2, batch 5
        step, calls = make_step(self, *args, **kwargs), []

        def counted(*batch):
            calls.append(1)
            if len(calls) == 21:
                requests.append(2)
            return step(*batch)

        return counted

    monkeypatch.setattr(Gan, "make_step", stopping_step)
    monkeypatch.setattr(training, "stop_requests", lambda: contextlib.nullcontext(requests))
    resumed = tmp_path / "resumed"
    with pytest.raises(DcganError, match="batch 5/16"):
        fit(TrainConfig(**tiny_flags(mnist_path, resumed, **flags)))
    monkeypatch.undo()
    assert [(c.epoch, c.epoch_batches) for c in list_checkpoints(resumed)][-1] == (1, 5)
    fit(TrainConfig(**tiny_flags(mnist_path, resumed, **flags)))
    for which in ("raw", "ema"):
        want, got = (
            load_generator(straight, which=which).get_weights(),
            load_generator(resumed, which=which).get_weights(),
        )
        assert differing_share(want, got) <= RESUME_TOLERANCE, which
