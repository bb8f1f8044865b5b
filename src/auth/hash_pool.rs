//! Threads that do nothing but bcrypt, one per core, at the lowest CPU priority.
//!
//! A login is one 250 ms hash; everything else Latchkey serves takes well under
//! a millisecond. Capping hashing at `cores - 1` kept other requests fast but
//! left a core idle whenever logins were all there was to do. Instead every
//! core may hash, and the hashing threads run at nice 19 (`BCRYPT_THREAD_NICE`):
//! the kernel gives a runnable request worker the CPU first and hashing takes
//! whatever is left. Other busy processes on the machine win over it too,
//! which is why the niceness is a setting.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
        mpsc,
    },
    thread,
};

type Job = Box<dyn FnOnce() + Send>;

pub struct HashPool {
    jobs: Mutex<mpsc::Sender<Job>>,
    threads: usize,
    /// Jobs handed to the pool and not yet finished.
    in_flight: Arc<AtomicUsize>,
}

/// The default niceness of hashing threads: the lowest priority Linux has.
pub const HASH_THREAD_NICE: i32 = 19;

impl HashPool {
    /// `nice`: 0 (as the request workers) to 19 (the lowest priority).
    pub fn new(threads: usize, nice: i32) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads {
            let rx = Arc::clone(&rx);
            thread::Builder::new().name(format!("bcrypt-{i}")).spawn(move || {
                lower_own_priority(nice);
                loop {
                    // The lock is held only while waiting for the next job.
                    let next = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    match next {
                        Ok(job) => job(),
                        Err(_) => return, // the pool was dropped
                    }
                }
            })?;
        }
        Ok(Self { jobs: Mutex::new(tx), threads, in_flight: Arc::new(AtomicUsize::new(0)) })
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Jobs submitted and not yet finished (running or queued).
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Runs `work` on a hashing thread and waits for it without blocking the runtime.
    pub async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        let (done, result) = tokio::sync::oneshot::channel();
        let span = tracing::Span::current();
        let in_flight = Arc::clone(&self.in_flight);
        in_flight.fetch_add(1, Ordering::Relaxed);
        let job: Job = Box::new(move || {
            let out = span.in_scope(work);
            in_flight.fetch_sub(1, Ordering::Relaxed);
            let _ = done.send(out); // the request may have gone; nothing to tell
        });
        if self.jobs.lock().unwrap_or_else(|e| e.into_inner()).send(job).is_err() {
            self.in_flight.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        result.await.ok()
    }
}

#[cfg(target_os = "linux")]
fn lower_own_priority(nice: i32) {
    // On Linux, PRIO_PROCESS with a thread id sets that one thread's nice value.
    // Raising one's own niceness needs no privilege; if it fails anyway, hashing
    // still works, only at normal priority.
    // SAFETY: plain syscalls on the calling thread's own id.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, nice) };
    if rc != 0 {
        tracing::warn!(error = %std::io::Error::last_os_error(), "could not lower the priority of a bcrypt thread");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_own_priority(_nice: i32) {}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn own_nice() -> i32 {
        // SAFETY: plain syscalls on the calling thread's own id.
        unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) }
    }

    #[tokio::test]
    async fn jobs_run_at_the_lowest_priority_and_callers_do_not() {
        let pool = HashPool::new(2, HASH_THREAD_NICE).unwrap();
        assert_eq!(pool.run(own_nice).await, Some(HASH_THREAD_NICE));
        assert_ne!(own_nice(), HASH_THREAD_NICE, "only the pool's threads are lowered");
        let moderate = HashPool::new(1, 10).unwrap();
        assert_eq!(moderate.run(own_nice).await, Some(10));
    }

    #[tokio::test]
    async fn every_thread_works_at_once() {
        let pool = Arc::new(HashPool::new(2, HASH_THREAD_NICE).unwrap());
        let barrier = Arc::new(std::sync::Barrier::new(2));
        // Two jobs that each wait for the other: they finish only if both run concurrently.
        let jobs: Vec<_> = (0..2)
            .map(|_| {
                let (pool, barrier) = (Arc::clone(&pool), Arc::clone(&barrier));
                tokio::spawn(async move { pool.run(move || barrier.wait().is_leader()).await })
            })
            .collect();
        let mut leaders = 0;
        for job in jobs {
            let done = tokio::time::timeout(std::time::Duration::from_secs(5), job).await.expect("deadlock");
            leaders += usize::from(done.unwrap().unwrap());
        }
        assert_eq!(leaders, 1);
        assert_eq!(pool.in_flight(), 0);
    }
}
