"""Recipes (--recipe): their values reach the optimizers, flags override them, runs and checkpoints record them."""

from __future__ import annotations

import json

import pytest
import tensorflow as tf
from conftest import snapshot, tiny_flags

from dcgan_tf.checkpoints import checkpoint_recipe, list_checkpoints
from dcgan_tf.config import RECIPES, TrainConfig, parse_config
from dcgan_tf.errors import DcganError
from dcgan_tf.gan import build_gan
from dcgan_tf.training import fit


def adam_settings(config: TrainConfig) -> list[tuple[float, float, float]]:
    """(learning rate, beta_1, beta_2) as the built optimizers of both models hold them."""
    gan = build_gan(config)
    return [
        (float(opt.learning_rate.numpy()), opt.beta_1, opt.beta_2)
        for opt in (gan.generator_optimizer, gan.discriminator_optimizer)
    ]


@pytest.mark.parametrize(
    "flags, expected",
    [
        ([], (1e-4, 0.9, 0.999)),  # the design card: the tutorial's Adam(1e-4)
        (["--recipe", "tutorial"], (1e-4, 0.9, 0.999)),
        (["--recipe", "dcgan-paper"], (2e-4, 0.5, 0.999)),
        (["--recipe", "dcgan-paper", "--learning-rate", "3e-4"], (3e-4, 0.5, 0.999)),  # a flag beats the recipe
        (["--recipe", "dcgan-paper", "--beta1", "0.7", "--beta2", "0.99"], (2e-4, 0.7, 0.99)),
        (["--recipe", "tutorial", "--loss", "wgan-gp"], (1e-4, 0.0, 0.9)),  # the loss fills what the recipe leaves
        (["--recipe", "dcgan-paper", "--loss", "wgan-gp"], (2e-4, 0.5, 0.999)),  # the recipe beats the loss
    ],
)
def test_the_recipes_values_reach_both_optimizers_and_flags_override_them(flags, expected):
    config = parse_config(flags + ["--batch-size", "8"])
    assert adam_settings(config) == [pytest.approx(expected, rel=1e-6)] * 2
    saved = json.loads(config.to_json())  # config.json records the recipe and the values it resolved to
    assert saved["recipe"] == (flags[1] if flags else "tutorial")
    assert (saved["learning_rate"], saved["beta1"], saved["beta2"]) == pytest.approx(expected)


def test_the_fast_recipe_is_dcgan_paper_on_batches_of_64_with_the_self_conditioned_model_and_flags_still_win():
    fast, paper, card = parse_config(["--recipe", "fast"]), parse_config(["--recipe", "dcgan-paper"]), parse_config([])
    assert (fast.batch_size, paper.batch_size, card.batch_size) == (64, 256, 256)
    assert (fast.model, paper.model, card.model) == ("self-conditioned", "dcgan", "dcgan")
    assert (fast.clusters, fast.recluster_every) == (100, 5)  # the recipe's clusters, the model's schedule
    assert (fast.r1, paper.r1, card.r1) == (1.0, 0.0, 0.0)  # R1 since 2026-12-07
    assert parse_config(["--recipe", "fast", "--r1", "0"]).r1 == 0.0  # the recipe without R1
    assert parse_config(["--recipe", "fast", "--loss", "wgan-gp"]).r1 == 0.0  # R1 gives way to WGAN-GP's penalty
    assert parse_config(["--model", "self-conditioned"]).clusters == 10  # the model's own default elsewhere
    assert parse_config(["--recipe", "fast", "--clusters", "12"]).clusters == 12
    assert adam_settings(fast) == adam_settings(paper) == [pytest.approx((2e-4, 0.5, 0.999))] * 2
    assert parse_config(["--recipe", "fast", "--batch-size", "128"]).batch_size == 128
    dcgan = parse_config(["--recipe", "fast", "--model", "dcgan"])  # what --recipe fast trained before issue 28
    assert (dcgan.model, dcgan.clusters, dcgan.batch_size) == ("dcgan", None, 64)
    saved = json.loads(fast.to_json())  # config.json records what the recipe resolved to
    assert (saved["batch_size"], saved["model"], saved["clusters"], saved["r1"]) == (64, "self-conditioned", 100, 1)
    with pytest.raises(DcganError, match="--train-size 32 is smaller than --batch-size 64"):
        TrainConfig(recipe="fast", train_size=32)
    # The recipe's model does not run under a distribution strategy: the refusal names the recipe and the way out.
    with pytest.raises(DcganError, match="--recipe fast trains --model self-conditioned, which works with --strateg"):
        TrainConfig(recipe="fast", strategy="mirrored")
    assert TrainConfig(recipe="fast", model="dcgan", strategy="mirrored").model == "dcgan"


