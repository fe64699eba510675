"""Accuracy against ground truth, with the field's own evaluators."""
