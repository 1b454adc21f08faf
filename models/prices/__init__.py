"""The prices family's model: the LSTM forecaster, its job, its pyfunc and its scorer; registered once in
the model family table (models.jobs)."""

from models import jobs
from models.prices import scoring
from models.prices.job import train_price_forecaster

jobs.register("prices", train_price_forecaster, scoring.SCORER)
