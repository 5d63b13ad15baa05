"""lava-dl netx HDF5 networks, read and written with h5py + numpy (this package never imports lava).

* :func:`read_netx` (:mod:`snnhw.io.netx.read`): the NetworkSpec lava-dl netx 0.6.0 builds from a file;
* :func:`write_netx` (:mod:`snnhw.io.netx.write`): a quantized spec as a netx file that reads back
  into a spec that simulates identically;
* :mod:`snnhw.io.netx.schema`: what both share (:class:`NetxFormatError`, netx's default neuron and
  ranges, netx's weight re-encoding as Lava's Dense runs it).

Running a file through lava-dl's own loader on Lava is :func:`snnhw.backends.netx_lava.run_netx_lava`.
"""
from snnhw.io.netx.read import read_netx
from snnhw.io.netx.schema import NetxFormatError
from snnhw.io.netx.write import write_netx

__all__ = ["NetxFormatError", "read_netx", "write_netx"]
