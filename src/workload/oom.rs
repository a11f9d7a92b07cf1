//! Recognising a GPU out-of-memory failure in a job's output.
//!
//! A job that ran out of GPU memory is a result ("did not fit"), not a crash: the orchestrator
//! counts it as `oom` when the job failed and its log matches one of these patterns.

/// Substrings that mark a GPU out-of-memory failure in a workload's output (case-sensitive).
///
/// A harness should count such a run as "did not fit", not as a crash.
pub const DEFAULT_OOM_PATTERNS: &[&str] = &[
    // PyTorch: `torch.OutOfMemoryError: CUDA out of memory.` (2.5+), `torch.cuda.OutOfMemoryError`
    // and `RuntimeError: CUDA out of memory.` (older releases) all contain this.
    "CUDA out of memory",
    // The runtime's text for cudaErrorMemoryAllocation, as PyTorch and others relay it.
    "CUDA error: out of memory",
    // The driver API's error name.
    "CUDA_ERROR_OUT_OF_MEMORY",
    // PyTorch relaying the driver API: `RuntimeError: CUDA driver error: out of memory`.
    "CUDA driver error: out of memory",
    // cuBLAS could not allocate its workspace: `CUBLAS_STATUS_ALLOC_FAILED when calling
    // cublasCreate(handle)`, PyTorch's usual message when another process holds the memory.
    "CUBLAS_STATUS_ALLOC_FAILED",
    // vLLM V1 refuses to start when the GPU holds less free memory than its share asks: `Free
    // memory on device (12.1/79.1 GiB) on startup is less than desired GPU memory utilization
    // (0.9, 71.2 GiB)` — the usual case when the GPU is shared (issue 23).
    "on startup is less than desired GPU memory utilization",
    // vLLM: the weights left no room for a single KV-cache block.
    "No available memory for the cache blocks",
    // vLLM logs a negative KV budget just before that error.
    "Available KV cache memory: -",
    // vLLM V0: `The model's max seq len (N) is larger than the maximum number of tokens that can
    // be stored in KV cache (M)`.
    "that can be stored in KV cache",
    // vLLM V1: `... KV cache is needed, which is larger than the available KV cache memory`.
    "larger than the available KV cache memory",
];

/// Whether a job's output `text` reports a GPU out-of-memory failure: it contains one of
/// `patterns` (a workload's own, or [`DEFAULT_OOM_PATTERNS`]).
///
/// A normal vLLM start-up line such as `Available KV cache memory: 33.4 GiB` does not match the
/// defaults; only a negative figure does.
#[must_use]
pub fn reports_oom(text: &str, patterns: &[&str]) -> bool {
    patterns.iter().any(|pattern| text.contains(pattern))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TORCH_OOM: &str = r"torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.15 GiB. GPU 0 has a total capacity of
44.25 GiB of which 57.06 MiB is free. Including non-PyTorch memory, this process has 44.16 GiB memory
in use. Of the allocated memory 43.81 GiB is allocated by PyTorch, and 148.04 MiB is reserved by PyTorch
but unallocated. If reserved but unallocated memory is large try setting PYTORCH_CUDA_ALLOC_CONF=expandable_segments=True
to avoid fragmentation.
Command exited with non-zero status 1
";

    // -----------------------------------------------------------------------------------------
    // Out of memory
    // -----------------------------------------------------------------------------------------

    #[test]
    fn oom_torch_sample() {
        let hits: Vec<&str> = TORCH_OOM
            .lines()
            .filter(|line| reports_oom(line, DEFAULT_OOM_PATTERNS))
            .collect();
        assert_eq!(
            hits,
            vec!["torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.15 GiB. GPU 0 has a total capacity of"]
        );
    }

    #[test]
    fn oom_other_forms() {
        let lines = [
            "RuntimeError: CUDA out of memory. Tried to allocate 20.00 MiB",
            "torch.cuda.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB",
            "RuntimeError: CUDA error: out of memory",
            "cuMemAlloc failed: CUDA_ERROR_OUT_OF_MEMORY",
            "ValueError: No available memory for the cache blocks. Try increasing `gpu_memory_utilization` when initializing the engine.",
            "INFO 05-01 12:00:00 worker.py:123] Available KV cache memory: -0.3 GiB",
            "ValueError: The model's max seq len (30000) is larger than the maximum number of tokens that can be stored in KV cache (19632).",
            "ValueError: To serve at least one request with the models's max seq len (32768), (4.50 GiB KV cache is needed, which is larger than the available KV cache memory (4.47 GiB).",
            "RuntimeError: CUDA driver error: out of memory",
            "RuntimeError: CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`",
            "ValueError: Free memory on device (12.1/79.1 GiB) on startup is less than desired GPU memory utilization (0.9, 71.2 GiB). Decrease GPU memory utilization or reduce GPU memory used by other processes.",
        ];
        for line in lines {
            assert!(
                reports_oom(line, DEFAULT_OOM_PATTERNS),
                "should be OOM: {line}"
            );
        }
    }

    #[test]
    fn oom_ordinary_lines_are_not_oom() {
        let lines = [
            "",
            "Command exited with non-zero status 1",
            "INFO 05-01 12:00:00 worker.py:123] Available KV cache memory: 33.4 GiB",
            "INFO GPU KV cache size: 2,918,000 tokens",
            "44.25 GiB of which 57.06 MiB is free. Including non-PyTorch memory, this process has 44.16 GiB memory",
            "java.lang.OutOfMemoryError: Java heap space",
            "RuntimeError: CUDA error: device-side assert triggered",
        ];
        for line in lines {
            assert!(
                !reports_oom(line, DEFAULT_OOM_PATTERNS),
                "should not be OOM: {line}"
            );
        }
    }
}
