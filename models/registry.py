"""The one place the model families are named: each family's training job and scorer (models/text,
models/prices), imported here and by no other shared module (tests/test_layout.py).

Importing this module loads torch and MLflow (~4 s), so models.jobs imports it on first lookup, not at
its own import: an ingest or features run never needs it. A new family is one more entry below
(docs/adding-a-family.md)."""

from __future__ import annotations

from dataclasses import replace

from models.jobs import Entry
from models.prices import pyfunc as prices_pyfunc  # noqa: F401  (registers its models-from-code entry)
from models.prices import scoring as prices_scoring
from models.prices.job import train_price_forecaster
from models.text import pyfunc as text_pyfunc  # noqa: F401  (registers its models-from-code entry)
from models.text import scoring as text_scoring
from models.text.evaluation import evaluate_text
from models.text.job import train_text_classifier

FAMILIES: dict[str, Entry] = {
    "text": Entry(train_text_classifier, replace(text_scoring.SCORER, evaluate=evaluate_text)),
    "prices": Entry(train_price_forecaster, prices_scoring.SCORER),
}
