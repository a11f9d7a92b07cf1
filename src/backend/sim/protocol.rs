//! What a simulated job (`migbench synth`, `migbench sim-server`) and the simulated GPU say to
//! each other: one JSON object per line over a Unix socket.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// The job's process has started; the reply comes at its first turn.
    Hello { job: u64, pid: u32 },
    /// Set my memory to `gib`.
    Alloc { gib: f64 },
    /// I am (or am no longer) computing: an idle server leaves the SMs to its neighbours.
    Active { active: bool },
    /// Ends my turn: wake me `until` (or when poked). `holds` messages I sent in this turn are
    /// in flight: time stands still until their receivers have them.
    Wait {
        until: Until,
        #[serde(default)]
        holds: u32,
    },
    /// Ends my turn: wake me when I have done the last amount of work in `done_s` (rising,
    /// seconds at full speed on the reference GPU), or when poked; the turn says when I reached
    /// each amount before it. One turn for a run of engine steps instead of one per step.
    Run {
        done_s: Vec<f64>,
        #[serde(default)]
        holds: u32,
    },
    /// Makes job `job` runnable now (sent by a server's HTTP side, which is no actor itself,
    /// when a request reaches it).
    Poke { job: u64 },
}

/// When a simulated job wants its next turn.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "until", rename_all = "snake_case")]
pub enum Until {
    /// When this fraction of my work is done.
    Fraction { fraction: f64 },
    /// When I have done this much work (seconds at full speed on the reference GPU).
    Work { done_s: f64 },
    /// This many simulated seconds from now.
    After { seconds: f64 },
    /// Only when poked.
    Poked,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    Ok,
    /// My turn: the simulated time, the work done (seconds at full speed on the reference GPU)
    /// and the fraction of the work that is; after a run, the instants at which the amounts of
    /// work before its last were reached (as many as were).
    Turn {
        now: f64,
        done_s: f64,
        fraction: f64,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        reached: Vec<f64>,
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

    /// Ends the turn `until`, with `holds` messages in flight; returns the next turn's reply.
    pub fn wait(&mut self, until: Until, holds: u32) -> std::io::Result<Turn> {
        self.turn(&Request::Wait { until, holds })
    }

    /// Ends the turn until the last amount of work in `done_s` is done, or a poke, with
    /// `holds` messages in flight; returns the next turn, with the instants the amounts before
    /// the last were reached.
    pub fn run(&mut self, done_s: Vec<f64>, holds: u32) -> std::io::Result<Turn> {
        self.turn(&Request::Run { done_s, holds })
    }

    fn turn(&mut self, request: &Request) -> std::io::Result<Turn> {
        match self.ask(request)? {
            Reply::Turn {
                now,
                done_s,
                fraction,
                reached,
            } => Ok(Turn {
                now,
                done_s,
                fraction,
                reached,
            }),
            other => Err(std::io::Error::other(format!("unexpected reply {other:?}"))),
        }
    }

    /// Holds `gib` on the simulated GPU. `Ok(false)`: it does not fit, and PyTorch's
    /// out-of-memory message is printed on stderr, as a real job's would be, for the
    /// orchestrator to find in the job's log.
    pub fn allocate(&mut self, gib: f64) -> std::io::Result<bool> {
        match self.ask(&Request::Alloc { gib })? {
            Reply::Ok => Ok(true),
            Reply::Oom {
                requested_gib,
                capacity_gib,
                free_gib,
                in_use_gib,
            } => {
                print_torch_oom(requested_gib, capacity_gib, free_gib, in_use_gib);
                Ok(false)
            }
            other => Err(std::io::Error::other(format!("unexpected reply {other:?}"))),
        }
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

/// The message PyTorch prints when an allocation fails (reference: docs/nvidia-smi.md).
fn print_torch_oom(requested: f64, capacity: f64, free: f64, in_use: f64) {
    eprintln!("Traceback (most recent call last):");
    eprintln!(
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate {requested:.2} GiB. GPU 0 has a total capacity of \
         {capacity:.2} GiB of which {:.2} MiB is free. Including non-PyTorch memory, this process has {in_use:.2} GiB memory \
         in use. If reserved but unallocated memory is large try setting PYTORCH_CUDA_ALLOC_CONF=expandable_segments=True \
         to avoid fragmentation.",
        free * 1024.0
    );
}

/// A turn, as a simulated job sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Turn {
    pub now: f64,
    pub done_s: f64,
    pub fraction: f64,
    /// After a run: when each amount of work before its last was reached.
    pub reached: Vec<f64>,
}
