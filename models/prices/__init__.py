"""The prices family's model: the LSTM forecaster, its job, its pyfunc and its scorer. Nothing is imported
here, so importing one model module loads only what it needs; the family's job and scorer are registered
in models/registry.py."""
