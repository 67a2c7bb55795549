"""The lecture's path through nnsee, declared once: the guided tour of ``nnsee demo`` and the lesson notebooks in
``examples/`` follow :data:`OUTLINE`, in its order, with its titles and questions.

Each :class:`Step` names the demo run it reads (``run``, a folder name under the demo's output), the report section
that shows it (``anchor``), what the student should take away (``idea``, static text) and the questions asked at the
end of the step. The numbers that make a step concrete (accuracies, a unit's votes, an ablation's effect) are not
here: the tour and the notebooks compute them from the run they show.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    """One stop on the lecture's path.

    ``key``: a stable identifier (a notebook's file name ``NN-key.ipynb``, the tour's anchor). ``run``: the demo
    run or study folder it reads (``digits-softmax``, ``digits-mlp``, ``digits-cnn``, ``standardization-study``,
    ``overfit-study``). ``anchor``: the id of the report section that shows it (empty: the top of the study's
    page). ``slides``: the lecture slides it covers, as the README's table names them.
    """

    key: str
    title: str
    run: str
    anchor: str
    slides: tuple[str, ...]
    idea: str
    questions: tuple[str, ...]


OUTLINE: tuple[Step, ...] = (
    Step(
        key="templates",
        title="Class templates: one weight image per class",
        run="digits-softmax",
        anchor="templates",
        slides=("Visualizing the W's: each class's weights as an image",),
        idea="Softmax regression scores class k by the dot product W_k · x + b_k, so each row W_k has the shape of "
             "an image: red where ink raises the class's score, blue where ink lowers it. Each template looks like "
             "a blurred average of its class, minus what the other classes share.",
        questions=("Which template looks least like its digit, and why might that class still be recognized?",
                   "Where is the template for 0 negative (blue), and what digit would put ink there?"),
    ),
    Step(
        key="hidden-units",
        title="Hidden units: what one unit of the MLP detects and whom it votes for",
        run="digits-mlp",
        anchor="units",
        slides=("A hidden unit: `weights: array([...]) bias: ...`", "Which hidden units feed which class"),
        idea="A hidden unit h_j = tanh(W_1[j] · x + b_j) has an incoming weight image like a template, and "
             "outgoing weights W_out[:, j], one vote per class. Switching it off (h_j = 0) shows what the network "
             "loses without it.",
        questions=("Pick the first unit card: which classes does it promote, and which does it suppress?",
                   "Why does switching off one unit of 300 change the accuracy so little?"),
    ),
    Step(
        key="dot-product",
        title="Why this score: the dot product, pixel by pixel",
        run="digits-softmax",
        anchor="gallery",
        slides=("The dot product `score_k = W_k · x + b_k`",),
        idea="A score is a sum of per-pixel contributions x_i · W_k,i plus the bias: the map of contributions "
             "shows exactly which pixels pushed the score up or down, and they add up to the score.",
        questions=("For the most confident mistake, which pixels pushed the wrong class up?",
                   "Why is every contribution zero where the image has no ink (before standardization)?"),
    ),
    Step(
        key="standardization",
        title="Standardization: every input with the same magnitude",
        run="standardization-study",
        anchor="",
        slides=("All inputs should have the same magnitude",),
        idea="A dot product grows with the input's norm, so a faint digit and a bold one get different scores "
             "for the same shape. Giving every image mean 0 and the same norm removes that difference.",
        questions=("Which standardization mode gave the best test accuracy here, and by how much?",
                   "What does a constant (blank) image become after per-image standardization?"),
    ),
    Step(
        key="overfitting",
        title="Overfitting: noisy weights, diverging curves, and L2's cure",
        run="overfit-study",
        anchor="",
        slides=("Overfitting: noisy weights, diverging learning curves; L2 cures it",
                "How the weights evolve while training"),
        idea="With few images per class the model fits noise: the training loss keeps falling while the "
             "validation loss turns up, and the weight images turn speckled. An L2 penalty (λ/2)‖W‖² keeps the "
             "weights small and smooth.",
        questions=("At which epoch does the validation loss of the small run start rising?",
                   "How much does L2 lower the high-frequency share of the weights?"),
    ),
    Step(
        key="cnn",
        title="A CNN through Zeiler & Fergus's eyes",
        run="digits-cnn",
        anchor="cnn",
        slides=("Zeiler & Fergus: what convolutions see",),
        idea="A convolutional layer applies the same small filters everywhere. Zeiler & Fergus show each feature "
             "map by the training images that excite it most, projected back to pixels with a deconvnet, and "
             "test what matters by occluding parts of the image.",
        questions=("Do the first layer's filters look like edge detectors? Which orientations do you see?",
                   "In the occlusion map of a digit, which part hurts the score most when covered?"),
    ),
    Step(
        key="attribution",
        title="Attribution methods, and which maps to trust",
        run="digits-cnn",
        anchor="cnn",
        slides=("Zeiler & Fergus: what convolutions see",),
        idea="Saliency, gradient × input, integrated gradients, occlusion, guided backprop and Grad-CAM each "
             "answer 'which pixels mattered?' differently. The randomization check re-runs them on a network "
             "with scrambled weights: a map that barely changes does not explain the trained model.",
        questions=("Which method's map changed least when the weights were randomized?",
                   "Integrated gradients' contributions sum to the score difference from the baseline: check it."),
    ),
)


def step(key: str) -> Step:
    """The step called ``key``; a KeyError naming the known keys otherwise."""
    for s in OUTLINE:
        if s.key == key:
            return s
    raise KeyError(f"no lesson step {key!r}; the steps are {', '.join(s.key for s in OUTLINE)}")
