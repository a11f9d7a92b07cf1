//! The real-GPU backend. So far: parsers for nvidia-smi's output, used for dry-run checks and
//! diagnostics; discovery, sampling, MIG and MPS control come next (issue 4).

pub mod smi_parse;
