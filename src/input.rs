//! Reading the files a user points migbench at: only regular files, and only up to a size cap
//! per kind of file (documented in docs/scenario.md#limits).
//!
//! Without the caps `validate /dev/zero` took 4.2 GB in 5 s and `advise --workload /dev/zero`
//! 20 GB in a minute, and a FIFO blocked a command forever. A device, FIFO, socket or directory
//! is refused before it is opened (opening a FIFO for reading waits for a writer); a regular
//! file is read through a limit, so one that grows while read (or a /proc file that says it is
//! empty) still stops at the cap.

use std::fs::OpenOptions;
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// A kind of input file and the most bytes one may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cap {
    /// What the file is, as a message names it: `a scenario file`.
    pub what: &'static str,
    pub bytes: u64,
}

const MIB: u64 = 1 << 20;

/// Scenario and workload files (the largest shipped one is a few KiB; a calibrated workload
/// with its VRAM trace some tens of KiB).
pub const SCENARIO: Cap = Cap {
    what: "a scenario or workload file",
    bytes: MIB,
};
/// mig-parted files: NVIDIA's own example file is 20 KiB. Read whole into a YAML tree with
/// positions, which takes about 40 times the file's size in memory.
pub const MIG_PARTED: Cap = Cap {
    what: "a mig-parted file",
    bytes: MIB,
};
/// JSONL prompts files, read whole before the load starts.
pub const PROMPTS: Cap = Cap {
    what: "a prompts file",
    bytes: 64 * MIB,
};
/// `manifest.json`, `serving.json` and GPU lock files: a few KiB each.
pub const SMALL_JSON: Cap = Cap {
    what: "a migbench JSON file",
    bytes: MIB,
};
/// CDI specs: NVIDIA's names each device with its mounts and hooks, some KiB a device.
pub const CDI_SPEC: Cap = Cap {
    what: "a CDI spec",
    bytes: 16 * MIB,
};
/// A run's `journal.jsonl`: a few records per variant.
pub const JOURNAL: Cap = Cap {
    what: "a journal",
    bytes: 64 * MIB,
};
/// A run's `events.jsonl` (two lines a job) and a report's `report.json` (a row per variant).
pub const RECORDS: Cap = Cap {
    what: "a run's events or a report",
    bytes: 256 * MIB,
};

/// `1 MiB`, `64 MiB`.
pub fn size(bytes: u64) -> String {
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// The bytes of `path`, a regular file of at most `cap.bytes`. The error says what the path is
/// when it is not a regular file, and the cap when it is too large (kind `InvalidData`);
/// nothing of the file's contents.
pub fn read(path: &Path, cap: Cap) -> io::Result<Vec<u8>> {
    check_kind(&std::fs::metadata(path)?.file_type())?;
    // Non-blocking, in case the path became a FIFO since it was looked at.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    check_kind(&meta.file_type())?;
    let too_large = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "larger than the {} allowed for {}",
                size(cap.bytes),
                cap.what
            ),
        )
    };
    if meta.len() > cap.bytes {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(cap.bytes + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap.bytes {
        return Err(too_large());
    }
    Ok(bytes)
}

/// [`read`], as UTF-8 text (kind `InvalidData` if it is not; the error gives the byte offset).
pub fn read_to_string(path: &Path, cap: Cap) -> io::Result<String> {
    String::from_utf8(read(path, cap)?).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "not UTF-8 text (byte offset {})",
                e.utf8_error().valid_up_to()
            ),
        )
    })
}

fn check_kind(kind: &std::fs::FileType) -> io::Result<()> {
    let what = if kind.is_file() {
        return Ok(());
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a file"
    };
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{what}, not a regular file"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TINY: Cap = Cap {
        what: "a test file",
        bytes: 8,
    };

    #[test]
    fn devices_fifos_and_directories_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        for (path, what) in [
            (Path::new("/dev/zero"), "a character device"),
            (fifo.as_path(), "a FIFO"),
            (dir.path(), "a directory"),
        ] {
            let e = read(path, TINY).unwrap_err().to_string();
            assert_eq!(
                e,
                format!("{what}, not a regular file"),
                "{}",
                path.display()
            );
        }
    }

    #[test]
    fn a_file_over_the_cap_is_refused_at_the_cap_and_one_at_it_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let at = dir.path().join("at");
        std::fs::write(&at, b"12345678").unwrap();
        assert_eq!(read(&at, TINY).unwrap(), b"12345678");
        std::fs::write(&at, b"123456789").unwrap();
        let e = read(&at, TINY).unwrap_err().to_string();
        assert_eq!(e, "larger than the 8 bytes allowed for a test file");
        // /proc files say they are empty: the limit holds while reading too.
        let e = read(Path::new("/proc/self/maps"), TINY).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
    }
}
