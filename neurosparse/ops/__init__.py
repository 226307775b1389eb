"""autograd Functions that pick the Numba kernel or the torch reference per device."""
