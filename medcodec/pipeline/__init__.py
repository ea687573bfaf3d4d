"""The encode and decode pipelines (:mod:`.encode`, :mod:`.decode`) over the network
(:mod:`medcodec.model.inference`, imported when pixels are coded), the residual layers
(:mod:`.layers`), batch layout (:mod:`.layout`), precision policy (:mod:`.precision`),
statistics (:mod:`.stats`)."""
