"""The lecture's path, kept in one place (:data:`~nnsee.lessons.outline.OUTLINE`): the demo's guided tour and the
lesson notebooks in ``examples/`` both walk it, step by step, in this order."""

from nnsee.lessons.outline import OUTLINE, Step, step

__all__ = ["OUTLINE", "Step", "step"]
