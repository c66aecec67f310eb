"""Attribution in the kernel: which parts of the input made the model say what it said.

``attribute(model, inputs, target, method=...)`` dispatches to one module per method, all with one
signature (``attribute(problem, **options) -> Attributions``): ``gradient``,
``input_x_gradient``, ``integrated_gradients``, ``smoothgrad`` (around any of those), ``grad_cam``
and ``attention`` (rollout). For a view: ``predict_topk`` (what to explain), ``attention_weights``
(per layer and head) and ``attention_rollout``. Torch and numpy only, never widget code.

>>> import layerscope as ls
>>> attr = ls.attribute(model, x, target=3, method="integrated_gradients")   # doctest: +SKIP
"""

from .attention import attention_rollout, attention_weights
from .dispatch import METHODS, SMOOTHGRAD_BASES, attribute
from .integrated_gradients import QUADRATURES
from .predictions import TopK, predict_topk
from .smoothgrad import noise_draws, noise_stdevs

__all__ = [
    "METHODS",
    "QUADRATURES",
    "SMOOTHGRAD_BASES",
    "TopK",
    "attention_rollout",
    "attention_weights",
    "attribute",
    "noise_draws",
    "noise_stdevs",
    "predict_topk",
]
