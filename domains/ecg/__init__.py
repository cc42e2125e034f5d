"""ECG compression on MIT-BIH: a learned codec with a real file format, against wavelets."""

DOMAIN = "ecg"
