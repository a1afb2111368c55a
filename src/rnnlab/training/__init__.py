"""Training infrastructure: safetensors files, atomic checkpoints and run directories, progress, signals."""
from .checkpoint import FORMAT_VERSION, RunDirectory, atomic_write_bytes, atomic_write_json, atomic_writer
from .progress import Progress
from .safetensors_io import load_safetensors, save_safetensors
from .signals import graceful_interrupt

__all__ = ["FORMAT_VERSION", "RunDirectory", "atomic_writer", "atomic_write_bytes", "atomic_write_json",
           "Progress", "load_safetensors", "save_safetensors", "graceful_interrupt"]
