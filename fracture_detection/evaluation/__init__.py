"""Evaluation: the figures the field reports, the evaluation of the whole chain, the model card."""
