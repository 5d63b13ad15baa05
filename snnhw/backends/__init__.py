"""Execution backends other than the torch core; the only package that imports ``lava``/lava-dl, lazily
(it imports without Lava installed).

* :mod:`snnhw.backends.lava`: run a NetworkSpec on Lava (CPU fixed-point simulator, or Loihi 2 through
  lava-loihi), built from :mod:`~snnhw.backends.lava_pack` (K samples side by side) and
  :mod:`~snnhw.backends.lava_stages` (declarative stages -> Lava processes, run, read back);
* :mod:`snnhw.backends.netx_lava`: run a netx file through lava-dl's own loader on Lava;
* :mod:`snnhw.backends.lava_runtime`: is Lava installed, run configuration;
  :mod:`snnhw.backends.quiet`: the one silencer for Lava's output.
"""
