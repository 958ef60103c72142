//! The one way to run argon2: a fixed set of threads, each hashing one password at a time, and
//! a bounded number of hashes admitted (running plus waiting). argon2id takes about 19 MiB per
//! hash, so the threads bound the memory hashing can take whatever arrives; past the admitted
//! number the caller is answered at once (503) rather than queued.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use frontdesk_domain::agent::PasswordMemory;
use tokio::sync::{oneshot, Semaphore};

type Job = Box<dyn FnOnce(&mut PasswordMemory) + Send>;

/// Every hashing slot is taken: try again shortly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many password checks at once")]
pub struct HashingBusy;

pub struct PasswordGate {
    /// Permits for hashes running or waiting; held until the hash is done, even if the request
    /// that asked for it has gone (the thread still computes it).
    admitted: Arc<Semaphore>,
    jobs: Mutex<mpsc::Sender<Job>>,
}

impl PasswordGate {
    /// `threads` hashes at once (at least one), and up to `queue` more waiting for a thread.
    pub fn new(threads: usize, queue: usize) -> Self {
        let threads = threads.max(1);
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for n in 0..threads {
            let receiver = Arc::clone(&receiver);
            let spawned = std::thread::Builder::new()
                .name(format!("password-hash-{n}"))
                .spawn(move || {
                    // This thread's argon2 memory, allocated once and reused by every hash.
                    let mut memory = PasswordMemory::default();
                    loop {
                        let job = match receiver.lock() {
                            Ok(receiver) => receiver.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(&mut memory),
                            // The gate is gone: the server is stopping.
                            Err(_) => return,
                        }
                    }
                });
            if let Err(error) = spawned {
                tracing::error!(%error, "cannot start a password-hashing thread");
            }
        }
        Self {
            admitted: Arc::new(Semaphore::new(threads + queue)),
            jobs: Mutex::new(sender),
        }
    }

    /// Whether every slot is taken now (a cheap early answer under a flood; `run` still
    /// decides).
    pub fn is_full(&self) -> bool {
        self.admitted.available_permits() == 0
    }

    /// Runs `work` (which hashes or verifies a password in the memory it is given) on a
    /// hashing thread, or refuses at once when every slot is taken.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut PasswordMemory) -> T + Send + 'static,
    ) -> Result<T, HashingBusy> {
        let permit = Arc::clone(&self.admitted)
            .try_acquire_owned()
            .map_err(|_| HashingBusy)?;
        let (done, result) = oneshot::channel();
        let job: Job = Box::new(move |memory| {
            let output = work(memory);
            drop(permit);
            let _ = done.send(output);
        });
        self.jobs
            .lock()
            .map_err(|_| HashingBusy)?
            .send(job)
            .map_err(|_| HashingBusy)?;
        result.await.map_err(|_| HashingBusy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn admits_threads_plus_queue_and_refuses_the_rest() {
        let gate = Arc::new(PasswordGate::new(1, 1));
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let wait = Arc::new(Mutex::new(wait));
        let blocked = {
            let wait = Arc::clone(&wait);
            let gate = Arc::clone(&gate);
            tokio::spawn(async move {
                gate.run(move |_| wait.lock().map(|w| w.recv().is_ok()).unwrap_or(false))
                    .await
            })
        };
        let queued = {
            let gate = Arc::clone(&gate);
            tokio::spawn(async move { gate.run(|_| 7).await })
        };
        // Both admitted jobs hold their permits until done: a third is refused at once.
        while gate.admitted.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(gate.run(|_| 0).await, Err(HashingBusy));
        let _ = release.send(());
        assert_eq!(blocked.await.ok(), Some(Ok(true)));
        assert_eq!(queued.await.ok(), Some(Ok(7)));
        assert_eq!(gate.run(|_| 1).await, Ok(1));
    }
}
