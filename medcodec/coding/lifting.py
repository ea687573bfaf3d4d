"""The CDF 9/7 lifting factors (Daubechies-Sweldens), shared by the numpy transform
(:mod:`medcodec.coding.wavelet`) and its compiled inverse (:mod:`.kernels.wavelet`); with
ZETA the low band has DC gain sqrt(2) and the high band Nyquist gain sqrt(2), i.e. the
transform is close to orthonormal."""

ALPHA, BETA, GAMMA, DELTA = -1.586134342059924, -0.052980118572961, 0.882911075530934, 0.443506852043971
ZETA = 1.149604398860241
