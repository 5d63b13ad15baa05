"""File formats and file output: :mod:`snnhw.io.netx` (lava-dl netx HDF5), :mod:`snnhw.io.nir` (NIR),
:mod:`snnhw.io.inputs` (input spike arrays), :mod:`snnhw.io.atomic` (the one atomic writer)."""
