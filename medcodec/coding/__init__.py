"""Bit-exact coding (numpy and the range coder only): the one range-coder wrapper and its
adaptive models (:mod:`.rangecoder`), the codes' context model (:mod:`.codes`), the
bounded-error layer (:mod:`.bounded_error`), the CDF 9/7 wavelet (:mod:`.wavelet`) and the
wavelet layer (:mod:`.wavelet_layer`), both layers behind one interface (:mod:`.layers`)."""
