"""Speech: spectrogram-autoencoder codes as features for spoken digits by unseen speakers (FSDD)."""

DOMAIN = "speech"
