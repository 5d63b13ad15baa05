"""Training: recipes (:mod:`.recipe`), model building and init (:mod:`.build`), the BPTT loop with
checkpoints, resume and DDP (:mod:`.loop`, :mod:`.checkpoint`), class decision, accuracy, rates and
synaptic operations (:mod:`.evaluate`), verification against Lava (:mod:`.verify`), and ``snnhw train``
as named stages — fit, export, verify, measure, report, publish (:mod:`.stages`) — run by
:mod:`.pipeline`."""
