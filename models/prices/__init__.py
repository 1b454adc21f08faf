"""The prices family's model: the LSTM forecaster, its job, its pyfunc and its scorer; registered once in
the family tables (models.jobs, models.scoring)."""

from models import jobs
from models import scoring as shared_scoring
from models.prices import scoring
from models.prices.job import train_price_forecaster

jobs.register("prices", train_price_forecaster)
shared_scoring.register("prices", scoring.SCORER)
