"""The architecture diagrams follow the builders: the stages read from the built models, and the command."""

from __future__ import annotations

import pytest

from dcgan_tf import diagrams
from dcgan_tf.errors import DcganError


def shapes(stages: list[diagrams.Stage]) -> list[tuple[int, ...]]:
    return [stage.output_shape for stage in stages]


def in_order(wanted: list, sequence: list) -> bool:
    remaining = iter(sequence)
    return all(item in remaining for item in wanted)


def test_dcgan_stages_match_the_card():
    from dcgan_tf.models import build_generator, model_spec

    generator = diagrams.stages(build_generator("dcgan", 100))
    assert generator[0] == ("Input", "noise", (100,))
    assert generator[1] == ("Dense", "12544 units, no bias", (12544,))
    assert in_order([(7, 7, 256), (7, 7, 128), (14, 14, 64), (28, 28, 1)], shapes(generator)), shapes(generator)
    assert generator[-1].name == "Conv2DTranspose" and "tanh" in generator[-1].description
    assert generator[-1].output_shape == (28, 28, 1)
    discriminator = diagrams.stages(model_spec("dcgan").make_discriminator(seed=0))
    assert discriminator[0].output_shape == (28, 28, 1)
    assert discriminator[-1].output_shape == (1,)


def test_spectral_norm_is_drawn_as_the_wrapped_layer():
    from dcgan_tf.models import model_spec

    stages = diagrams.stages(model_spec("dcgan").make_discriminator(seed=0, spectral_norm=True))
    assert stages[1].name == "Conv2D" and stages[1].description.endswith("spectral norm")
    assert stages[-1].name == "Dense" and stages[-1].output_shape == (1,)


def test_conditional_models_show_both_inputs_and_the_nested_layers():
    from dcgan_tf.models import build_generator, model_spec

    generator = diagrams.stages(build_generator("conditional", 100))
    discriminator = diagrams.stages(model_spec("conditional").make_discriminator(seed=0))
    for stages, first in ((generator, "noise"), (discriminator, "images")):
        inputs = [stage.description.split(",")[0] for stage in stages if stage.name == "Input"]
        assert sorted(inputs) == sorted([first, "label"])
        assert "Embedding" in [stage.name for stage in stages]
    assert "Conv2D" in [stage.name for stage in discriminator]  # inside the nested 'features' model
    concat = diagrams.stages(build_generator("conditional-concat", 100))
    assert concat[-1] == ("Conv2DTranspose", "1 filter, 5×5, stride 2, same, no bias, tanh", (28, 28, 1))


def test_command_writes_one_png_per_model(tmp_path, capsys):
    assert diagrams.main(["--out", str(tmp_path / "images"), "--models", "dcgan,conditional"]) == 0
    written = sorted(path.name for path in (tmp_path / "images").iterdir())
    assert written == ["architecture-conditional.png", "architecture-dcgan.png"]
    assert all((tmp_path / "images" / name).read_bytes().startswith(b"\x89PNG") for name in written)
    assert "architecture-dcgan.png" in capsys.readouterr().out


def test_unknown_model_is_a_one_line_error(tmp_path):
    with pytest.raises(DcganError, match="nope") as error:
        diagrams.main(["--out", str(tmp_path), "--models", "dcgan,nope"])
    assert "\n" not in str(error.value)
    assert not list(tmp_path.iterdir())  # refused before drawing anything
