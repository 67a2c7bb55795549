"""Write the lesson notebooks ``examples/NN-<key>.ipynb``, one per step of :data:`nnsee.lessons.outline.OUTLINE`.

The outline is the one place for each step's title, slides, idea and questions; this script adds only the code cells
(nnsee's Python API on the built-in digits, small fast training) and writes every notebook without outputs, with
fixed cell ids, so the files are reproducible. The tests compare the committed notebooks with what this writes:

    python scripts/make_lessons.py            # (re)write examples/*.ipynb
    python scripts/make_lessons.py --check    # exit 1, naming the stale files, when they differ
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

from nnsee.lessons.outline import OUTLINE, Step

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

SETUP = """\
import numpy as np
import torch
from IPython.display import display

import nnsee
import nnsee.notebook  # runs, explanations, unit cards and studies now display themselves
from nnsee.data import load_data
from nnsee.lessons import narrate
from nnsee.models import build_model
from nnsee.train import TrainConfig, fit, load_run

digits = load_data("digits", seed=0)  # built in: no download
print(f"digits: {len(digits.train)} training, {len(digits.val)} validation and {len(digits.test)} test images "
      f"of shape {digits.shape}")"""


def train(name: str, model: str, config: str, options: str = "") -> str:
    """A cell that trains ``model`` on the digits into ``runs/<name>`` (seeded) and loads the run folder."""
    extra = f", {options}" if options else ""
    return f"""\
torch.manual_seed(0)
fit(build_model("{model}", digits.shape, digits.train.n_classes{extra}), digits, TrainConfig({config}),
    "runs/{name}", save="end", progress=False, replace=True)
run = load_run("runs/{name}")
run  # the run displays itself: data, model, accuracies, learning curves"""


SOFTMAX = train("digits-softmax", "softmax", 'optimizer="adam", lr=0.005, epochs=5')
CNN = train("digits-cnn", "cnn", 'optimizer="adam", lr=0.003, epochs=1, batch_size=32', "channels=(6, 12)")

#: The code cells of each step, by the step's key (markdown comes from the outline).
CODE: dict[str, list[str]] = {
    "templates": [
        SOFTMAX,
        """\
from nnsee.methods import class_templates

templates = class_templates(run.model)  # W[k] reshaped to the image: (10, 1, 28, 28)
nnsee.show(templates, class_names=run.class_names)""",
        "print(narrate.templates(run, digits).text)",
    ],
    "hidden-units": [
        train("digits-mlp", "mlp", 'optimizer="adam", lr=0.003, epochs=3', 'hidden=[300], activation="tanh"'),
        """\
from nnsee.methods import unit_cards

# sorted by the size of the outgoing weights ||W_out[:, j]||; top images from the training set, ablation on validation
cards = unit_cards(run.model, digits.train.images, digits.val.images, digits.val.labels, run.class_names,
                   transform=run.standardize)
nnsee.show(cards[:4], class_names=run.class_names, images=digits.train.images)""",
        "print(narrate.hidden_units(run, digits).text)",
    ],
    "dot-product": [
        SOFTMAX,
        """\
from nnsee.methods.one_image import explain_image

story = narrate.dot_product(run, digits)
i = story.numbers["index"]
e = explain_image(run.model, run.standardize(digits.test.images[i]), input_shape=run.input_shape)
nnsee.show(e, class_names=run.class_names, image=digits.test.images[i])""",
        """\
k = e.predicted
print(story.text)
print(f"check: sum of x_i W_k,i = {e.dot.contribution_sum[k]:.4f}, plus b_k = {e.dot.bias[k]:.4f} "
      f"gives {e.dot.contribution_sum[k] + e.dot.bias[k]:.4f}; the model's score is {e.logits[k]:.4f}")""",
    ],
    "standardization": [
        """\
from nnsee.studies import standardization_study

study = standardization_study(digits, epochs=5)  # the same softmax regression under each mode
study""",
        "print(narrate.standardization(study).text)",
    ],
    "overfitting": [
        """\
from nnsee.studies import overfit_study

# an MLP of 50 units on 20 or 100 images per class, without and with L2 (L-BFGS, a few iterations per epoch)
study = overfit_study(digits, per_class=(20, 100), l2_values=(0.0, 0.3), hidden=50, epochs=10)
study""",
        "print(narrate.overfitting(study).text)",
    ],
    "cnn": [
        CNN,
        """\
from nnsee.methods.attribution.filters import first_layer_filters

nnsee.show(first_layer_filters(run.model), title="first-layer filters (5x5)")""",
        """\
from nnsee.methods.one_image import explain_image

story = narrate.cnn(run, digits)
i = story.numbers["index"]
label = int(digits.test.labels[i])
e = explain_image(run.model, run.standardize(digits.test.images[i]), "occlusion", target=label,
                  input_shape=run.input_shape, window=4, stride=2)  # a 4x4 square of zeros, every 2 pixels
display(nnsee.show(e, class_names=run.class_names, image=digits.test.images[i]))
print(story.text)""",
    ],
    "attribution": [
        CNN,
        """\
from nnsee.methods.one_image import explain_image

i = narrate.first_correct(run, digits)
label = int(digits.test.labels[i])
x = run.standardize(digits.test.images[[i]])
methods = ["saliency", "gradient-x-input", "integrated-gradients", "guided-backprop", "grad-cam"]
for method in methods:
    display(nnsee.show(explain_image(run.model, x[0], method, target=label, input_shape=run.input_shape),
                       class_names=run.class_names, image=digits.test.images[i]))""",
        """\
from nnsee.methods import randomization_check

scores = randomization_check(run.model, x, [label], methods=methods)  # every weight re-drawn at random
for method, s in scores.items():
    print(f"{method:22s} rank correlation trained vs random: {s['spearman']:+.2f}")
print(narrate.attribution(scores, i, run.class_names[label]).text)""",
        """\
from nnsee.methods.attribution.registry import METHODS

ig = METHODS["integrated-gradients"].attribute(run.model, x, np.array([label]), "logit")
print(f"sum of the integrated-gradients map: {ig.maps.sum():.4f}; "
      f"it misses f(x) - f(baseline) by {float(np.ravel(ig.extras['convergence_delta'])[0]):+.2e}")""",
    ],
}


