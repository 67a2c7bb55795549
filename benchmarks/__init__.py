"""Benchmarks of nnsee against its peers on this machine's CPU: ``python -m benchmarks [--quick] [--json PATH]``.

* ``mlp_epoch``: seconds per epoch of the 784-300-10 tanh MLP (Adam, lr 1e-3) on Fashion-MNIST for nnsee's ``fit``,
  a plain PyTorch loop, scikit-learn's ``MLPClassifier`` and the floor (the 5 matrix products an epoch needs),
  interleaved round-robin, plus test accuracy after the last epoch.
* ``lbfgs_softmax``: full-batch L-BFGS softmax regression, nnsee's ``fit`` vs scikit-learn's ``LogisticRegression``
  at the same iteration count and regularization.
* ``report_time``: building a run's report vs three of its training epochs.
* ``occlusion`` and ``attribution``: the attribution methods vs Captum (default and best settings), plain autograd
  and the forward floor; occlusion maps against Captum in float64.

Every target is judged (PASS/FAIL; ``--quick`` leaves speed unjudged) and a failed one makes the exit status 1.
Absolute seconds move 20-35 % between processes here: compare only the ratios of one interleaved run.
"""
