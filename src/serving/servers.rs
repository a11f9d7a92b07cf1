//! The servers of one variant: each started on a free port, waited for, then driven — every
//! ready server at once, in *rounds* — and stopped. A round starts when no started server is
//! still getting ready, so that servers started together are measured together (a measurement of
//! co-located servers means something only while they all run; MLPerf's HeteroMIG rule, peers.md).
//! Servers that come up later (queued for a MIG instance, or started later on purpose) get a
//! round of their own.
//!
//! A server that exits, runs out of memory or never gets ready is recorded as such by the job
//! runner; its requests, if it had any, are recorded as errors. Nothing here is fatal to the run.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use super::record::{Recorder, Source};
use crate::backend::JobLaunch;
use crate::clock::{Actor, Clock, Poker};
use crate::error::{Error, Result};
use crate::loadgen::{self, LoadSpec, PromptFile, Target, TargetResult};
use crate::workload::{ServerSpec, Workload, WorkloadKind};

/// What happened to one server's load.
#[derive(Debug, Clone)]
pub struct Served {
    /// The job's position in the variant.
    pub job: usize,
    pub round: u32,
    pub url: String,
    pub model: String,
    pub result: TargetResult,
}

/// What the variant's servers served.
#[derive(Debug, Clone, Default)]
pub struct ServingRun {
    pub load: Option<LoadSpec>,
    /// Each server's load per round, and per sweep point within it (the requests are not kept
    /// there: they went to `recorder`).
    pub served: Vec<Served>,
    pub recorder: Option<Arc<Recorder>>,
}

/// Why the runner should stop a server now.
#[derive(Debug, Clone, PartialEq)]
pub enum Stop {
    /// Its load is done: stopped cleanly, outcome ok.
    Served,
    /// It never answered its readiness paths.
    NotReady(String),
}

#[derive(Debug)]
enum State {
    Starting,
    Ready(String),
    Loading,
    Finished,
}

struct Server {
    job: usize,
    /// The job's ID on the backend (whose simulated server holds the clock for its streams).
    backend_job: u64,
    url: String,
    spec: ServerSpec,
    /// The workload's name and the instance it runs on (`GPU` or the MIG profile), for its
    /// requests' rows.
    workload: String,
    instance: String,
    state: State,
    cancel: Arc<AtomicBool>,
    /// The actors waiting on it (its readiness check, its load): poked when it ends.
    watchers: Vec<Poker>,
}

enum Event {
    Ready {
        key: usize,
        model: Result<Option<String>, String>,
    },
    RoundDone {
        number: u32,
        results: Vec<(usize, Target, Vec<TargetResult>)>,
    },
}

/// Puts `port` wherever the launch's argv or environment, or the workload's own environment,
/// says `{port}`. The workload's environment is set before the launch's, so it is added to the
/// launch's, filled in, to win.
fn fill_port(launch: &mut JobLaunch, workload_env: &BTreeMap<String, String>, port: u16) {
    let text = port.to_string();
    let fill = |s: &str| s.replace(Workload::PORT, &text);
    for arg in &mut launch.argv {
        *arg = fill(arg);
    }
    for (_, value) in &mut launch.env {
        *value = fill(value);
    }
    launch
        .env
        .extend(workload_env.iter().map(|(k, v)| (k.clone(), fill(v))));
}

/// The servers of one variant repetition.
pub struct Servers {
    clock: Clock,
    /// The orchestrator, poked when an event for it comes.
    orchestrator: Poker,
    t0: f64,
    load: Option<LoadSpec>,
    prompts: Option<PromptFile>,
    servers: BTreeMap<usize, Server>,
    ports: HashSet<u16>,
    events: (mpsc::Sender<Event>, mpsc::Receiver<Event>),
    threads: Vec<JoinHandle<()>>,
    next_round: u32,
    run: ServingRun,
}

impl Servers {
    /// `load` is the variant's load; `base` the directory its prompts file is relative to; `t0`
    /// the run's start on the run's clock, which `orchestrator` acts on.
    pub fn new(
        orchestrator: &Actor,
        t0: f64,
        load: Option<&LoadSpec>,
        base: &Path,
        recorder: Recorder,
    ) -> Result<Servers> {
        let prompts = match load.and_then(|l| l.prompts_file.as_ref()) {
            Some(file) => Some(PromptFile::load(&base.join(file)).map_err(Error::Input)?),
            None => None,
        };
        Ok(Servers {
            clock: orchestrator.clock().clone(),
            orchestrator: orchestrator.poker(),
            t0,
            load: load.cloned(),
            prompts,
            servers: BTreeMap::new(),
            ports: HashSet::new(),
            events: mpsc::channel(),
            threads: Vec::new(),
            next_round: 1,
            run: ServingRun {
                load: load.cloned(),
                served: Vec::new(),
                recorder: Some(Arc::new(recorder)),
            },
        })
    }

