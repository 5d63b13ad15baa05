"""SNN-aware and hardware-aware weight initialization.

* :func:`init_tensor` / :func:`init_module` — tensor level, like :mod:`torch.nn.init` (float units);
* :func:`init_spec` — spec level: fills a :class:`~snnhw.spec.NetworkSpec` (legal Loihi integers on a
  quantized spec) and returns an :class:`InitReport`;
* :mod:`snnhw.init.kernels` (CUBA kernel sums, stork's eps, reset shift, rate prediction),
  :mod:`snnhw.init.quant` (Gaussian statistics on the 8-bit grid, exponent/threshold choice),
  :mod:`snnhw.init.formulas` (closed forms), :mod:`snnhw.init.plan` (one matrix's law and draw),
  :mod:`snnhw.init.calibrate` (measurement and threshold calibration on the core's forward),
  :mod:`snnhw.init.report` (the report dataclasses), :mod:`snnhw.init.propagate` (deep-chain
  propagation study behind ``snnhw propagate``).
"""
from snnhw.init.report import InitReport, LayerReport
from snnhw.init.spec_init import init_spec
from snnhw.init.tensor import METHODS, init_module, init_tensor, moments

__all__ = ["METHODS", "InitReport", "LayerReport", "init_module", "init_spec", "init_tensor", "moments"]
