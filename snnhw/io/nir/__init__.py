"""NIR (nir 1.0.8) export and import for :class:`~snnhw.spec.NetworkSpec`.

* :mod:`~snnhw.io.nir.euler`: the discretization (forward Euler, seconds, snnTorch convention) and the
  per-step coefficients of CubaLIF/LIF/IF nodes;
* :mod:`~snnhw.io.nir.schema`: :class:`NIRFormatError`, constants, the ``snnhw.*`` metadata keys;
* :mod:`~snnhw.io.nir.write`: :func:`spec_to_graph`, :func:`write_graph`, :func:`export_nir`;
* :mod:`~snnhw.io.nir.file`: :func:`read_graph` (checked ``nir.read``);
* :mod:`~snnhw.io.nir.graph` / :mod:`~snnhw.io.nir.model`: :func:`load_model` and :func:`graph_to_model`
  turn any supported graph (a DAG of populations, recurrent cycles through a neuron, nested subgraphs)
  into a :class:`NirModel`: its populations (``model.graph``) and, where it is a chain, float
  :class:`Stage` s;
* :mod:`~snnhw.io.nir.ops`: the linear nodes (Affine, Linear, Conv1d/2d, Sum/AvgPool2d, Scale,
  Flatten, Delay) as shaped operators; :mod:`~snnhw.io.nir.chain`: linear sub-graphs between
  populations, evaluated exactly or composed into one synapse;
* :mod:`~snnhw.io.nir.convention`: ``--from`` (dt, reset, discretization per source framework) and
  its detection;
* :mod:`~snnhw.io.nir.exact`: :func:`read_nir_spec` / :func:`model_to_spec_exact` rebuild the exact spec
  of an snnhw-written file from its metadata (after checking the floats still agree with it).

The import pipeline (calibration onto Loihi, fidelity report) is :mod:`snnhw.nir_import`.
"""
from snnhw.io.nir.euler import NeuronDyn, neuron_dyn, tau_for_decay
from snnhw.io.nir.exact import has_snnhw_metadata, model_to_spec_exact, read_nir_spec
from snnhw.io.nir.file import read_graph
from snnhw.io.nir.graph import graph_to_model, load_model
from snnhw.io.nir.model import NirModel, Stage
from snnhw.io.nir.schema import (DEFAULT_DT, FORMAT_VERSION, NEURONS, NO_LEAK_STEPS, SUPPORTED, SYNAPSES,
                                 NIRFormatError)
from snnhw.io.nir.write import export_nir, spec_to_graph, write_graph

__all__ = ["DEFAULT_DT", "FORMAT_VERSION", "NEURONS", "NO_LEAK_STEPS", "NIRFormatError", "NeuronDyn", "NirModel",
           "SUPPORTED", "SYNAPSES", "Stage", "export_nir", "graph_to_model", "has_snnhw_metadata", "load_model",
           "model_to_spec_exact", "neuron_dyn", "read_graph", "read_nir_spec", "spec_to_graph", "tau_for_decay",
           "write_graph"]
