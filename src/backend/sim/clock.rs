//! The simulated GPU's clock: simulated time that advances by events (see [`crate::clock`]).
//!
//! One dispatcher thread gives turns, one actor at a time, in the order `(instant, actor)`:
//! an actor wants its next turn at an instant, when a simulated job has done some amount of
//! work (an instant that moves whenever the job's share of the GPU changes), or when poked.
//! While an actor holds its turn, or a message between actors is in flight (a hold), time stands
//! still; when neither, the dispatcher moves time to the earliest wanted instant, bringing every
//! job's work up to it, and grants that turn. Observers (the VRAM sampler) tick at their
//! instants after every actor has acted at them, and never move time on their own: a world in
//! which no actor waits for a finite instant is idle until something from outside (a process
//! ending) wakes it.
//!
//! Because turns are taken one at a time in a fixed order, two actors acting at the same
//! instant (three jobs reaching their peak together) always act in the same order, and a run's
//! figures depend only on its scenario.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::gpu::SimGpu;
use crate::clock::{lock, ActorId, Slot, TimeKeeper, Wake};

/// Real time the clock may stand still before the dispatcher says on stderr what it waits for.
const STUCK_WARNING: Duration = Duration::from_secs(20);

/// The simulated GPU and its clock, behind one lock: a job's progress is the clock's business.
pub struct World {
    pub gpu: SimGpu,
    sched: Sched,
}

struct Sched {
    now: f64,
    next_id: u64,
    actors: BTreeMap<ActorId, Entry>,
    /// The actor holding the turn.
    running: Option<ActorId>,
    /// An observer's tick is running (outside the lock).
    observing: bool,
    /// Messages in flight, by owner. Signed: the receiver of a message may say it has it
    /// before the sender's count of it comes in (the sender still holds its turn then).
    holds: HashMap<u64, i64>,
    observers: BTreeMap<u64, Observer>,
    /// Each simulated job's actor.
    job_actors: HashMap<u64, ActorId>,
    pace: Option<Pace>,
    shutdown: bool,
    /// When the running actor got its turn, and whether its holding on was reported.
    granted_at: Instant,
    warned: bool,
}

struct Entry {
    name: String,
    wake: Option<Wake>,
    poked: bool,
    /// Its process has ended: it takes no more turns.
    exited: bool,
    slot: Arc<Slot>,
    /// A run of work targets after the one it waits for ([`SimWorld::job_release_run`]):
    /// each is taken up when the one before is reached, without a turn.
    milestones: VecDeque<f64>,
    /// When each target of its run was reached, for its next turn to tell.
    reached: Vec<f64>,
}

struct Observer {
    next: f64,
    interval: f64,
    /// Taken out while it runs.
    tick: Option<Box<dyn FnMut(f64) + Send>>,
}

/// At most `per_s` simulated seconds per real second, counted from `origin`.
struct Pace {
    per_s: f64,
    real0: Instant,
    sim0: f64,
}

/// The simulated GPU with its clock; what [`crate::clock::Clock`] wraps on the simulator.
pub struct SimWorld {
    world: Mutex<World>,
    /// Wakes the dispatcher: something changed.
    changed: Condvar,
    /// Signalled when an observer's tick has finished.
    observed: Condvar,
}

impl SimWorld {
    /// The world for `gpu`, with its dispatcher running; `pace` caps simulated seconds per real
    /// second.
    pub fn start(gpu: SimGpu, pace: Option<f64>) -> Arc<SimWorld> {
        let world = Arc::new(SimWorld {
            world: Mutex::new(World {
                gpu,
                sched: Sched {
                    now: 0.0,
                    next_id: 1,
                    actors: BTreeMap::new(),
                    running: None,
                    observing: false,
                    holds: HashMap::new(),
                    observers: BTreeMap::new(),
                    job_actors: HashMap::new(),
                    pace: pace.map(|per_s| Pace {
                        per_s,
                        real0: Instant::now(),
                        sim0: 0.0,
                    }),
                    shutdown: false,
                    granted_at: Instant::now(),
                    warned: false,
                },
            }),
            changed: Condvar::new(),
            observed: Condvar::new(),
        });
        let dispatcher = Arc::clone(&world);
        std::thread::Builder::new()
            .name("sim-clock".into())
            .spawn(move || dispatcher.dispatch())
            .expect("the simulator's clock thread starts");
        world
    }

