"""Lava processes snnhw adds: recorders that write what they saw to a file at the last step.

Imported only by :mod:`snnhw.backends.lava_stages`, lazily (this module imports ``lava`` at import time).
It is a package of its own because Lava's compiler, looking for the ProcessModels of a Process, executes
every module in the directory of the Process's module (and of its package's modules): alone in its
directory, nothing else of snnhw is re-executed on every compile.

Why: Lava's ``Var.get()`` (which ``RingBuffer`` sinks and ``Monitor`` use to hand data back) sends an
array **one element per channel message**, through the runtime service; at ~20-40 us per element,
reading the spikes and u/v traces of a few thousand neurons over 64 steps takes longer than running
them. These recorders do what ``lava.proc.io.sink.RingBuffer`` and ``lava.proc.monitor.Monitor`` do,
with the same timing, and ``np.save`` the arrays from the worker process on the last step:

* spikes: received on ``a_in`` in the spiking phase of time step t and stored in column t-1 (exactly
  ``RingBuffer`` sink's ``data[..., (t-1) % buffer] = a_in.recv()``);
* ``u``/``v``: read through a ``RefPort`` in the post-management phase of step t (exactly ``Monitor``'s
  ``run_post_mgmt``), i.e. after the LIF's spike and reset: v is the post-reset value.

``tests/test_lava_backend.py`` checks that these recorders and Lava's own sink/Monitor return identical
arrays.
"""
from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyRefPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort, RefPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol


class SpikeRecorder(AbstractProcess):
    """Stores the int32 vector received on ``a_in`` at every step; writes ``path`` (``.npy``, shape
    ``shape + (steps,)``, column t-1 = time step t) at step ``steps``."""

    def __init__(self, *, shape, steps: int, path: str) -> None:
        super().__init__(shape=tuple(shape), steps=int(steps), path=str(path))
        self.a_in = InPort(shape=tuple(shape))


class StateRecorder(AbstractProcess):
    """Like :class:`SpikeRecorder`, plus the Vars connected to ``u_ref`` and ``v_ref`` read after each
    step (as ``Monitor`` reads them). Writes ``path`` (``.npz`` with ``s``, ``u``, ``v``)."""

    def __init__(self, *, shape, steps: int, path: str) -> None:
        super().__init__(shape=tuple(shape), steps=int(steps), path=str(path))
        self.a_in = InPort(shape=tuple(shape))
        self.u_ref = RefPort(shape=tuple(shape))
        self.v_ref = RefPort(shape=tuple(shape))


@implements(proc=SpikeRecorder, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PySpikeRecorderModel(PyLoihiProcessModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self._steps = int(proc_params["steps"])
        self._s = np.zeros(tuple(proc_params["shape"]) + (self._steps,), dtype=np.int8)

    def run_spk(self) -> None:
        t = self.time_step
        s = self.a_in.recv()
        if t <= self._steps:
            self._s[..., t - 1] = s
        if t == self._steps:
            np.save(self.proc_params["path"], self._s)


@implements(proc=StateRecorder, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyStateRecorderModel(PyLoihiProcessModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32)
    u_ref: PyRefPort = LavaPyType(PyRefPort.VEC_DENSE, int)
    v_ref: PyRefPort = LavaPyType(PyRefPort.VEC_DENSE, int)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self._steps = int(proc_params["steps"])
        shape = tuple(proc_params["shape"]) + (self._steps,)
        self._s = np.zeros(shape, dtype=np.int8)
        self._u = np.zeros(shape, dtype=np.int64)
        self._v = np.zeros(shape, dtype=np.int64)

    def run_spk(self) -> None:
        t = self.time_step
        s = self.a_in.recv()
        if t <= self._steps:
            self._s[..., t - 1] = s

    def post_guard(self) -> bool:
        return True

    def run_post_mgmt(self) -> None:
        t = self.time_step
        if t <= self._steps:
            self._u[..., t - 1] = np.asarray(self.u_ref.read())
            self._v[..., t - 1] = np.asarray(self.v_ref.read())
        if t == self._steps:
            np.savez(self.proc_params["path"], s=self._s, u=self._u, v=self._v)
