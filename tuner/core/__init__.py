"""The Ray-free core: configuration, the result history, the rules, the recovery policy and
planner, and the Supervisor that drives them (for Ray Tune and the benchmark harness alike).

Imports neither Ray, torch, MLflow, ``model/`` nor ``benchmarks/`` (tools/import_graph.py --check and tests/test_import_graph.py check it).
"""