    /// The world, locked.
    pub fn lock(&self) -> MutexGuard<'_, World> {
        lock(&self.world)
    }

    /// Stops the dispatcher (the backend is gone).
    pub fn shut_down(&self) {
        self.lock().sched.shutdown = true;
        self.changed.notify_all();
    }

    fn changed(&self, _world: MutexGuard<'_, World>) {
        self.changed.notify_all();
    }

    /// Registers simulated job `job` on the GPU, with an actor whose first turn is now (its
    /// process says hello in it).
    pub fn register_job(&self, job: u64, sim_job: super::gpu::SimJob) {
        let mut world = self.lock();
        world.gpu.register(job, sim_job);
        let (id, _) = world.sched.join(&format!("job {job}"));
        world.sched.job_actors.insert(job, id);
        self.changed(world);
    }

    /// Waits for simulated job `job`'s turn; false if the job is not known (or has ended).
    pub fn job_turn(&self, job: u64) -> bool {
        let slot = {
            let world = self.lock();
            let Some(id) = world.sched.job_actors.get(&job) else {
                return false;
            };
            Arc::clone(&world.sched.actors[id].slot)
        };
        slot.wait();
        self.lock().sched.job_actors.contains_key(&job)
    }

    /// Ends job `job`'s turn until `wake`, with `holds` more messages in flight for it.
    pub fn job_release(&self, job: u64, wake: Wake, holds: u32) {
        let mut world = self.lock();
        // Counted before the turn ends, under the same lock: time cannot move in between.
        *world.sched.holds.entry(job).or_default() += i64::from(holds);
        if let Some(id) = world.sched.job_actors.get(&job).copied() {
            world.sched.release(id, wake);
        }
        self.changed(world);
    }

    /// Ends job `job`'s turn until it has done each amount of work in `done_s` in turn (rising,
    /// seconds at full speed), or until it is poked, with `holds` more messages in flight. The
    /// clock notes the instant each amount is reached and moves on to the next without a turn:
    /// a simulated server runs engine steps back to back this way, one turn for many steps.
    pub fn job_release_run(&self, job: u64, done_s: &[f64], holds: u32) {
        {
            // The job holds its turn: nothing else touches its entry before the release.
            let mut world = self.lock();
            let id = world.sched.job_actors.get(&job).copied();
            if let Some(e) = id.and_then(|id| world.sched.actors.get_mut(&id)) {
                e.milestones = done_s.iter().skip(1).copied().collect();
                e.reached.clear();
            }
        }
        let first = done_s.first().copied().unwrap_or(0.0);
        self.job_release(job, Wake::Work { job, done_s: first }, holds);
    }

    /// The instants job `job` reached the targets of its last run, taken (empty if none).
    pub fn take_reached(&self, job: u64) -> Vec<f64> {
        let mut world = self.lock();
        let Some(id) = world.sched.job_actors.get(&job).copied() else {
            return Vec::new();
        };
        world
            .sched
            .actors
            .get_mut(&id)
            .map(|e| std::mem::take(&mut e.reached))
            .unwrap_or_default()
    }

    /// Pokes job `job`'s actor (a request reached a simulated server).
    pub fn poke_job(&self, job: u64) {
        let id = self.lock().sched.job_actors.get(&job).copied();
        if let Some(id) = id {
            self.poke(id);
        }
    }

    /// Job `job`'s process has ended: it takes no more turns (its memory stays until
    /// [`SimWorld::job_ended`], when the orchestrator has seen it end).
    pub fn process_exited(&self, job: u64) {
        let mut world = self.lock();
        if let Some(&id) = world.sched.job_actors.get(&job) {
            if let Some(e) = world.sched.actors.get_mut(&id) {
                e.exited = true;
            }
            if world.sched.running == Some(id) {
                world.sched.running = None;
            }
        }
        self.changed(world);
    }

    /// Job `job` is over: its memory and compute go, and its actor and holds with it.
    pub fn job_ended(&self, job: u64) {
        let mut world = self.lock();
        let now = world.sched.now;
        world.gpu.advance(now);
        world.gpu.jobs.remove(&job);
        world.gpu.recompute_rates();
        if let Some(id) = world.sched.job_actors.remove(&job) {
            world.sched.leave(id);
        }
        world.sched.holds.remove(&job);
        self.changed(world);
    }

    /// The dispatcher: gives turns and ticks, and moves time, until shut down.
    fn dispatch(&self) {
        let mut world = self.lock();
        loop {
            if world.sched.shutdown {
                return;
            }
            let s = &mut world.sched;
            if !s.warned && s.granted_at.elapsed() >= STUCK_WARNING {
                s.warned = true;
                eprintln!(
                    "migbench: the simulated clock has not moved for {} s of real time: {}",
                    STUCK_WARNING.as_secs(),
                    s.describe()
                );
            }
            if s.running.is_some() || s.observing || s.holds.values().any(|&n| n > 0) {
                world = self.wait_for_change(world, STUCK_WARNING);
                continue;
            }
            let actor = world.next_actor();
            let tick = world
                .sched
                .observers
                .iter()
                .map(|(&id, o)| (o.next.max(world.sched.now), id))
                .min_by(|a, b| a.0.total_cmp(&b.0));
            let (at, grant) = match (actor, tick) {
                // Observers tick before an actor's later instant, never on their own.
                (Some((t, _)), Some((o, id))) if o < t => (o, Err(id)),
                (Some((t, id)), _) => (t, Ok(id)),
                (None, _) => {
                    world = self.wait_for_change(world, STUCK_WARNING);
                    continue;
                }
            };
            world.sched.granted_at = Instant::now();
            world.sched.warned = false;
            if let Some(wait) = world.sched.pace_wait(at) {
                world = self.wait_for_change(world, wait.min(Duration::from_millis(50)));
                continue;
            }
            world.move_to(at);
            match grant {
                Ok(id) => {
                    if !world.next_milestone(id) {
                        world.grant(id);
                    }
                }
                Err(observer) => world = self.run_tick(world, observer),
            }
        }
    }

    /// Waits until something changes, or `at_most` has passed.
    fn wait_for_change<'a>(
        &'a self,
        world: MutexGuard<'a, World>,
        at_most: Duration,
    ) -> MutexGuard<'a, World> {
        crate::clock::wait(&self.changed, world, Some(at_most))
    }

    /// Runs one observer's tick outside the lock (it samples the GPU, which takes the lock).
    fn run_tick<'a>(&'a self, mut world: MutexGuard<'a, World>, id: u64) -> MutexGuard<'a, World> {
        let now = world.sched.now;
        let Some(mut tick) = world
            .sched
            .observers
            .get_mut(&id)
            .and_then(|o| o.tick.take())
        else {
            return world;
        };
        world.sched.observing = true;
        drop(world);
        tick(now);
        let mut world = self.lock();
        world.sched.observing = false;
        if let Some(o) = world.sched.observers.get_mut(&id) {
            o.tick = Some(tick);
            o.next += o.interval;
        }
        self.observed.notify_all();
        world
    }
}

