"""The text family's models: the GRU, the n-gram reference, their blend, the job and the pyfunc."""

from models import jobs
from models.text.job import train_text_classifier

jobs.register("text", train_text_classifier)
