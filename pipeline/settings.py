"""The feature settings of the settings tree: what `rnnflow features`, the features flow and a settings
file's [features] table may set. Unset fields take the kind's defaults (its family's feature config)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

RULES = {
    "greater_than_equal": "must be >= {ge}",
    "greater_than": "must be > {gt}",
    "less_than": "must be < {lt}",
    "literal_error": "must be one of {expected}",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_parsing": "must be a number",
    "bool_parsing": "must be true or false",
    "extra_forbidden": "is not a setting here",
}


def one_line(err: ValidationError) -> ValueError:
    """A settings error as one line naming the field and its flag, the rule and the value given:
    `epochs (--epochs) must be >= 1, got 0`."""
    first = err.errors()[0]
    name = ".".join(str(p) for p in first["loc"])
    flag = "--" + name.replace("_", "-")
    rule = RULES.get(first["type"], first["msg"].removeprefix("Value error, ")).format(**first.get("ctx", {}))
    value = first.get("input")
    return ValueError(
        f"{name} ({flag}) {rule}, got {value!r}"
        if isinstance(value, str)
        else f"{name} ({flag}) {rule}, got {value}"
    )


class Settings(BaseModel):
    """A section of the settings tree: frozen, unknown fields refused, errors in one line."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    section: ClassVar[str] = "settings"

    def __init__(self, **values) -> None:
        try:
            super().__init__(**values)
        except ValidationError as err:
            raise one_line(err) from None

    def to_dict(self) -> dict:
        return self.model_dump()

    def given(self) -> dict:
        """The fields set (not None)."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


class FeatureSettings(Settings):
    section: ClassVar[str] = "features"

    max_buckets: int | None = Field(None, ge=1, description="text: at most this many length buckets")
    min_freq: int | None = Field(None, ge=1, description="text: rarer tokens map to <unk>")
    max_tokens: int | None = Field(None, ge=1, description="text: keep the first N tokens of longer texts")
    split_ratios: tuple[float, float, float] | None = Field(
        None,
        description="train,val,test shares: of rows without a split (text), of trading dates in order "
        "(prices)",
    )
    lookback: int | None = Field(None, ge=2, description="prices: trading days per window")
    target: Literal["close", "log_return"] | None = Field(
        None,
        description="prices: regress the next log return (a correction to persistence) or the "
        "window-normalised next close",
    )


def overrides(cls: type[Settings]) -> type[BaseModel]:
    """`cls` with every field optional (None: the kind's default) and unbounded: what a flow takes as a
    parameter, so that the Prefect UI's form leaves a setting empty unless it is given, the family's
    default applies, and a bad value fails the run with the section's one-line error."""
    fields = {
        name: (info.annotation | None, Field(None, description=info.description))
        for name, info in cls.model_fields.items()
    }
    name = cls.__name__.removesuffix("Config").removesuffix("Settings") + "Overrides"
    return create_model(name, __config__=ConfigDict(extra="forbid"), **fields)


FeatureOverrides = overrides(FeatureSettings)
