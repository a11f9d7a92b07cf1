//! One clock per run, owned by the backend.
//!
//! On a real GPU it is the monotonic wall clock. On the simulator it is simulated time that
//! advances by events: every part of a run that acts in time — the orchestrator (staggers,
//! timeouts, MIG queues), each simulated job and server, the load generator, the VRAM sampler —
//! is an [`Actor`] (or, for the sampler, an observer: see [`Clock::every`]). Actors act one at a
//! time, in *turns*; an actor ends its turn by saying when it wants the next one ([`Wake`]), and
//! when every actor is waiting for a future instant, simulated time jumps to the earliest one.
//! Nothing in a simulated run sleeps in real time, so its figures depend only on the scenario,
//! never on the host's speed or load.
//!
//! The same calls run on the wall clock, where a turn is always held and a [`Wake`] is a plain
//! timed wait that a [`Poker`] cuts short: one code path for both backends.
//!
//! Two more things keep simulated time honest where actors talk to each other:
//! - a **poke** makes an actor runnable now: a job's process ended, a server event arrived;
//! - a **hold** freezes time while a message is in flight between actors (an HTTP request on its
//!   way to a simulated server, the last chunk of a stream on its way back), so that the message
//!   is acted on at the instant it was sent.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Locks a mutex, also after a thread panicked while holding it: what it guards stays usable
/// (every writer leaves it consistent between statements), and the run can still tear down.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Waits on `cv` (at most `at_most`, when given) with [`lock`]'s tolerance of a panicked holder.
pub fn wait<'a, T>(
    cv: &Condvar,
    guard: MutexGuard<'a, T>,
    at_most: Option<Duration>,
) -> MutexGuard<'a, T> {
    match at_most {
        Some(d) => {
            cv.wait_timeout(guard, d)
                .unwrap_or_else(|e| e.into_inner())
                .0
        }
        None => cv.wait(guard).unwrap_or_else(|e| e.into_inner()),
    }
}

/// When an actor wants its next turn. Every wait also ends early when the actor is poked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Wake {
    /// At this instant (seconds on the run's clock).
    At(f64),
    /// Only when poked.
    Never,
    /// When simulated job `job` has done `done_s` seconds of work (the simulator alone).
    Work { job: u64, done_s: f64 },
    /// Not at all, not even when poked: the actor's thread is not waiting for a turn (it waits
    /// for something else, or is done). A turn given to it would stop the clock.
    Away,
}

/// An actor's identity on its clock: registration order, which also orders actors that want a
/// turn at the same instant.
pub type ActorId = u64;

/// What a clock does; [`Clock`] is the handle the rest of migbench uses.
pub trait TimeKeeper: Send + Sync {
    /// Seconds since the clock started.
    fn now(&self) -> f64;
    /// Whether this is simulated time.
    fn simulated(&self) -> bool;
    /// A new actor, waiting for a turn now.
    fn join(&self, name: &str) -> (ActorId, Arc<Slot>);
    /// Ends `id`'s turn; it gets the next at `wake` or when poked.
    fn release(&self, id: ActorId, wake: Wake);
    /// The actor is gone (its turn, if it held one, ends).
    fn leave(&self, id: ActorId);
    /// Makes `id` runnable now (a turn held now is followed by another at the same instant).
    fn poke(&self, id: ActorId);
    /// Gives `id` a turn now, even while another actor holds one (which then no longer does):
    /// for stopping a run, when another actor may never end its turn. The order of turns, and
    /// with it the run's figures, is not kept after this.
    fn interrupt(&self, id: ActorId);
    /// `n` more messages are in flight for `owner` (0: migbench itself): time stands still until
    /// each is [`TimeKeeper::unhold`]en.
    fn hold(&self, owner: u64, n: u32);
    fn unhold(&self, owner: u64);
    /// Calls `tick` every `interval` seconds from now on, at each instant after every actor has
    /// acted at it, until [`TimeKeeper::stop_every`].
    fn every(&self, interval: f64, tick: Box<dyn FnMut(f64) + Send>) -> u64;
    /// Stops the ticks of [`TimeKeeper::every`]; returns once no tick runs any more.
    fn stop_every(&self, id: u64);
}

/// The run's clock.
#[derive(Clone)]
pub struct Clock(Arc<dyn TimeKeeper>);

impl Clock {
    pub fn new(keeper: Arc<dyn TimeKeeper>) -> Clock {
        Clock(keeper)
    }

    /// The monotonic wall clock, reading 0 now.
    pub fn wall() -> Clock {
        Clock(Arc::new(WallClock::new()))
    }

    pub fn now(&self) -> f64 {
        self.0.now()
    }

    pub fn simulated(&self) -> bool {
        self.0.simulated()
    }

    /// A new actor named `name` (for diagnostics); its first turn is now, after the actors
    /// registered before it. Call [`Actor::turn`] before acting.
    pub fn actor(&self, name: &str) -> Actor {
        let (id, slot) = self.0.join(name);
        Actor {
            clock: self.clone(),
            id,
            slot,
        }
    }

