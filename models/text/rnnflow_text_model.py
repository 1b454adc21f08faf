"""MLflow models-from-code entry of the text classifier: the wrapper is the installed rnnflow code."""

from mlflow.models import set_model

from models.text.pyfunc import TextClassifierPyfunc

set_model(TextClassifierPyfunc())
