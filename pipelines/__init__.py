"""The data plane: a shared runtime, storage, and the supervised pipelines."""
