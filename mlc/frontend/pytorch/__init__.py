"""The PyTorch frontend: FX graphs (as Dynamo traces them) imported as mlc models."""