    /// A message is in flight until the guard is dropped.
    pub fn hold(&self) -> Hold {
        self.0.hold(0, 1);
        Hold(self.clone())
    }

    /// One of the messages `owner` (a simulated server's job) put in flight has arrived.
    pub fn unhold(&self, owner: u64) {
        self.0.unhold(owner);
    }

    /// Calls `tick` every `interval` seconds; see [`TimeKeeper::every`].
    pub fn every(&self, interval: f64, tick: Box<dyn FnMut(f64) + Send>) -> Every {
        Every {
            clock: self.clone(),
            id: self.0.every(interval, tick),
        }
    }
}

/// A message in flight (see [`Clock::hold`]).
pub struct Hold(Clock);

impl Drop for Hold {
    fn drop(&mut self) {
        self.0 .0.unhold(0);
    }
}

/// Periodic ticks; stopped when dropped or by [`Every::stop`].
pub struct Every {
    clock: Clock,
    id: u64,
}

impl Every {
    /// Stops the ticks; returns once none runs any more.
    pub fn stop(self) {}
}

impl Drop for Every {
    fn drop(&mut self) {
        self.clock.0.stop_every(self.id);
    }
}

/// One participant of a run in time.
pub struct Actor {
    clock: Clock,
    id: ActorId,
    slot: Arc<Slot>,
}

impl Actor {
    pub fn id(&self) -> ActorId {
        self.id
    }

    /// Waits until this actor holds the turn; returns the time then.
    pub fn turn(&self) -> f64 {
        self.slot.wait();
        self.clock.now()
    }

    /// Ends the turn, waits for the next (at `wake`, or when poked) and returns the time then.
    pub fn sleep(&self, wake: Wake) -> f64 {
        self.clock.0.release(self.id, wake);
        self.turn()
    }

    /// Ends the turn without waiting for the next (whose thread will come back for it, or
    /// never, and drop the actor).
    pub fn release(&self, wake: Wake) {
        self.clock.0.release(self.id, wake);
    }

    /// [`Actor::turn`] for async code.
    pub async fn turn_async(&self) -> f64 {
        self.slot.wait_async().await;
        self.clock.now()
    }

    /// [`Actor::sleep`] for async code.
    pub async fn sleep_async(&self, wake: Wake) -> f64 {
        self.clock.0.release(self.id, wake);
        self.turn_async().await
    }

    /// Ends the turn while `work` runs in real time (waiting for threads that themselves need
    /// turns to finish, say), then takes a turn again.
    pub fn step_aside<T>(&self, work: impl FnOnce() -> T) -> T {
        self.clock.0.release(self.id, Wake::Away);
        let out = work();
        // Back now, after whoever else acts at this instant.
        self.clock.0.release(self.id, Wake::At(self.clock.now()));
        self.turn();
        out
    }

    /// Something that makes this actor runnable from another thread.
    pub fn poker(&self) -> Poker {
        Poker {
            clock: self.clock.clone(),
            id: self.id,
        }
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }
}

impl Drop for Actor {
    fn drop(&mut self) {
        self.clock.0.leave(self.id);
    }
}

/// Pokes one actor (see [`Clock`]).
#[derive(Clone)]
pub struct Poker {
    clock: Clock,
    id: ActorId,
}

impl Poker {
    pub fn poke(&self) {
        self.clock.0.poke(self.id);
    }

    /// See [`TimeKeeper::interrupt`].
    pub fn interrupt(&self) {
        self.clock.0.interrupt(self.id);
    }
}

/// Where an actor waits for its turn: granted by its clock, or (on the wall clock) when a
/// deadline passes.
#[derive(Default)]
pub struct Slot {
    state: Mutex<SlotState>,
    granted: Condvar,
    notify: tokio::sync::Notify,
}

#[derive(Default)]
struct SlotState {
    granted: bool,
    /// Granted again while held: the next revoke keeps the turn (a poke is never lost).
    again: bool,
    /// The wall clock's timed wait.
    deadline: Option<Instant>,
}

impl Slot {
    /// A slot whose turn is held.
    pub fn granted() -> Arc<Slot> {
        let slot = Arc::new(Slot::default());
        lock(&slot.state).granted = true;
        slot
    }

    /// Gives the turn (again, if it is held: then the next revoke keeps it).
    pub fn grant(&self) {
        {
            let mut state = lock(&self.state);
            if state.granted {
                state.again = true;
            }
            state.granted = true;
        }
        self.granted.notify_all();
        self.notify.notify_one();
    }

    /// Takes the turn back; the next is granted, or comes at `deadline` (real time).
    pub fn revoke(&self, deadline: Option<Instant>) {
        let mut state = lock(&self.state);
        if std::mem::take(&mut state.again) {
            return;
        }
        state.granted = false;
        state.deadline = deadline;
    }

    /// Whether the turn is held now, counting a deadline that has passed as a grant.
    fn check(state: &mut SlotState) -> bool {
        if !state.granted && state.deadline.is_some_and(|d| Instant::now() >= d) {
            state.granted = true;
        }
        if state.granted {
            state.deadline = None;
        }
        state.granted
    }