    /// For a server workload: picks a free port (returned) and puts it wherever the command or
    /// the environment says `{port}`. `key` names the job until it ends; `backend_job` is its
    /// [`crate::backend::JobRequest::id`]; `profile` the MIG profile it runs on, if any.
    pub fn prepare(
        &mut self,
        (key, job, backend_job): (usize, usize, u64),
        workload: &Workload,
        profile: Option<&str>,
        launch: &mut JobLaunch,
    ) -> Result<Option<u16>> {
        if workload.kind != WorkloadKind::Server {
            return Ok(None);
        }
        let port = self.free_port()?;
        fill_port(launch, &workload.env, port);
        self.servers.insert(
            key,
            Server {
                job,
                backend_job,
                url: format!("http://127.0.0.1:{port}"),
                spec: workload.server.clone().unwrap_or_default(),
                workload: workload.name.clone(),
                instance: profile.unwrap_or("GPU").to_string(),
                state: State::Starting,
                cancel: Arc::new(AtomicBool::new(false)),
                watchers: Vec::new(),
            },
        );
        Ok(Some(port))
    }

    /// A port nothing listens on now, and not given to another server of this variant. (Another
    /// program could take it before the server binds it; the server then fails and is recorded.)
    fn free_port(&mut self) -> Result<u16> {
        for _ in 0..100 {
            let port = std::net::TcpListener::bind(("127.0.0.1", 0))
                .and_then(|l| l.local_addr())
                .map_err(|e| Error::Harness(format!("cannot find a free port: {e}")))?
                .port();
            if self.ports.insert(port) {
                return Ok(port);
            }
        }
        Err(Error::Harness("cannot find a free port".into()))
    }

    /// The job's process is running: wait for it to be ready, on an actor of its own.
    pub fn started(&mut self, key: usize) {
        let Some(server) = self.servers.get_mut(&key) else {
            return;
        };
        let (url, paths) = (server.url.clone(), server.spec.ready_paths.clone());
        let timeout_s = server.spec.ready_timeout_s;
        let cancel = Arc::clone(&server.cancel);
        let events = self.events.0.clone();
        let orchestrator = self.orchestrator.clone();
        let actor = self.clock.actor(&format!("readiness of {url}"));
        server.watchers.push(actor.poker());
        self.threads.push(std::thread::spawn(move || {
            let model = super::ready::wait_ready(&url, &paths, timeout_s, &cancel, &actor);
            // Said in the checker's turn, so the orchestrator acts on it at this instant.
            let _ = events.send(Event::Ready { key, model });
            orchestrator.poke();
        }));
    }

    /// The job ended (by itself or stopped): it takes no part in rounds any more, and no more
    /// requests go to it.
    pub fn ended(&mut self, key: usize) {
        if let Some(s) = self.servers.get_mut(&key) {
            s.cancel.store(true, Ordering::Relaxed);
            s.state = State::Finished;
            for w in &s.watchers {
                w.poke();
            }
        }
    }

    /// Takes in what happened since the last call, starts a round when its time has come, and
    /// says which servers to stop now.
    pub fn poll(&mut self) -> Vec<(usize, Stop)> {
        let mut stops = Vec::new();
        while let Ok(event) = self.events.1.try_recv() {
            match event {
                Event::Ready { key, model } => {
                    let Some(s) = self.servers.get_mut(&key) else {
                        continue;
                    };
                    if !matches!(s.state, State::Starting) {
                        continue;
                    }
                    match model {
                        Ok(listed) => {
                            let model = s.spec.model.clone().or(listed).unwrap_or_default();
                            s.state = State::Ready(model);
                        }
                        Err(reason) => stops.push((key, Stop::NotReady(reason))),
                    }
                }
                Event::RoundDone { number, results } => {
                    stops.extend(self.record_round(number, results));
                }
            }
        }
        let starting = self
            .servers
            .values()
            .any(|s| matches!(s.state, State::Starting));
        let ready: Vec<usize> = self
            .servers
            .iter()
            .filter(|(_, s)| matches!(s.state, State::Ready(_)))
            .map(|(&k, _)| k)
            .collect();
        // NotReady stops are still to be carried out: wait for them before starting a round.
        if !starting && stops.is_empty() && !ready.is_empty() {
            self.start_round(&ready);
        }
        stops
    }

