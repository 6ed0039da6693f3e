// Anchor for the precompiled <torch/torch.h> that every torch-using target
// reuses (see cmake/TorchPch.cmake).
