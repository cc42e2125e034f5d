"""MRI denoising: a noise-blind residual convolutional denoising autoencoder against NLM and BM3D."""
DOMAIN = "mri"
