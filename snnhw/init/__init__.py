"""SNN-aware and hardware-aware weight initialization.

* :func:`init_tensor` / :func:`init_module` — tensor level, like :mod:`torch.nn.init` (float units);
* :func:`init_spec` — spec level: fills a :class:`~snnhw.spec.NetworkSpec` (legal Loihi integers on a
  quantized spec) and returns an :class:`InitReport`;
* :mod:`snnhw.init.kernels` (CUBA kernel sums, stork's eps, reset shift, rate prediction),
  :mod:`snnhw.init.quant` (the 8-bit grid), :mod:`snnhw.init.formulas` (closed forms),
  :mod:`snnhw.init.propagate` (deep-chain propagation study behind ``snnhw propagate``).
"""
from snnhw.init.spec_init import InitReport, LayerReport, init_spec
from snnhw.init.tensor import METHODS, init_module, init_tensor, moments

__all__ = ["METHODS", "InitReport", "LayerReport", "init_module", "init_spec", "init_tensor", "moments"]
