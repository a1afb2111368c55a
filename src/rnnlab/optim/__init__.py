"""Optimizers, gradient clipping and learning-rate schedules, with PyTorch's interface and update rules.

>>> import numpy as np, rnnlab
>>> from rnnlab.nn.module import Parameter
>>> w = Parameter(np.array([1.0, -1.0]))
>>> opt = rnnlab.optim.SGD([w], lr=0.5, momentum=0.9)
>>> w.grad = np.array([0.2, 0.2])
>>> rnnlab.optim.clip_grad_norm_([w], max_norm=1.0)   # the norm before clipping
0.28284271247461906
>>> opt.step(); opt.zero_grad()
>>> w.data, w.grad
(array([ 0.9, -1.1]), None)
"""
from . import lr_scheduler
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .clip import clip_grad_norm_, clip_grad_value_
from .lr_scheduler import ExponentialLR, LambdaLR, LRScheduler, StepLR, WarmupCosineLR, WarmupStepLR
from .optimizer import Optimizer, flatten_state, unflatten_state
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "clip_grad_norm_", "clip_grad_value_",
           "lr_scheduler", "LRScheduler", "StepLR", "ExponentialLR", "LambdaLR", "WarmupCosineLR", "WarmupStepLR",
           "flatten_state", "unflatten_state"]
