"""Training infrastructure: safetensors files, atomic writes, run directories, progress, signals."""
from .atomic import atomic_write_bytes, atomic_write_json, atomic_writer
from .rundir import FORMAT_VERSION, RunDirectory, load, load_run
from .progress import Progress
from .safetensors_io import load_safetensors, save_safetensors
from .signals import graceful_interrupt

__all__ = ["FORMAT_VERSION", "RunDirectory", "atomic_writer", "atomic_write_bytes", "atomic_write_json",
           "load", "load_run", "Progress", "load_safetensors", "save_safetensors", "graceful_interrupt"]
