"""Import any supported NIR graph onto Loihi 2 (or the float twin) and measure the fidelity.

Pipeline (``snnhw import-nir``, :func:`~snnhw.nir_import.pipeline.import_nir`):

1. :func:`snnhw.io.nir.load_model` reduces the graph to a chain of float stages (NIR units, forward
   Euler at ``dt``).
2. :func:`~snnhw.nir_import.reference.float_reference` simulates it in float64 with NIR semantics
   (the core's CUBA loop with the graph's own coefficients): same-step synapses, recurrent edges from
   the previous step, ``v > v_threshold`` then ``v <- v_reset`` (``reset="zero"``, what NIR says) or
   ``v <- v - v_threshold`` (``reset="subtract"``, what snnTorch-trained graphs often mean). This is
   the reference.
3. :func:`~snnhw.nir_import.quantize.quantize_model` maps each stage to a Loihi layer with a
   hardware-aware calibration: per layer it picks the threshold scale ``s`` (= ``vth_mant``) and
   ``weight_exp`` that use the full 8-bit weight mantissa while keeping u and v (measured on the
   calibration inputs) below half the 24-bit range and the bias inside its 13-bit mantissa
   (:func:`~snnhw.nir_import.quantize.choose_scale`). Per-neuron thresholds are absorbed exactly into
   weight rows (rounded onto the legal grid by :func:`snnhw.loihi.round_to_grid`); per-neuron time
   constants are shared (median) and reported. An snnhw-written file is instead rebuilt bit-exactly
   from its metadata.
4. The spec runs on Lava's CPU simulator (:func:`~snnhw.nir_import.chip.run_chip`). Loihi adds one step
   of latency per synapse layer, so inputs are padded with ``L`` zero steps and chip output step
   ``t + L`` is compared with reference step ``t`` (layer ``k``: ``t + k + 1``).
5. A run directory gets ``model.nir``, ``model.net`` (netx, dense networks), ``spec.json``,
   ``verify/*.npy``, plots (:mod:`~snnhw.nir_import.plots`) and ``report.json``
   (``agreement.output_cosine``: cosine similarity of the per-sample, per-neuron output spike counts
   chip vs reference; ``agreement.predictions``: fraction of samples whose arg-max output neuron
   agrees; ``layers``: per-layer activity; :mod:`~snnhw.nir_import.measure`).

Graphs without a chain form (fan-in, skip connections, Delay nodes) are mapped by
:mod:`~snnhw.nir_import.dag` (one synapse per source, Loihi 2 synaptic delays); non-spiking readouts
(LI, CubaLI) by :mod:`~snnhw.nir_import.readout` (a LIF that cannot fire, its v read back).

What the chip cannot do exactly is reported with its measured effect: subtractive reset (compared
with and without snnhw's rate-matching threshold compensation,
:func:`~snnhw.nir_import.compensate.compensate_subtract`), per-neuron time constants, a bias on the
synaptic current behind a current decay, v_reset != 0.
"""
from snnhw.nir_import.chip import run_chip, run_twin
from snnhw.nir_import.compensate import compensate_subtract
from snnhw.nir_import.measure import agreement, aligned, cosine, latency, layer_report, poisson_inputs, ties
from snnhw.nir_import.pipeline import import_nir
from snnhw.nir_import.quantize import LayerMap, choose_scale, float_spec, quantize_model
from snnhw.nir_import.reference import RefResult, float_reference, synaptic_input

__all__ = ["LayerMap", "RefResult", "agreement", "aligned", "choose_scale", "compensate_subtract", "cosine",
           "float_reference", "float_spec", "import_nir", "latency", "layer_report", "poisson_inputs",
           "quantize_model", "run_chip", "run_twin", "synaptic_input", "ties"]
