"""Execution backends other than the torch core. :mod:`snnhw.backends.lava` runs a NetworkSpec on
Lava (CPU fixed-point simulator, or Loihi 2 through lava-loihi); it imports ``lava`` lazily, so this
package imports without Lava installed."""