impl World {
    /// The simulated time now.
    pub fn now(&self) -> f64 {
        self.sched.now
    }

    /// The actor whose turn comes first, with its instant: `(instant, actor)` order.
    fn next_actor(&self) -> Option<(f64, ActorId)> {
        let now = self.sched.now;
        self.sched
            .actors
            .iter()
            .filter(|(_, e)| !e.exited)
            .filter_map(|(&id, e)| {
                if e.wake == Some(Wake::Away) {
                    return None;
                }
                let t = if e.poked {
                    now
                } else {
                    match e.wake? {
                        Wake::At(t) => t.max(now),
                        Wake::Never | Wake::Away => return None,
                        Wake::Work { job, done_s } => self.gpu.when_done(job, done_s, now)?,
                    }
                };
                t.is_finite().then_some((t, id))
            })
            .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)))
    }

    fn move_to(&mut self, t: f64) {
        if t > self.sched.now {
            self.gpu.advance(t);
            self.sched.now = t;
        }
        // The pace is a ceiling, never a debt: time spent idle is not made up in a burst.
        if let Some(p) = &mut self.sched.pace {
            let due = p.real0 + Duration::from_secs_f64(((t - p.sim0) / p.per_s).max(0.0));
            if due < Instant::now() {
                p.real0 = Instant::now();
                p.sim0 = t;
            }
        }
    }

    /// Whether `id`, at its instant, has only reached a target of its run that is not the last
    /// (and not been poked): the instant is noted and the next target taken up, without a turn.
    fn next_milestone(&mut self, id: ActorId) -> bool {
        let now = self.sched.now;
        let Some(e) = self.sched.actors.get_mut(&id) else {
            return false;
        };
        let (Some(Wake::Work { job, done_s }), false) = (e.wake, e.poked) else {
            return false;
        };
        let Some(next) = e.milestones.pop_front() else {
            return false;
        };
        self.gpu.reach(job, done_s);
        e.reached.push(now);
        e.wake = Some(Wake::Work { job, done_s: next });
        true
    }

    fn grant(&mut self, id: ActorId) {
        let s = &mut self.sched;
        let Some(e) = s.actors.get_mut(&id) else {
            return;
        };
        // A job woken for its work has done exactly that much: rounding never leaves it a
        // hair short, to be woken again for nothing.
        let wake = e.wake.take();
        if let (Some(Wake::Work { job, done_s }), false) = (wake, e.poked) {
            self.gpu.reach(job, done_s);
        }
        if std::env::var_os("MIGBENCH_SIM_TRACE").is_some() {
            let poked = if e.poked { ", poked" } else { "" };
            eprintln!("sim-clock {}: {} ({wake:?}{poked})", s.now, e.name);
        }
        e.milestones.clear();
        e.poked = false;
        s.running = Some(id);
        s.granted_at = Instant::now();
        s.warned = false;
        e.slot.grant();
    }
}

