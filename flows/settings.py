"""Where the settings tree's values come from, and its CLI: flags generated from the fields of
models/config.py and pipeline/settings.py, a settings file (--config FILE.toml) and RNNFLOW_<SECTION>_<FIELD>
variables. Precedence: the command line (or a flow's parameters) > environment > file > the kind's defaults.
"""

from __future__ import annotations

import argparse
import json
import os
import tomllib
import types
import typing
from pathlib import Path

from pydantic import BaseModel

from models.config import (
    LaunchSettings,
    ModelSettings,
    MonitorSettings,
    TrainConfig,
    kind_model_defaults,
    train_config,
)
from pipeline.families import family_of
from pipeline.kinds import KINDS
from pipeline.settings import FeatureSettings

SECTIONS: dict[str, type[BaseModel]] = {
    "train": TrainConfig,
    "model": ModelSettings,
    "features": FeatureSettings,
    "launch": LaunchSettings,
    "monitor": MonitorSettings,
}
FLAGS = {("model", "model"): "--model"}  # every other field's flag is --<field-with-dashes>


def env_name(section: str, name: str) -> str:
    return f"RNNFLOW_{section.upper()}_{name.upper()}"


def from_env(section: str) -> dict:
    """RNNFLOW_<SECTION>_<FIELD> values (JSON where they parse, e.g. 3, true, [0.8,0.1,0.1]; else text)."""
    values = {}
    for name in SECTIONS[section].model_fields:
        raw = os.environ.get(env_name(section, name))
        if raw is None or raw == "":
            continue
        try:
            values[name] = json.loads(raw)
        except json.JSONDecodeError:
            values[name] = raw.split(",") if name == "split_ratios" else raw
    return values


def from_file(path: str | os.PathLike | None) -> dict[str, dict]:
    """A settings file's tables ([train], [model], [features], [launch]); one line naming what is wrong."""
    if path is None:
        return {}
    file = Path(path)
    try:
        tables = tomllib.loads(file.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"--config {path}: no such settings file") from None
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"--config {path}: not valid TOML ({err})") from None
    for section, table in tables.items():
        if section not in SECTIONS or not isinstance(table, dict):
            raise ValueError(f"--config {path}: unknown table [{section}]; use {', '.join(SECTIONS)}")
        unknown = sorted(set(table) - set(SECTIONS[section].model_fields))
        if unknown:
            known = ", ".join(SECTIONS[section].model_fields)
            raise ValueError(f"--config {path}: [{section}] has no setting {unknown[0]!r}; it takes {known}")
    return tables


def given(value) -> dict:
    """The fields a parameter sets: a dict's non-None values, or a settings object's explicitly set ones."""
    if value is None:
        return {}
    if isinstance(value, BaseModel):
        value = value.model_dump(include=value.model_fields_set)
    return {k: v for k, v in dict(value).items() if v is not None}


def collect(section: str, value) -> dict:
    """A section's values for a flow run: what its parameter gives, over the environment's."""
    return from_env(section) | given(value)


# ---------------------------------------------------------------- the generated command line


def kind_defaults(section: str, name: str) -> str:
    """A field's default as the help shows it, per kind where they differ: `names 2, else 1`."""
    per_kind = {}
    for kind, spec in KINDS.items():
        if section == "train":
            per_kind[kind] = getattr(train_config(spec.family), name)
        elif section == "model":
            per_kind[kind] = kind_model_defaults(spec).get(name, "n/a")
        elif section == "features":
            per_kind[kind] = getattr(family_of(spec).feature_config(spec), name, "n/a")
        else:
            per_kind[kind] = SECTIONS[section].model_fields[name].default
    shown = {k: ",".join(map(str, v)) if isinstance(v, tuple) else str(v) for k, v in per_kind.items()}
    if section == "model" and name == "model":
        shown = {k: "rnn" if v == "n/a" and KINDS[k].family == "text" else v for k, v in shown.items()}
    values = list(shown.values())
    common = max(values, key=values.count)  # the first of the most frequent
    if len(set(values)) == 1:
        return common
    if values.count(common) == 1:  # no two kinds agree
        return ", ".join(f"{k} {v}" for k, v in shown.items())
    own = [f"{k} {v}" for k, v in shown.items() if v != common]
    return ", ".join(own) + f", else {common}"


def _kind_of(annotation):
    """(argparse type, choices, is_bool) of a field's annotation, Optional stripped."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        annotation = args[0]
    if typing.get_origin(annotation) is typing.Literal:
        return str, list(typing.get_args(annotation)), False
    if annotation is bool:
        return None, None, True
    if typing.get_origin(annotation) is tuple:
        return split_ratios, None, False
    return annotation, None, False


def split_ratios(text: str) -> tuple[float, float, float]:
    try:
        ratios = tuple(float(x) for x in text.split(","))
    except ValueError:
        ratios = ()
    if len(ratios) != 3:
        raise argparse.ArgumentTypeError(f"{text!r}: give three shares summing to 1, e.g. 0.7,0.15,0.15")
    return ratios


def add_section(parser, section: str, skip: tuple[str, ...] = ()) -> None:
    """One flag per field of a section, its help the field's description and its default (per kind)."""
    for name, info in SECTIONS[section].model_fields.items():
        if name in skip:
            continue
        flag = FLAGS.get((section, name), "--" + name.replace("_", "-"))
        kind, choices, is_bool = _kind_of(info.annotation)
        text = f"{info.description} (default: {kind_defaults(section, name)})"
        dest = f"{section}.{name}"
        if is_bool:
            parser.add_argument(
                flag, dest=dest, action=argparse.BooleanOptionalAction, default=None, help=text
            )
        else:
            metavar = None if choices else name.upper()
            parser.add_argument(
                flag, dest=dest, type=kind, choices=choices, default=None, metavar=metavar, help=text
            )


def from_args(args: argparse.Namespace, section: str) -> dict:
    """A section's values from the command line, over the environment's, over the settings file's."""
    cli = {
        name: getattr(args, f"{section}.{name}")
        for name in SECTIONS[section].model_fields
        if getattr(args, f"{section}.{name}", None) is not None
    }
    file = from_file(getattr(args, "config", None)).get(section, {})
    return file | from_env(section) | cli


def help_of(section: str, name: str) -> str:
    """A field's description (for a flag defined outside its section, e.g. the common --threads)."""
    return SECTIONS[section].model_fields[name].description
