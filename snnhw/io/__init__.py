"""File formats snnhw reads and writes (:mod:`snnhw.io.netx`: lava-dl netx HDF5)."""