def intro(n: int, step: Step) -> str:
    slides = "; ".join(step.slides)
    return (f"# {n}. {step.title}\n\n*Lecture slides: {slides}.*\n\n{step.idea}\n\n"
            "Everything below runs on the built-in digits (28×28, 10 classes) on a CPU in seconds.")


def questions(step: Step) -> str:
    return "## Questions\n\n" + "\n".join(f"{i}. {q}" for i, q in enumerate(step.questions, start=1))


def notebook(n: int, step: Step) -> nbformat.NotebookNode:
    """The lesson of ``step`` (number ``n``): its intro, the setup, its code cells, its questions; no outputs."""
    cells = [nbformat.v4.new_markdown_cell(intro(n, step)), nbformat.v4.new_code_cell(SETUP)]
    cells += [nbformat.v4.new_code_cell(code) for code in CODE[step.key]]
    cells.append(nbformat.v4.new_markdown_cell(questions(step)))
    for i, cell in enumerate(cells):
        cell["id"] = f"{step.key}-{i}"
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                   "language_info": {"name": "python"}}
    return nb


def lessons() -> dict[str, str]:
    """File name → notebook text, for every step of the outline, in its order."""
    missing = [s.key for s in OUTLINE if s.key not in CODE]
    if missing:
        raise SystemExit(f"scripts/make_lessons.py has no code cells for the step(s) {', '.join(missing)}: add them "
                         "to CODE")
    return {f"{n:02d}-{s.key}.ipynb": nbformat.writes(notebook(n, s)) + "\n" for n, s in enumerate(OUTLINE, start=1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, write nothing; exit 1 when stale")
    parser.add_argument("--out", type=Path, default=EXAMPLES, help="folder of the notebooks (default: examples/)")
    args = parser.parse_args(argv)
    wanted = lessons()
    stale = sorted(name for name, text in wanted.items()
                   if not (args.out / name).is_file() or (args.out / name).read_text(encoding="utf-8") != text)
    extra = sorted(p.name for p in args.out.glob("[0-9][0-9]-*.ipynb") if p.name not in wanted) \
        if args.out.is_dir() else []
    if args.check:
        if stale or extra:
            print(f"stale lesson notebooks in {args.out}: {', '.join(stale + extra)}; run python "
                  "scripts/make_lessons.py", file=sys.stderr)
            return 1
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name in stale:
        (args.out / name).write_text(wanted[name], encoding="utf-8")
    for name in extra:
        (args.out / name).unlink()
    print(f"{len(wanted)} lesson notebooks in {args.out} ({len(stale)} written, {len(extra)} removed)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
