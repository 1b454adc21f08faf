"""What a flow works on, resolved once per run: the kind's spec, its family and its data root's layout.
Flows resolve a kind name and a data root here and pass the Target (or plain data) to their tasks."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.families import Family, family_of
from pipeline.kinds import Kind, get_kind
from pipeline.layout import Layout


@dataclass(frozen=True)
class Target:
    spec: Kind
    family: Family  # the pipeline side: reader, rules, features
    layout: Layout

    @property
    def kind(self) -> str:
        return self.spec.name

    @property
    def data_root(self) -> str:
        return str(self.layout.root)

    @property
    def champion(self) -> str:
        return f"models:/{self.spec.model_name}@champion"

    def scorer(self):
        """The family's scorer (models side). models.jobs loads torch and mlflow (~4 s of CPU), so it is
        imported by the steps that need a model, and an ingest or features run starts without them."""
        from models.jobs import scorer_of

        return scorer_of(self.spec.family)


def resolve(kind: str, data_root: str | None = None) -> Target:
    """ValueError naming an unknown kind; an s3:// root is reached (its bucket checked) here."""
    spec = get_kind(kind)
    return Target(spec, family_of(spec), Layout.of(kind, data_root))
