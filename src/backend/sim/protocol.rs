//! What a simulated job (`migbench synth`, `migbench sim-server`) and the simulated GPU say to
//! each other: one JSON object per line over a Unix socket.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// The job's process has started (it now uses compute).
    Hello { job: u64, pid: u32 },
    /// How far along is my work?
    Progress,
    /// Set my memory to `gib`.
    Alloc { gib: f64 },
    /// How much work have I done, and how fast am I going? (A server, whose work has no end.)
    Work,
    /// I am (or am no longer) computing: an idle server leaves the SMs to its neighbours.
    Active { active: bool },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    Ok,
    /// Fraction of the job's work done, 0 to 1.
    Progress {
        fraction: f64,
    },
    /// The allocation does not fit.
    Oom {
        requested_gib: f64,
        capacity_gib: f64,
        free_gib: f64,
        in_use_gib: f64,
    },
    Error {
        message: String,
    },
    /// Work done so far (seconds at full speed on the reference GPU) and the current speed
    /// (work seconds per simulated second).
    Work {
        done_s: f64,
        rate: f64,
    },
}

/// A simulated job's connection to the simulated GPU.
pub struct Connection {
    writer: UnixStream,
    reader: BufReader<UnixStream>,
}

impl Connection {
    pub fn connect(socket: &Path) -> std::io::Result<Connection> {
        let stream = UnixStream::connect(socket)?;
        Ok(Connection {
            writer: stream.try_clone()?,
            reader: BufReader::new(stream),
        })
    }

    /// Sends one request and waits for its reply.
    pub fn ask(&mut self, request: &Request) -> std::io::Result<Reply> {
        let text = serde_json::to_string(request).expect("requests serialize");
        writeln!(self.writer, "{text}")?;
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        serde_json::from_str(&line)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    }
}
