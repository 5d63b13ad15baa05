"""Training: recipes (:mod:`.recipe`), model building and init (:mod:`.build`), the BPTT loop with
checkpoints, resume and DDP (:mod:`.loop`), verification against Lava (:mod:`.verify`) and the whole
``snnhw train`` pipeline (:mod:`.pipeline`)."""
