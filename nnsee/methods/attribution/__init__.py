"""Attribution methods for any ``torch.nn.Module`` (CNNs included): one file per method, numpy arrays
out, in the model's dtype (float64 maps for a float64 model).

Each takes ``(model, x, target, output="logit"|"softmax")``; :data:`registry.METHODS` lists them by name, each
behind the one call ``attribute(name, model, x, target, output, **options) -> Attribution``.
"""

from nnsee.methods.attribution.deconvnet import deconvnet, project_activation
from nnsee.methods.attribution.feature_maps import feature_maps
from nnsee.methods.attribution.filters import first_layer_filters
from nnsee.methods.attribution.grad_cam import grad_cam
from nnsee.methods.attribution.gradient_x_input import gradient_x_input
from nnsee.methods.attribution.guided_backprop import guided_backprop
from nnsee.methods.attribution.integrated_gradients import IGResult, integrated_gradients
from nnsee.methods.attribution.method import Attribution, Method, Option
from nnsee.methods.attribution.occlusion import occlusion
from nnsee.methods.attribution.occlusion_paper import OcclusionMaps, occlusion_maps
from nnsee.methods.attribution.registry import METHODS, applicable, attribute, get_method
from nnsee.methods.attribution.relu_rules import relu_rule
from nnsee.methods.attribution.saliency import saliency
from nnsee.methods.attribution.smoothgrad import noise_tunnel, smoothgrad

__all__ = [
    "METHODS",
    "Attribution",
    "IGResult",
    "Method",
    "Option",
    "applicable",
    "OcclusionMaps",
    "attribute",
    "deconvnet",
    "feature_maps",
    "first_layer_filters",
    "get_method",
    "grad_cam",
    "gradient_x_input",
    "guided_backprop",
    "integrated_gradients",
    "noise_tunnel",
    "occlusion",
    "occlusion_maps",
    "project_activation",
    "relu_rule",
    "saliency",
    "smoothgrad",
]
