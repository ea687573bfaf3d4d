"""Bit-exact coding: the range coder and its models (:mod:`.rangecoder`), the codes'
context model (:mod:`.codes`), the bounded-error layer (:mod:`.bounded_error`), the CDF 9/7
wavelet (:mod:`.wavelet`) and the wavelet layer (:mod:`.wavelet_layer`), both layers behind
one interface (:mod:`.layers`). Each layer's per-slice walk is compiled with numba
(:mod:`.kernels`, imported only when something is coded); slices run on threads
(:mod:`.threads`)."""
