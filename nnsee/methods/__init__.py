"""Ways of seeing: array-returning views of what a trained model learned (templates, unit cards, contributions).

Each view is a function over a ``torch.nn.Module`` that returns numpy arrays; drawing lives elsewhere. Views that
apply only to some models raise :class:`MethodError` saying which and what to use instead.
"""

from nnsee.methods.activation_max import activation_maximization
from nnsee.methods.base import MethodError, capture, dense_stages, evaluating, linear_layers, to_batch, zero_units
from nnsee.methods.class_units import ClassUnits, class_units, class_view
from nnsee.methods.contributions import LinearExplanation, MLPExplanation, explain, explain_linear, explain_mlp
from nnsee.methods.dataset_views.feature_evolution import EpochFeatures, features_over_training
from nnsee.methods.dataset_views.projections import TopProjections, top9_projections
from nnsee.methods.dataset_views.receptive_field import ReceptiveField, crop, receptive_field
from nnsee.methods.dataset_views.top_images import TopK, top_images_per_channel
from nnsee.methods.hidden_units import (
    UnitCard,
    ablation_effect,
    hidden_activations,
    hidden_biases,
    incoming_weights,
    outgoing_weights,
    per_class_accuracy,
    top_images_per_unit,
    unit_cards,
)
from nnsee.methods.invariance import Invariance, invariance_curves
from nnsee.methods.layer_by_layer import LayerByLayer, LayerOutput, layer_by_layer
from nnsee.methods.representation import Neighbours, RepresentationMap, nearest_training, representation_map
from nnsee.methods.sanity import cascading_randomization, randomization_check
from nnsee.methods.standardization_view import standardization_norms, standardization_views
from nnsee.methods.templates import class_templates, effective_linear, effective_templates
from nnsee.methods.unit_ablation import UnitAblation, unit_ablation
from nnsee.methods.weight_evolution import templates_over_training, weight_images

__all__ = [
    "EpochFeatures",
    "ReceptiveField",
    "RepresentationMap",
    "Neighbours",
    "nearest_training",
    "representation_map",
    "TopK",
    "TopProjections",
    "activation_maximization",
    "cascading_randomization",
    "crop",
    "features_over_training",
    "randomization_check",
    "receptive_field",
    "top9_projections",
    "top_images_per_channel",
    "ClassUnits",
    "LayerByLayer",
    "LayerOutput",
    "LinearExplanation",
    "MLPExplanation",
    "MethodError",
    "UnitAblation",
    "UnitCard",
    "ablation_effect",
    "capture",
    "class_templates",
    "class_units",
    "class_view",
    "dense_stages",
    "effective_linear",
    "effective_templates",
    "evaluating",
    "explain",
    "explain_linear",
    "explain_mlp",
    "hidden_activations",
    "hidden_biases",
    "incoming_weights",
    "Invariance",
    "invariance_curves",
    "layer_by_layer",
    "linear_layers",
    "outgoing_weights",
    "per_class_accuracy",
    "standardization_norms",
    "standardization_views",
    "templates_over_training",
    "to_batch",
    "top_images_per_unit",
    "unit_ablation",
    "unit_cards",
    "weight_images",
    "zero_units",
]
