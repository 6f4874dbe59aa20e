"""Serving: the HTTP app (FastAPI), input validation from the training schema, hot-swapped aliases,
the prediction log, streaming batch prediction and export (ONNX, MLflow pyfunc)."""