    fn start_round(&mut self, keys: &[usize]) {
        let Some(load) = self.load.clone() else {
            return;
        };
        let number = self.next_round;
        self.next_round += 1;
        let mut targets = Vec::new();
        let mut actors = Vec::new();
        for key in keys {
            let s = self.servers.get_mut(key).expect("a ready server");
            // Made now, in the orchestrator's turn: their order is the servers'.
            let actor = self.clock.actor(&format!("load on {}", s.url));
            s.watchers.push(actor.poker());
            actors.push(actor);
            let State::Ready(model) = std::mem::replace(&mut s.state, State::Loading) else {
                unreachable!("only ready servers start a round")
            };
            targets.push((
                *key,
                Target {
                    base_url: s.url.clone(),
                    model,
                    spec: load.clone(),
                    prompts: self.prompts.clone(),
                    seed: load.seed + s.job as u64,
                    // Raised when the server's job ends: its load stops with it.
                    stop: Arc::clone(&s.cancel),
                    hold_owner: s.backend_job,
                    sink: self.run.recorder.as_ref().map(|r| {
                        r.sink(Source {
                            job: s.job,
                            workload: s.workload.clone(),
                            instance: s.instance.clone(),
                            round: number,
                        })
                    }),
                },
            ));
        }
        let (clock, t0) = (self.clock.clone(), self.t0);
        let events = self.events.0.clone();
        let orchestrator = self.orchestrator.clone();
        self.threads.push(std::thread::spawn(move || {
            let only: Vec<Target> = targets.iter().map(|(_, t)| t.clone()).collect();
            let key_list: Vec<usize> = targets.iter().map(|(k, _)| *k).collect();
            let keys: Vec<(usize, Target)> = targets;
            let done_events = events.clone();
            let done_orchestrator = orchestrator.clone();
            // Called by the last target to finish, in its turn: the orchestrator then acts at
            // the instant the round ended.
            let on_done: loadgen::OnDone = Box::new(move |results: Vec<Vec<TargetResult>>| {
                let results = keys
                    .into_iter()
                    .zip(results)
                    .map(|((k, t), r)| (k, t, r))
                    .collect();
                let _ = done_events.send(Event::RoundDone { number, results });
                done_orchestrator.poke();
            });
            if let Err(e) = loadgen::drive_blocking_with(&only, actors, &clock, t0, Some(on_done)) {
                // No runtime, no requests: the round is empty and its servers are stopped.
                eprintln!("migbench: cannot drive the servers: {e}");
                let now = clock.now() - t0;
                let empty = TargetResult {
                    start_s: now,
                    end_s: now,
                    records: Vec::new(),
                    point: None,
                    steady: false,
                };
                let results = key_list
                    .into_iter()
                    .zip(only)
                    .map(|(k, t)| (k, t, vec![empty.clone()]))
                    .collect();
                let _ = events.send(Event::RoundDone { number, results });
                orchestrator.poke();
            }
        }));
    }

    /// Records a finished round and stops its servers that still run.
    fn record_round(
        &mut self,
        number: u32,
        results: Vec<(usize, Target, Vec<TargetResult>)>,
    ) -> Vec<(usize, Stop)> {
        let mut stops = Vec::new();
        for (key, target, points) in results {
            let Some(s) = self.servers.get_mut(&key) else {
                continue;
            };
            if matches!(s.state, State::Loading) {
                s.state = State::Finished;
                stops.push((key, Stop::Served));
            }
            for result in points {
                self.run.served.push(Served {
                    job: s.job,
                    round: number,
                    url: target.base_url.clone(),
                    model: target.model.clone(),
                    result,
                });
            }
        }
        stops
    }

    /// Waits for rounds and readiness checks still going (they end soon once the servers are
    /// stopped) and returns what was served. `orchestrator` steps aside meanwhile: on the
    /// simulator they need turns to end.
    pub fn finish(mut self, orchestrator: &Actor) -> ServingRun {
        for s in self.servers.values() {
            s.cancel.store(true, Ordering::Relaxed);
            for w in &s.watchers {
                w.poke();
            }
        }
        let threads = std::mem::take(&mut self.threads);
        orchestrator.step_aside(|| {
            for t in threads {
                let _ = t.join();
            }
        });
        while let Ok(event) = self.events.1.try_recv() {
            if let Event::RoundDone { number, results } = event {
                // The jobs have all ended: nothing is left to stop.
                self.record_round(number, results);
            }
        }
        self.run
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_port_fills_every_placeholder_in_argv_and_environment() {
        let mut launch = JobLaunch {
            argv: vec![
                "vllm".into(),
                "--port".into(),
                "{port}".into(),
                "--url=http://h:{port}/".into(),
            ],
            env: vec![("CUDA_VISIBLE_DEVICES".into(), "MIG-1".into())],
            cwd: None,
        };
        let env = BTreeMap::from([("VLLM_PORT".to_string(), "{port}".to_string())]);
        fill_port(&mut launch, &env, 8123);
        assert_eq!(
            launch.argv,
            ["vllm", "--port", "8123", "--url=http://h:8123/"]
        );
        assert_eq!(
            launch.env,
            [
                ("CUDA_VISIBLE_DEVICES".to_string(), "MIG-1".to_string()),
                ("VLLM_PORT".to_string(), "8123".to_string())
            ]
        );
    }
}
