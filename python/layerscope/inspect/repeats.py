"""Find runs of consecutive sibling modules with the same structure (``layers.0`` .. ``layers.11``)."""

from __future__ import annotations

from torch import nn

from .graph import Repeat


def find_repeats(
    named: list[tuple[str, nn.Module]],
    signatures: dict[str, int],
    leaves: set[str],
    min_count: int = 2,
) -> list[Repeat]:
    """Maximal runs of consecutive child blocks of one parent whose first calls had the same signature.

    A signature (from the recorder) covers the class, parameter shapes and the ordered sequence of
    ops and child-module signatures of a module's first call, so two blocks fold only if they did
    the same thing. Only blocks (modules with children) fold, and only when they also ran in module
    order: two equal Linear layers side by side are not a repeated block. Children that never ran
    break a run. ``signatures`` is ordered by when each module's first call finished.

    ``named`` is ``list(model.named_modules())``.

    >>> [r.label for r in find_repeats(rec.named, rec.signatures, rec.leaves)]   # doctest: +SKIP
    ['Block x12']
    """
    order = {path: i for i, path in enumerate(signatures)}
    repeats: list[Repeat] = []
    for parent_path, parent in named:
        if not parent._modules:  # a leaf: no children to fold
            continue
        prefix = parent_path + "." if parent_path else ""
        run: list[str] = []
        run_sig: int | None = None
        run_cls = ""
        for name, child in [*parent.named_children(), ("", None)]:  # sentinel closes the last run
            path = prefix + name
            sig = signatures.get(path) if child is not None and path not in leaves else None
            if sig is not None and sig == run_sig and order[path] > order[run[-1]]:
                run.append(path)
                continue
            if len(run) >= min_count:
                repeats.append(Repeat(parent_path, run, run_cls))
            run, run_sig, run_cls = (
                ([path], sig, type(child).__name__) if sig is not None else ([], None, "")
            )
    return repeats
