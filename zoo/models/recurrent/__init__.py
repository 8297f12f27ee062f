"""The lecture's Elman network and the serving signature it is exported with.

The rest of the recurrent toolbox lives with training: the long-time-lag problems (adding, copy,
delayed echo) in `seqzoo.training.data.long_lag_builtin`, truncated backpropagation through
time in `seqzoo.training.truncated_bptt` (and `seqzoo train elman --set model.truncation=U`),
the cell comparison on long lags in `seqzoo.training.long_lag_training` and the gradient-flow
measurements and plot of `seqzoo gradients` in `seqzoo.training.gradient_flow`.
"""

from seqzoo.zoo.models.recurrent.elman_network import ElmanNetwork  # noqa: F401
