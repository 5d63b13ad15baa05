"""Sub-commands of the ``snnhw`` CLI, one module each (see :mod:`snnhw.cli`)."""