    pub fn wait(&self) {
        let mut state = lock(&self.state);
        while !Slot::check(&mut state) {
            state = match state.deadline {
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    wait(&self.granted, state, Some(left))
                }
                None => wait(&self.granted, state, None),
            };
        }
    }

    pub async fn wait_async(&self) {
        loop {
            let notified = self.notify.notified();
            let deadline = {
                let mut state = lock(&self.state);
                if Slot::check(&mut state) {
                    return;
                }
                state.deadline
            };
            match deadline {
                Some(d) => {
                    let _ = tokio::time::timeout_at(d.into(), notified).await;
                }
                None => notified.await,
            }
        }
    }
}

/// The monotonic wall clock: every actor always holds its turn; a wait is a timed wait that a
/// poke cuts short; holds are nothing; ticks come from a thread of their own.
pub struct WallClock {
    origin: Instant,
    actors: Mutex<std::collections::HashMap<ActorId, Arc<Slot>>>,
    next: std::sync::atomic::AtomicU64,
    tickers: Mutex<std::collections::HashMap<u64, Ticker>>,
}

struct Ticker {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: std::thread::JoinHandle<()>,
}

impl WallClock {
    pub fn new() -> WallClock {
        WallClock {
            origin: Instant::now(),
            actors: Mutex::default(),
            next: std::sync::atomic::AtomicU64::new(1),
            tickers: Mutex::default(),
        }
    }

    fn instant(&self, t: f64) -> Instant {
        self.origin + Duration::from_secs_f64(t.clamp(0.0, 1e9))
    }
}

impl Default for WallClock {
    fn default() -> Self {
        WallClock::new()
    }
}

impl TimeKeeper for WallClock {
    fn now(&self) -> f64 {
        self.origin.elapsed().as_secs_f64()
    }

    fn simulated(&self) -> bool {
        false
    }

    fn join(&self, _name: &str) -> (ActorId, Arc<Slot>) {
        let id = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let slot = Slot::granted();
        lock(&self.actors).insert(id, Arc::clone(&slot));
        (id, slot)
    }

    fn release(&self, id: ActorId, wake: Wake) {
        let Some(slot) = lock(&self.actors).get(&id).cloned() else {
            return;
        };
        let deadline = match wake {
            Wake::At(t) => Some(self.instant(t)),
            Wake::Never | Wake::Work { .. } | Wake::Away => None,
        };
        slot.revoke(deadline);
    }

    fn leave(&self, id: ActorId) {
        lock(&self.actors).remove(&id);
    }

    fn poke(&self, id: ActorId) {
        if let Some(slot) = lock(&self.actors).get(&id) {
            slot.grant();
        }
    }

    fn interrupt(&self, id: ActorId) {
        self.poke(id);
    }

    fn hold(&self, _owner: u64, _n: u32) {}

    fn unhold(&self, _owner: u64) {}

    fn every(&self, interval: f64, mut tick: Box<dyn FnMut(f64) + Send>) -> u64 {
        let id = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let origin = self.origin;
        let period = Duration::from_secs_f64(interval.max(1e-3));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            // Fixed-rate schedule: a slow tick does not push every later one back.
            let mut next = Instant::now();
            loop {
                tick(origin.elapsed().as_secs_f64());
                next += period;
                let now = Instant::now();
                if next <= now {
                    next = now;
                }
                let (lock_, cv) = &*flag;
                let stopped = lock(lock_);
                let (stopped, _) = cv
                    .wait_timeout_while(stopped, next - now, |s| !*s)
                    .unwrap_or_else(|e| e.into_inner());
                if *stopped {
                    return;
                }
            }
        });
        lock(&self.tickers).insert(id, Ticker { stop, thread });
        id
    }

    fn stop_every(&self, id: u64) {
        let Some(ticker) = lock(&self.tickers).remove(&id) else {
            return;
        };
        *lock(&ticker.stop.0) = true;
        ticker.stop.1.notify_all();
        let _ = ticker.thread.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wall_clock_wait_ends_at_its_deadline_or_when_poked() {
        let clock = Clock::wall();
        let actor = clock.actor("test");
        assert!(actor.turn() < 1.0, "the first turn is held at once");
        let t = actor.sleep(Wake::At(clock.now() + 0.02));
        assert!(t >= 0.02, "{t}");
        let poker = actor.poker();
        let thread = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            poker.poke();
        });
        let before = Instant::now();
        actor.sleep(Wake::Never);
        assert!(before.elapsed() >= Duration::from_millis(15));
        thread.join().unwrap();
    }

    #[test]
    fn wall_ticks_stop_at_once() {
        let clock = Clock::wall();
        let count = Arc::new(Mutex::new(0));
        let c = Arc::clone(&count);
        let every = clock.every(10.0, Box::new(move |_| *lock(&c) += 1));
        std::thread::sleep(Duration::from_millis(20));
        let before = Instant::now();
        every.stop();
        // A 10 s interval is not waited out.
        assert!(before.elapsed() < Duration::from_secs(1));
        assert_eq!(*lock(&count), 1);
    }
}
