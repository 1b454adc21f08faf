"""The settings tree: one definition per setting feeds the CLI (flags, help, defaults), settings files,
RNNFLOW_<SECTION>_<FIELD> variables and the flows' parameters (Prefect's forms)."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys

import pytest

from flows import settings
from flows.cli import build_parser, main
from models.config import LaunchSettings, ModelSettings, TrainConfig
from pipeline.settings import FeatureSettings

HELP = """
import json, sys
from flows.cli import main
try:
    main([sys.argv[1], "--help"])
except SystemExit:
    pass
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "mlflow", "prefect"))))
"""


def help_of(command: str) -> tuple[str, list[str]]:
    done = subprocess.run([sys.executable, "-c", HELP, command], capture_output=True, text=True, check=True)
    text, _, loaded = done.stdout.rpartition("\n[")
    return " ".join(text.split()), json.loads("[" + loaded)


def test_train_help_lists_every_training_model_and_launch_setting_with_its_default():
    text, loaded = help_of("train")
    assert loaded == []  # no torch, mlflow or prefect behind --help
    for cls in (TrainConfig, ModelSettings, LaunchSettings):
        for name, info in cls.model_fields.items():
            flag = "--model" if cls is ModelSettings and name == "model" else "--" + name.replace("_", "-")
            assert flag in text, flag
            assert " ".join(info.description.split()) in text, name
    assert "(default: prices 8, else 12)" in text  # epochs: the text family's own
    assert "stacked recurrent layers (default: names 2, else 1)" in text  # a kind's own
    assert "recurrent state size (default: prices 64, else 128)" in text


def test_features_help_lists_every_feature_setting_with_each_kinds_default():
    text, _ = help_of("features")
    for name in FeatureSettings.model_fields:
        assert "--" + name.replace("_", "-") in text
    assert "(default: names 1, reviews 5, prices n/a)" in text  # min_freq


def test_command_line_beats_environment_beats_settings_file(tmp_path, monkeypatch):
    config = tmp_path / "settings.toml"
    config.write_text(
        "[train]\nepochs = 3\nlr = 0.5\nseed = 4\n[model]\nhidden_size = 32\n[launch]\nnproc = 2\n"
    )
    monkeypatch.setenv("RNNFLOW_TRAIN_LR", "0.25")
    monkeypatch.setenv("RNNFLOW_TRAIN_SEED", "9")
    args = build_parser().parse_args(["train", "names", "--config", str(config), "--seed", "11"])
    assert settings.from_args(args, "train") == {"epochs": 3, "lr": 0.25, "seed": 11}
    assert settings.from_args(args, "model") == {"hidden_size": 32}
    assert settings.from_args(args, "launch") == {"nproc": 2}
    monkeypatch.setenv("RNNFLOW_FEATURES_SPLIT_RATIOS", "0.8,0.1,0.1")
    assert FeatureSettings(**settings.collect("features", None)).split_ratios == (0.8, 0.1, 0.1)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[trian]\nepochs = 3\n", "unknown table [trian]; use train, model, features, launch"),
        ("[train]\nepoch = 3\n", "[train] has no setting 'epoch'"),
        ("[train\n", "not valid TOML"),
    ],
)
def test_a_bad_settings_file_is_one_line(tmp_path, capsys, text, message):
    config = tmp_path / "settings.toml"
    config.write_text(text)
    assert main(["train", "names", "--config", str(config), "--data-root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and message in err, err


def test_a_bad_value_names_its_setting_and_flag():
    with pytest.raises(ValueError, match=r"^epochs \(--epochs\) must be >= 1, got 0$"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match=r"^schedule \(--schedule\) must be one of 'constant' or 'onecycle'"):
        TrainConfig(schedule="cosine")
    with pytest.raises(ValueError, match=r"^nproc \(--nproc\) must be >= 1, got 0$"):
        LaunchSettings(nproc=0)


def test_train_flow_takes_the_sections_as_its_parameters_and_prefect_forms():
    from prefect.utilities.callables import parameter_schema, parameters_to_args_kwargs

    from flows.kind_flows import features_flow, train_flow

    assert len(inspect.signature(train_flow.fn).parameters) <= 6
    given = {"kind": "names", "train": {"epochs": 2}, "model": {"hidden_size": 8}, "launch": {"nproc": 1}}
    validated = train_flow.validate_parameters(given)
    assert validated["train"].epochs == 2 and validated["train"].model_fields_set == {"epochs"}
    assert settings.given(validated["train"]) == {"epochs": 2}  # the rest stays the kind's default
    parameters_to_args_kwargs(train_flow.fn, validated)  # what a worker does with a deployment's run
    schema = parameter_schema(train_flow).model_dump()
    train = schema["definitions"]["TrainOverrides"]["properties"]
    assert set(train) == set(TrainConfig.model_fields)
    assert train["epochs"]["description"] == TrainConfig.model_fields["epochs"].description
    assert "FeatureOverrides" in parameter_schema(features_flow).model_dump()["definitions"]


def test_the_flat_names_of_the_last_release_still_work_with_a_warning(monkeypatch):
    from flows import kind_flows

    monkeypatch.setattr(kind_flows, "get_run_logger", lambda: __import__("logging").getLogger("t"))
    sections = {"train": TrainConfig, "model": ModelSettings, "launch": LaunchSettings}
    with pytest.warns(DeprecationWarning, match=r"epochs -> train=\{'epochs': \.\.\.\}"):
        moved = kind_flows.deprecated(
            {"epochs": 2, "model_options": {"hidden_size": 8}, "nproc": 1}, sections
        )
    assert moved["train"] == {"epochs": 2} and moved["model"] == {"hidden_size": 8}
    assert moved["launch"] == {"nproc": 1}
    with pytest.raises(ValueError, match="unknown parameter 'epoch'"):
        kind_flows.deprecated({"epoch": 2}, sections)
