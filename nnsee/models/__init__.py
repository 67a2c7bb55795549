"""Models: softmax regression, MLPs, small CNNs, and a registry by name. Any ``torch.nn.Module`` also trains."""

from nnsee.models.cnn import CNN
from nnsee.models.mlp import MLP
from nnsee.models.registry import build_from_spec, build_model, model_spec, register_model
from nnsee.models.softmax import SoftmaxRegression

__all__ = ["CNN", "MLP", "SoftmaxRegression", "build_from_spec", "build_model", "model_spec", "register_model"]
