"""The text family's models: the GRU, the TF-IDF reference, their blend, the job, the pyfunc and the
scorer; registered once in the model family table (models.jobs)."""

from dataclasses import replace

from models import jobs
from models.text import scoring
from models.text.evaluation import evaluate_text
from models.text.job import train_text_classifier

jobs.register("text", train_text_classifier, replace(scoring.SCORER, evaluate=evaluate_text))
