"""The torch side of the layer registry: each layer file's nn.Module classes and builders, in a module of the
same name, imported when a network is first built, so that reading the registry does not import torch."""
