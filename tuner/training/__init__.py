"""The pieces of ``tuner.trainable.train_tts`` (the only part of ``tuner`` that imports ``model``).

settings (config -> TrainSettings), session (the Ray seam), loop (Trainer), batches (resumable
batch order), evaluate (validation), stats (interval metrics), schedule (LR), faults (injection),
checkpoint (files and RNG states), reporting (checkpoint + TensorBoard + report), helpers.
"""
