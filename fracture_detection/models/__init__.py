"""The models and running them: backbones and offline ImageNet weights, the fracture model, saved models with their metadata, the LiteRT runtime."""
