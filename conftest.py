"""Repository-level pytest settings: doctests of optional-dependency modules run only when the dependency is there."""
import importlib.util

collect_ignore = []
if importlib.util.find_spec("numba") is None:
    # Without numba the compiled modules cannot be imported (rnnlab runs the NumPy reference instead).
    collect_ignore += [f"src/rnnlab/fast/{name}.py" for name in
                       ("jit", "activations", "blas", "cell_steps", "time_loops", "recurrent", "scatter", "adam",
                        "sampler")]
