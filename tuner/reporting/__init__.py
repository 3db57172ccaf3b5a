"""What a sweep leaves behind and shows: the console, TensorBoard and MLflow, the trial logs,
plots, and the failure analysis."""
