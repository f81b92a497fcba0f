"""Cheap intent classifiers with no language model: the baselines the specialist must beat, and
the fallback tiers behind it when serving."""
