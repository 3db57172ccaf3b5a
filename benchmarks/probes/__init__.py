"""One-off measurements and recorders, each run by hand (``python -m benchmarks.probes.<name>``):
CPU training figures, training and real-trial probes, the eval-mode gap, the surrogate's
calibration runs, the trajectory bank, the detection goals, scale and the state journal's cost.
The sweep harness (``make bench``, ``make bench-real``) is the rest of ``benchmarks/``."""
