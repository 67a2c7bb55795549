"""Benchmarks of nnsee against its peers on this machine's CPU: ``python -m benchmarks [--quick] [--json PATH]``.

* ``mlp_epoch``: seconds per epoch of the 784-300-10 tanh MLP (Adam, lr 1e-3) on Fashion-MNIST for nnsee's ``fit``,
  a plain PyTorch loop, scikit-learn's ``MLPClassifier`` and the floor (the epoch's matrix products alone),
  interleaved round-robin, plus test accuracy after the last epoch.
* ``lbfgs_softmax``: full-batch L-BFGS softmax regression, nnsee's ``fit`` vs scikit-learn's ``LogisticRegression``
  at the same iteration count and regularization.

Absolute seconds move 20-35 % between processes here: compare only the ratios of one interleaved run.
"""
