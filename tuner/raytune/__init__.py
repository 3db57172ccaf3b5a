"""The Ray Tune glue: the SmartScheduler, the one module with Ray internals (``_ray_compat``),
reading a search space, storage, and building, running and ending a sweep."""
