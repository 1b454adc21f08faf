"""The prices family's model: the LSTM forecaster, its job and its pyfunc."""

from models import jobs
from models.prices.job import train_price_forecaster

jobs.register("prices", train_price_forecaster)
