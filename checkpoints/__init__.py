"""Shipped medcodec checkpoints (installed as the ``medcodec_checkpoints`` package).

Each folder ``<config>-<hash8>/`` is one model; ``DEFAULT`` names the default one.
"""
