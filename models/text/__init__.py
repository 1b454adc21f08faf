"""The text family's models: the GRU, the TF-IDF reference, their blend, the jobs, the pyfunc and the
scorer. Nothing is imported here, so importing one model module loads only what it needs; the family's
job and scorer are registered in models/registry.py."""
