"""Training: the body-part model with its gate, the fracture models, their shared trainer, the compact cache and leave-one-region-out."""