impl Sched {
    fn join(&mut self, name: &str) -> (ActorId, Arc<Slot>) {
        let id = self.next_id;
        self.next_id += 1;
        let slot = Arc::new(Slot::default());
        self.actors.insert(
            id,
            Entry {
                name: name.to_string(),
                wake: Some(Wake::At(self.now)),
                poked: false,
                exited: false,
                slot: Arc::clone(&slot),
                milestones: VecDeque::new(),
                reached: Vec::new(),
            },
        );
        (id, slot)
    }

    /// What the clock waits for, for a diagnostic.
    fn describe(&self) -> String {
        let name = |id: &ActorId| self.actors.get(id).map_or("?", |e| e.name.as_str());
        let mut parts = vec![format!("at {} s", self.now)];
        if let Some(id) = &self.running {
            parts.push(format!("{} holds the turn", name(id)));
        }
        let holds: Vec<String> = self
            .holds
            .iter()
            .filter(|(_, &n)| n != 0)
            .map(|(owner, n)| format!("{n} for {owner}"))
            .collect();
        if !holds.is_empty() {
            parts.push(format!("messages in flight: {}", holds.join(", ")));
        }
        for (id, e) in &self.actors {
            parts.push(format!(
                "{} wants {:?}{}{}",
                name(id),
                e.wake,
                if e.poked { ", poked" } else { "" },
                if e.exited { ", exited" } else { "" }
            ));
        }
        parts.join("; ")
    }

    fn release(&mut self, id: ActorId, wake: Wake) {
        if let Some(e) = self.actors.get_mut(&id) {
            e.wake = Some(wake);
            e.slot.revoke(None);
        }
        if self.running == Some(id) {
            self.running = None;
        }
    }

    fn leave(&mut self, id: ActorId) {
        // Whoever still waits on its slot (a job's connection) is let go, to find it gone.
        if let Some(e) = self.actors.remove(&id) {
            e.slot.grant();
        }
        if self.running == Some(id) {
            self.running = None;
        }
    }

    /// How long to wait in real time before moving to `t`, at the pace asked for.
    fn pace_wait(&mut self, t: f64) -> Option<Duration> {
        let pace = self.pace.as_ref()?;
        let due = pace.real0 + Duration::from_secs_f64(((t - pace.sim0) / pace.per_s).max(0.0));
        let now = Instant::now();
        (due > now).then(|| due - now)
    }
}

impl TimeKeeper for SimWorld {
    fn now(&self) -> f64 {
        self.lock().sched.now
    }

    fn simulated(&self) -> bool {
        true
    }

    fn join(&self, name: &str) -> (ActorId, Arc<Slot>) {
        let mut world = self.lock();
        let joined = world.sched.join(name);
        self.changed(world);
        joined
    }

    fn release(&self, id: ActorId, wake: Wake) {
        let mut world = self.lock();
        world.sched.release(id, wake);
        self.changed(world);
    }

    fn leave(&self, id: ActorId) {
        let mut world = self.lock();
        world.sched.leave(id);
        self.changed(world);
    }

    fn poke(&self, id: ActorId) {
        let mut world = self.lock();
        if let Some(e) = world.sched.actors.get_mut(&id) {
            e.poked = true;
        }
        self.changed(world);
    }

    fn interrupt(&self, id: ActorId) {
        let mut world = self.lock();
        world.sched.holds.clear();
        if world.sched.running != Some(id) {
            world.sched.running = None;
            world.grant(id);
        }
        self.changed(world);
    }

    fn hold(&self, owner: u64, n: u32) {
        *self.lock().sched.holds.entry(owner).or_default() += i64::from(n);
    }

    fn unhold(&self, owner: u64) {
        let mut world = self.lock();
        *world.sched.holds.entry(owner).or_default() -= 1;
        self.changed(world);
    }

