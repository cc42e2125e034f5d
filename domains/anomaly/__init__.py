"""Industrial anomaly detection on multivariate sensor series (SKAB benchmark by default).

A 1-D convolutional autoencoder per normal-operation segment, scored with SKAB's
protocol: windows of sensor rows, an upper control limit on window residuals, and SKAB's
window-to-point labelling rule.
"""

DOMAIN = "anomaly"
