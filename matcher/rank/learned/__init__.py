"""Learned rankers: the model, the on-disk registry, training data and the lifecycle."""