def test_a_fast_run_from_before_fast_picked_its_model_resumes_as_the_dcgan_it_recorded(mnist_path, tmp_path, capsys):
    run = tmp_path / "run"
    # Its config.json is what --recipe fast recorded before issue 28: recipe fast, model dcgan.
    fit(TrainConfig(**tiny_flags(mnist_path, run, epochs=1, recipe="fast", model="dcgan")))
    capsys.readouterr()
    history = fit(TrainConfig(**tiny_flags(mnist_path, run, epochs=2, recipe="fast")))  # typed as it was then
    out = capsys.readouterr().out
    assert (
        "--recipe fast has changed since this run started: it resumes as config.json recorded it, with "
        "--model dcgan" in out
    )
    assert "model            = 'dcgan'" in out and "clusters         = None" in out  # printed at start: not silent
    assert "resuming from" in out and [row["epoch"] for row in history] == [1, 2]
    assert json.loads((run / "config.json").read_text())["model"] == "dcgan"
    # Naming the recipe's new model is asking for another run: refused, nothing touched.
    before = snapshot(run)
    with pytest.raises(DcganError, match=r"holds a run with model='dcgan' \(now 'self-conditioned'\)"):
        fit(TrainConfig(**tiny_flags(mnist_path, run, epochs=3, recipe="fast", model="self-conditioned")))
    assert snapshot(run) == before
    # A new run in another folder gets the recipe's model.
    assert TrainConfig(**tiny_flags(mnist_path, tmp_path / "new", recipe="fast")).model == "self-conditioned"


@pytest.mark.parametrize("clusters", [10, 30])  # what --recipe fast recorded from 2026-12-03, and earlier on 12-06
def test_a_fast_run_from_before_fast_took_100_clusters_resumes_with_the_clusters_it_recorded(clusters):
    before = json.loads(TrainConfig(recipe="fast", clusters=clusters, r1=0.0).to_json())
    resumed, kept = TrainConfig(recipe="fast").as_recorded(before)
    assert kept == {"clusters": clusters, "r1": 0.0}
    assert (resumed.model, resumed.clusters, resumed.r1) == ("self-conditioned", clusters, 0.0)
    assert resumed.conflicts_with(before) == []
    # A flag given wins over the record, and is then a change of the run's identity, refused as any other.
    given, kept = TrainConfig(recipe="fast", clusters=100).as_recorded(before)
    assert kept == {"r1": 0.0} and given.conflicts_with(before) == [f"clusters={clusters} (now 100)"]
    # The DCGAN that fast trained before 2026-12-03 takes no clusters back: only its model (and no R1).
    dcgan = json.loads(TrainConfig(recipe="fast", model="dcgan", r1=0.0).to_json())
    resumed, kept = TrainConfig(recipe="fast").as_recorded(dcgan)
    assert kept == {"model": "dcgan", "r1": 0.0} and (resumed.model, resumed.clusters) == ("dcgan", None)


def test_a_fast_run_from_before_fast_took_r1_resumes_without_it_and_r1_is_then_a_new_run():
    # What --recipe fast recorded before 2026-12-07: a hundred clusters, r1 0 (or, older still, no r1 field).
    before = json.loads(TrainConfig(recipe="fast", r1=0.0).to_json())
    older = {name: value for name, value in before.items() if name != "r1"}
    for saved in (before, older):
        resumed, kept = TrainConfig(recipe="fast").as_recorded(saved)
        assert kept == {"r1": 0.0} and resumed.r1 == 0.0 and resumed.conflicts_with(saved) == []
    # Asking for R1 by flag is asking for another run: a change of identity, refused as any other.
    given, kept = TrainConfig(recipe="fast", r1=1.0).as_recorded(before)
    assert kept == {} and given.conflicts_with(before) == ["r1=0.0 (now 1.0)"]
    # A run made with today's fast keeps its R1.
    assert TrainConfig(recipe="fast").as_recorded(json.loads(TrainConfig(recipe="fast").to_json()))[1] == {}


