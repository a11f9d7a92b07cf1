//! Backends: the GPU migbench drives. `sim` simulates one; `nvml` drives a real NVIDIA GPU.

pub mod nvml;
