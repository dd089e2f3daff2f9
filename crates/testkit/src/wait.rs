//! Waiting on an observable condition with a deadline, never for a fixed time: the one
//! place tests poll. Each returns how long the wait took, for tests to print.

use std::future::Future;
use std::time::{Duration, Instant};

/// How often a condition is looked at.
const POLL: Duration = Duration::from_millis(20);

/// Waits until `done` holds, at most `limit`; panics with `what` otherwise.
pub fn until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    loop {
        if done() {
            return started.elapsed();
        }
        assert!(started.elapsed() < limit, "waited {limit:?} for {what}");
        std::thread::sleep(POLL);
    }
}

/// [`until`] for a condition that is itself asynchronous.
pub async fn until_async<F: Future<Output = bool>>(
    limit: Duration,
    what: &str,
    mut done: impl FnMut() -> F,
) -> Duration {
    let started = Instant::now();
    retry(limit, what, || {
        let check = done();
        async move { if check.await { Ok(()) } else { Err("not yet") } }
    })
    .await;
    started.elapsed()
}

/// Tries `attempt` until it succeeds, at most `limit`; panics with `what` and the last
/// error otherwise.
pub async fn retry<T, E: std::fmt::Display, F: Future<Output = Result<T, E>>>(
    limit: Duration,
    what: &str,
    mut attempt: impl FnMut() -> F,
) -> T {
    let started = Instant::now();
    loop {
        match attempt().await {
            Ok(done) => return done,
            Err(e) => assert!(
                started.elapsed() < limit,
                "waited {limit:?} for {what}: {e}"
            ),
        }
        tokio::time::sleep(POLL).await;
    }
}