    fn every(&self, interval: f64, tick: Box<dyn FnMut(f64) + Send>) -> u64 {
        let mut world = self.lock();
        let s = &mut world.sched;
        let id = s.next_id;
        s.next_id += 1;
        s.observers.insert(
            id,
            Observer {
                next: s.now,
                interval,
                tick: Some(tick),
            },
        );
        self.changed(world);
        id
    }

    fn stop_every(&self, id: u64) {
        let mut world = self.lock();
        // A tick running now finishes first: what it samples is not lost.
        while world
            .sched
            .observers
            .get(&id)
            .is_some_and(|o| o.tick.is_none())
        {
            world = crate::clock::wait(&self.observed, world, None);
        }
        world.sched.observers.remove(&id);
        self.changed(world);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::sim::gpu::SimJob;
    use crate::backend::sim::sharing::Sharing;
    use crate::catalog::Catalog;
    use crate::clock::TimeKeeper;

    /// What the second actor does to job 1.
    #[derive(Clone, Copy)]
    enum Event {
        /// Job 2 starts computing: job 1 is slowed down (time-slicing).
        Busy,
        /// Job 1 is poked.
        Poke,
    }

    /// A world with two jobs on one whole GPU: job 1, which the test drives, and job 2, idle;
    /// a second actor makes `events` happen at their instants.
    fn world(events: &[(f64, Event)]) -> Arc<SimWorld> {
        let gpu = SimGpu::fresh(Catalog::builtin().gpu("a100-80gb").unwrap());
        let job = |gpu: &SimGpu| SimJob {
            device: gpu.uuid.clone(),
            work_s: f64::INFINITY,
            sharing: Sharing::from_alpha(1.0),
            reference_sm: gpu.model.sm_count,
            done_s: 0.0,
            memory_gib: 0.0,
            pid: None,
            active: false,
            rate: 0.0,
            power_share: 1.0,
        };
        let (first, second) = (job(&gpu), job(&gpu));
        let world = SimWorld::start(gpu, None);
        world.register_job(1, first);
        world.register_job(2, second);
        let other = Arc::clone(&world);
        let (id, slot) = other.join("neighbour");
        let events = events.to_vec();
        std::thread::spawn(move || {
            // Job 2's process would say hello in its first turn: here it gives the turn up.
            assert!(other.job_turn(2));
            other.job_release(2, Wake::Never, 0);
            slot.wait();
            for (at, event) in events {
                other.release(id, Wake::At(at));
                slot.wait();
                match event {
                    Event::Busy => {
                        let mut w = other.lock();
                        w.gpu.jobs.get_mut(&2).unwrap().active = true;
                        w.gpu.recompute_rates();
                    }
                    Event::Poke => other.poke_job(1),
                }
            }
            other.release(id, Wake::Away);
        });
        // Job 1's first turn: it starts computing.
        assert!(world.job_turn(1));
        {
            let mut w = world.lock();
            w.gpu.jobs.get_mut(&1).unwrap().active = true;
            w.gpu.recompute_rates();
        }
        world
    }

    const TARGETS: [f64; 4] = [1.0, 2.0, 3.0, 4.0];

    #[test]
    fn a_run_reaches_each_target_when_one_wait_per_target_would() {
        // One wait per target, the job slowed down after 2.5 s.
        let stepwise = world(&[(2.5, Event::Busy)]);
        let mut one_by_one = Vec::new();
        for done_s in TARGETS {
            stepwise.job_release(1, Wake::Work { job: 1, done_s }, 0);
            assert!(stepwise.job_turn(1));
            one_by_one.push(stepwise.now());
        }
        // One run for all of them.
        let run = world(&[(2.5, Event::Busy)]);
        run.job_release_run(1, &TARGETS, 0);
        assert!(run.job_turn(1));
        let mut reached = run.take_reached(1);
        reached.push(run.now());
        assert_eq!(reached, one_by_one);
        // A second of work a second, then half that once the GPU is time-sliced at 2.5 s.
        assert_eq!(reached, [1.0, 2.0, 3.5, 5.5]);
    }

    #[test]
    fn a_poke_ends_a_run_with_the_targets_reached_so_far() {
        let run = world(&[(2.5, Event::Poke)]);
        run.job_release_run(1, &TARGETS, 0);
        assert!(run.job_turn(1));
        assert_eq!(run.now(), 2.5);
        assert_eq!(run.take_reached(1), [1.0, 2.0]);
        // The rest of the run is dropped: the next turn is the next wait's.
        run.job_release(
            1,
            Wake::Work {
                job: 1,
                done_s: 3.0,
            },
            0,
        );
        assert!(run.job_turn(1));
        assert_eq!((run.now(), run.take_reached(1)), (3.0, vec![]));
    }
}
