"""Repository-level pytest settings: doctests of optional-dependency modules run only when the dependency is there."""
import importlib.util

collect_ignore = []
if importlib.util.find_spec("numba") is None:
    # The fast path is an optional extra (rnnlab[fast]); without numba the module cannot be imported.
    collect_ignore.append("src/rnnlab/nn/recurrent_fast.py")