def test_the_recipes_r1_refuses_mixed_precision_naming_the_way_out_but_an_older_run_resumes_in_it(
    mnist_path, tmp_path, capsys
):
    # A flag's R1 is refused at once; the recipe's names --r1 0 as the way out, and waits for training, which
    # knows whether the folder holds an older fast run recorded without R1.
    with pytest.raises(DcganError, match=r"does not support --r1 \(its gradient penalty .*: use float32$"):
        TrainConfig(recipe="dcgan-paper", r1=1, precision="mixed_bfloat16")
    new = tmp_path / "new"
    with pytest.raises(
        DcganError,
        match=r"--precision mixed_bfloat16 does not support --recipe fast's --r1 1 \(its gradient penalty needs "
        r"float32 second derivatives\): use float32, or add --r1 0 for the recipe's other settings",
    ):
        fit(TrainConfig(**tiny_flags(mnist_path, new, epochs=1, recipe="fast", precision="mixed_bfloat16")))
    assert not new.exists()  # refused before anything was written
    TrainConfig(recipe="fast", precision="mixed_bfloat16", r1=0.0).check_precision()  # the way out it names
    # What fast trained in bfloat16 before 2026-12-07 (no R1) resumes as typed then, without R1, in bfloat16.
    run = tmp_path / "run"
    flags = tiny_flags(mnist_path, run, recipe="fast", clusters=2, precision="mixed_bfloat16")
    fit(TrainConfig(**{**flags, "epochs": 1}, r1=0.0))
    capsys.readouterr()
    history = fit(TrainConfig(**flags))
    assert "it resumes as config.json recorded it, with --r1 0.0" in capsys.readouterr().out
    assert [row["epoch"] for row in history] == [1, 2]
    assert json.loads((run / "config.json").read_text())["r1"] == 0.0


def test_unknown_recipes_and_bad_time_limits_are_refused():
    with pytest.raises(SystemExit):  # argparse's choices
        parse_config(["--recipe", "quick"])
    with pytest.raises(DcganError, match="unknown --recipe 'quick': choose from tutorial, dcgan-paper, fast"):
        TrainConfig(recipe="quick")
    with pytest.raises(DcganError, match="--max-minutes must be a positive number"):
        TrainConfig(max_minutes=0)
    with pytest.raises(DcganError, match="--max-minutes does not work with --strategy multiworker"):
        TrainConfig(max_minutes=5, strategy="multiworker")
    assert set(RECIPES) == {"tutorial", "dcgan-paper", "fast"}


def test_a_run_records_its_recipe_and_refuses_to_resume_with_another(mnist_path, tmp_path, capsys):
    run = tmp_path / "run"
    fit(TrainConfig(**tiny_flags(mnist_path, run, epochs=1, recipe="dcgan-paper")))
    (checkpoint,) = list_checkpoints(run)
    assert checkpoint_recipe(checkpoint.path) == "dcgan-paper"
    assert json.loads((run / "config.json").read_text())["recipe"] == "dcgan-paper"
    before = snapshot(run)
    with pytest.raises(DcganError, match=r"holds a run with recipe='dcgan-paper' \(now 'tutorial'\)"):
        fit(TrainConfig(**tiny_flags(mnist_path, run, epochs=2)))
    assert snapshot(run) == before  # nothing touched
    # The same recipe resumes, and the new checkpoint records it too.
    fit(TrainConfig(**tiny_flags(mnist_path, run, epochs=2, recipe="dcgan-paper")))
    assert checkpoint_recipe(tf.train.latest_checkpoint(str(run))) == "dcgan-paper"


def test_max_minutes_stops_with_a_checkpoint_and_a_rerun_has_nothing_to_do(
    small_data, evaluator_dir, reference, tmp_path, capsys
):
    run = tmp_path / "run"
    flags = tiny_flags(small_data, run, epochs=50, checkpoint_every=10, max_minutes=1e-4, eval_every=5)
    history = fit(TrainConfig(**flags, evaluator_dir=str(evaluator_dir)))
    assert [row["epoch"] for row in history] == [1]  # the first epoch already took longer than 6 ms
    assert "fid" in history[0]  # the last epoch is measured, as at the end of --epochs
    assert [c.epoch for c in list_checkpoints(run)] == [1]
    assert "--max-minutes 0.0001 reached after epoch 1: stopping" in capsys.readouterr().out
    before = snapshot(run)
    assert [row["epoch"] for row in fit(TrainConfig(**flags, evaluator_dir=str(evaluator_dir)))] == [1]
    assert "nothing to do" in capsys.readouterr().out
    assert snapshot(run) == before
