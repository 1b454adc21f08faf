"""MLflow models-from-code entry of the price forecaster: the wrapper is the installed rnnflow code."""

from mlflow.models import set_model

from models.prices.pyfunc import PriceForecasterPyfunc

set_model(PriceForecasterPyfunc())
