//! Keeps the sync thread's CPU from halting while it waits for the disk on a save someone
//! awaits.
//!
//! On a virtual machine a vCPU with nothing to run halts, and waking a halted vCPU goes
//! through the hypervisor. An `fdatasync` sleeps on several disk completions (the data, the
//! journal commit, the cache flush). Each one's interrupt arrives on the vCPU the device's
//! interrupt is routed to. When the syncing thread sleeps on another vCPU, each completion
//! wakes it there: seen here, ~20 µs for the inter-processor interrupt to reach a halted
//! vCPU and ~10 µs more to run the thread, three times a sync. That is as much as a third of
//! a durable save. Where the sync thread sleeps is the scheduler's choice: a sleeping thread
//! is woken on the CPU it last ran on when that one is idle.
//!
//! So while such a sync is in flight and someone waits for it, a thread of idle priority
//! (`SCHED_IDLE`) spins on the sync thread's CPU. The CPU never halts, the completion's
//! wake-up reaches a running vCPU, and the sync thread preempts the spinner at once. Any
//! other runnable thread preempts it too: it takes only time that would go idle. It parks
//! when the sync ends (the sync thread then keeps its CPU busy itself, watching for work).
//! Background saves nobody waits for, as a fleet's, never start it. Linux only, and only
//! where the idle priority can be set (else it never spins).

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};

/// `syncing` when no sync is in flight.
const NONE: i32 = -1;

struct Control {
    worker: Option<JoinHandle<()>>,
    parked: bool,
    stopped: bool,
    /// The idle priority could not be set: the spinner left and is not started again.
    unavailable: bool,
}

struct Shared {
    /// The CPU of the sync in flight, else [`NONE`].
    syncing: AtomicI32,
    /// Someone waits for the sync in flight.
    wanted: AtomicBool,
    control: Mutex<Control>,
    unparked: Condvar,
}

impl Shared {
    /// Whether the spinner has work: a sync in flight that someone waits for.
    fn needed(&self) -> bool {
        self.wanted.load(Ordering::SeqCst) && self.syncing.load(Ordering::SeqCst) != NONE
    }
}

/// The spinner of one sync thread, started on first use.
pub struct KeepAwake {
    shared: Arc<Shared>,
}

/// A sync in flight, until dropped.
pub struct Syncing<'a> {
    shared: &'a Shared,
}

impl Drop for Syncing<'_> {
    fn drop(&mut self) {
        self.shared.syncing.store(NONE, Ordering::SeqCst);
    }
}

fn lock(mutex: &Mutex<Control>) -> MutexGuard<'_, Control> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Default for KeepAwake {
    fn default() -> Self {
        Self::new()
    }
}

impl KeepAwake {
    pub fn new() -> Self {
        KeepAwake {
            shared: Arc::new(Shared {
                syncing: AtomicI32::new(NONE),
                wanted: AtomicBool::new(false),
                control: Mutex::new(Control {
                    worker: None,
                    parked: false,
                    stopped: false,
                    unavailable: false,
                }),
                unparked: Condvar::new(),
            }),
        }
    }

    /// From the sync thread, just before it syncs: a sync is in flight on this CPU until the
    /// guard drops. `awaited`: someone waits for it already (else [`KeepAwake::hurry`] may
    /// say so while it runs).
    pub fn syncing(&self, awaited: bool) -> Syncing<'_> {
        self.shared.wanted.store(false, Ordering::SeqCst); // a late `hurry` of the last one
        if let Some(cpu) = current_cpu() {
            self.shared.syncing.store(cpu, Ordering::SeqCst);
            if awaited {
                self.want();
            }
        }
        Syncing {
            shared: &self.shared,
        }
    }

    /// From any thread: someone waits for the sync in flight, if there is one.
    pub fn hurry(&self) {
        if self.shared.syncing.load(Ordering::SeqCst) != NONE {
            self.want();
        }
    }

    /// Stop the spinner and wait for it; it does not start again.
    pub fn stop(&self) {
        let worker = {
            let mut control = lock(&self.shared.control);
            control.stopped = true;
            control.worker.take()
        };
        self.shared.unparked.notify_one();
        if let Some(worker) = worker {
            let _ = worker.join();
        }
    }

    /// Whether the spinner exists and is not parked (for tests).
    pub fn spinning(&self) -> bool {
        let control = lock(&self.shared.control);
        control.worker.is_some() && !control.parked && !control.unavailable
    }

    fn want(&self) {
        if self.shared.wanted.swap(true, Ordering::SeqCst) {
            return;
        }
        let mut control = lock(&self.shared.control);
        if control.stopped || control.unavailable {
            return;
        }
        if control.worker.is_none() {
            let shared = Arc::clone(&self.shared);
            let worker = thread::Builder::new()
                .name("simulacra-session-awake".to_owned())
                .spawn(move || spin(&shared));
            // without a thread the sync goes on as it would anyway
            control.worker = worker.ok();
        } else if control.parked {
            control.parked = false;
            drop(control);
            self.shared.unparked.notify_one();
        }
    }
}

