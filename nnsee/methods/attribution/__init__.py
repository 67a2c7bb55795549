"""Attribution methods for any ``torch.nn.Module`` (CNNs included): one file per method, numpy arrays
out, in the model's dtype (float64 maps for a float64 model).

Each takes ``(model, x, target, output="logit"|"softmax")``; ``catalog.METHODS`` lists them by their CLI names.
"""

from nnsee.methods.attribution.catalog import METHODS, attribute
from nnsee.methods.attribution.deconvnet import deconvnet, project_activation
from nnsee.methods.attribution.feature_maps import feature_maps
from nnsee.methods.attribution.filters import first_layer_filters
from nnsee.methods.attribution.grad_cam import grad_cam
from nnsee.methods.attribution.gradient_x_input import gradient_x_input
from nnsee.methods.attribution.guided_backprop import guided_backprop
from nnsee.methods.attribution.integrated_gradients import IGResult, integrated_gradients
from nnsee.methods.attribution.occlusion import occlusion
from nnsee.methods.attribution.occlusion_paper import OcclusionMaps, occlusion_maps
from nnsee.methods.attribution.relu_rules import relu_rule
from nnsee.methods.attribution.saliency import saliency

__all__ = [
    "METHODS",
    "IGResult",
    "OcclusionMaps",
    "attribute",
    "deconvnet",
    "feature_maps",
    "first_layer_filters",
    "grad_cam",
    "gradient_x_input",
    "guided_backprop",
    "integrated_gradients",
    "occlusion",
    "occlusion_maps",
    "project_activation",
    "relu_rule",
    "saliency",
]
