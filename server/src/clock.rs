//! The server's wall clock, injected (`Config::clock`): link and share expiry, and the
//! times links, shares and devices record, all read it. Tests of the real binary move it
//! forward instead of sleeping, through a file named by the hidden `--test-clock` flag.

use std::path::PathBuf;
use std::sync::Arc;

/// Milliseconds since the epoch, as the server counts them.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Now.
    fn now_ms(&self) -> i64;
}

/// The system's clock.
#[derive(Debug)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    }
}

/// The system's clock moved forward by the milliseconds written in a file, read at every
/// call (a missing or unreadable file moves it by nothing): how a test ages a link held by
/// a server process it started.
#[derive(Debug)]
pub struct OffsetFileClock {
    file: PathBuf,
}

impl OffsetFileClock {
    /// The clock moved by what `file` says.
    pub fn new(file: PathBuf) -> Self {
        Self { file }
    }
}

impl Clock for OffsetFileClock {
    fn now_ms(&self) -> i64 {
        let offset = std::fs::read_to_string(&self.file)
            .ok()
            .and_then(|text| text.trim().parse::<i64>().ok())
            .unwrap_or(0);
        SystemClock.now_ms().saturating_add(offset)
    }
}

/// The system's clock, shared.
pub fn system() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offset_file_moves_the_clock_and_a_bad_one_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("clock");
        let clock = OffsetFileClock::new(file.clone());
        let before = SystemClock.now_ms();
        assert!(clock.now_ms() - before < 60_000, "no file: no offset");
        std::fs::write(&file, "3600000\n").unwrap();
        assert!(clock.now_ms() - before >= 3_600_000);
        std::fs::write(&file, "soon").unwrap();
        assert!(clock.now_ms() - before < 60_000, "unreadable: no offset");
    }
}