fn spin(shared: &Shared) {
    if !idle_priority() {
        lock(&shared.control).unavailable = true;
        return;
    }
    let mut pinned = NONE;
    loop {
        while shared.needed() {
            let cpu = shared.syncing.load(Ordering::SeqCst);
            if cpu != pinned && cpu != NONE && pin_to(cpu) {
                pinned = cpu;
            }
            // Any other thread ready on this CPU runs first: one that gave the CPU up
            // (`sched_yield`) is not woken, so it would not preempt this one.
            thread::yield_now();
        }
        let mut control = lock(&shared.control);
        // `want` sets `wanted` before it takes this lock: one since the last look is seen here
        control.parked = !shared.needed();
        while control.parked && !control.stopped {
            control = shared
                .unparked
                .wait(control)
                .unwrap_or_else(PoisonError::into_inner);
        }
        if control.stopped {
            return;
        }
    }
}

/// The CPU the calling thread runs on.
#[cfg(target_os = "linux")]
fn current_cpu() -> Option<i32> {
    // SAFETY: no arguments; -1 on failure.
    let cpu = unsafe { libc::sched_getcpu() };
    (cpu >= 0).then_some(cpu)
}

#[cfg(not(target_os = "linux"))]
fn current_cpu() -> Option<i32> {
    None
}

/// Give the calling thread the idle priority; whether it could.
#[cfg(target_os = "linux")]
fn idle_priority() -> bool {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: 0 is the calling thread; `param` is a live struct.
    unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &raw const param) == 0 }
}

#[cfg(not(target_os = "linux"))]
fn idle_priority() -> bool {
    false
}

/// Let the calling thread run on `cpu` only; whether it could (a CPU the process may not use
/// fails).
#[cfg(target_os = "linux")]
fn pin_to(cpu: i32) -> bool {
    let Ok(index) = usize::try_from(cpu) else {
        return false;
    };
    // SAFETY: the set is a plain bit mask, zeroed and then filled by the libc macros.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(index, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &raw const set) == 0
    }
}

#[cfg(not(target_os = "linux"))]
fn pin_to(_: i32) -> bool {
    false
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::KeepAwake;
    use std::sync::atomic::Ordering;
    use std::time::{Duration, Instant};

    /// Waits up to a few seconds for `done`.
    fn eventually(done: impl Fn() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if done() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        done()
    }

    /// The thread of this process that runs at idle priority, if one does, and its CPUs.
    fn idle_thread() -> Option<(i32, Vec<usize>)> {
        for entry in std::fs::read_dir("/proc/self/task").ok()? {
            let tid: i32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
            // SAFETY: reads the policy of a thread of this process; -1 once it is gone.
            if unsafe { libc::sched_getscheduler(tid) } != libc::SCHED_IDLE {
                continue;
            }
            // SAFETY: fills a zeroed set of the size given.
            let cpus = unsafe {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                if libc::sched_getaffinity(
                    tid,
                    std::mem::size_of::<libc::cpu_set_t>(),
                    &raw mut set,
                ) != 0
                {
                    return None;
                }
                (0..libc::CPU_SETSIZE as usize)
                    .filter(|&cpu| libc::CPU_ISSET(cpu, &set))
                    .collect()
            };
            return Some((tid, cpus));
        }
        None
    }

    #[test]
    fn spins_at_idle_priority_on_the_syncing_cpu_only_while_awaited() {
        let awake = KeepAwake::new();
        awake.hurry(); // no sync in flight: nothing starts
        drop(awake.syncing(false)); // a sync nobody waits for: nothing starts
        assert!(!awake.spinning() && idle_thread().is_none());

        let syncing = awake.syncing(true);
        let cpu = usize::try_from(awake.shared.syncing.load(Ordering::SeqCst)).unwrap();
        assert!(eventually(
            || idle_thread().is_some_and(|(_, cpus)| cpus == [cpu])
        ));
        assert!(awake.spinning());
        drop(syncing);
        assert!(
            eventually(|| !awake.spinning()),
            "parks once the sync is done"
        );

        let syncing = awake.syncing(false);
        awake.hurry(); // someone waits after all: the parked spinner runs again
        assert!(eventually(|| awake.spinning()));
        drop(syncing);
        assert!(eventually(|| !awake.spinning()));
        awake.stop();
        assert!(eventually(|| idle_thread().is_none()), "stopped and joined");
        drop(awake.syncing(true)); // after stop, nothing starts
        assert!(idle_thread().is_none());
    }
}
