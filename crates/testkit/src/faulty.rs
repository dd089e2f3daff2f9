//! A store that misbehaves on cue, for tests of the layers above it: flushes that take
//! long or wait for the test's go, a document whose load waits the same way, and writes
//! that fail as on a full disk. It counts what it was asked and when flushes completed,
//! so that tests wait on those instead of sleeping.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nudge_store::{ChangeHash, DocStore, DocumentId, Error, NewChange, StoredDoc};

/// A [`DocStore`] over another, with faults injected.
pub struct Faulty {
    inner: Arc<dyn DocStore>,
    flush_delay: Duration,
    flush_gate: Option<Mutex<Receiver<()>>>,
    load_gate: Option<(DocumentId, Mutex<Receiver<()>>)>,
    broken: AtomicBool,
    loads: AtomicUsize,
    flushes: AtomicUsize,
    flushed_at: Mutex<Vec<Instant>>,
}

impl Faulty {
    /// `inner`, with no fault yet.
    pub fn over(inner: Arc<dyn DocStore>) -> Self {
        Self {
            inner,
            flush_delay: Duration::ZERO,
            flush_gate: None,
            load_gate: None,
            broken: AtomicBool::new(false),
            loads: AtomicUsize::new(0),
            flushes: AtomicUsize::new(0),
            flushed_at: Mutex::new(Vec::new()),
        }
    }

    /// Every flush takes `delay` longer.
    pub fn slow_flushes(mut self, delay: Duration) -> Self {
        self.flush_delay = delay;
        self
    }

    /// Every flush waits for one `()` on the returned sender (or for it to be dropped).
    pub fn gated_flushes(mut self) -> (Self, Sender<()>) {
        let (go, gate) = channel();
        self.flush_gate = Some(Mutex::new(gate));
        (self, go)
    }

    /// Every load of `doc` waits for one `()` on the returned sender (or for it to be
    /// dropped).
    pub fn gated_load(mut self, doc: DocumentId) -> (Self, Sender<()>) {
        let (go, gate) = channel();
        self.load_gate = Some((doc, Mutex::new(gate)));
        (self, go)
    }

    /// From now on, appends fail as on a full disk.
    pub fn break_writes(&self) {
        self.broken.store(true, Ordering::SeqCst);
    }

    /// From now on, appends succeed again (space came back).
    pub fn mend_writes(&self) {
        self.broken.store(false, Ordering::SeqCst);
    }

    /// Whether writes fail.
    pub fn is_broken(&self) -> bool {
        self.broken.load(Ordering::SeqCst)
    }

    /// Flushes begun so far.
    pub fn flushes(&self) -> usize {
        self.flushes.load(Ordering::SeqCst)
    }

    /// Loads of the gated document begun so far.
    pub fn gated_loads(&self) -> usize {
        self.loads.load(Ordering::SeqCst)
    }

    /// When each completed flush completed.
    pub fn flushed_at(&self) -> Vec<Instant> {
        self.flushed_at
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn refuse_when_broken(&self) -> Result<(), Error> {
        if self.is_broken() {
            return Err(Error::Io {
                path: "faulty-store".into(),
                detail: "No space left on device (simulated)".into(),
            });
        }
        Ok(())
    }
}

fn wait(gate: &Mutex<Receiver<()>>) {
    let _ = gate.lock().unwrap_or_else(|p| p.into_inner()).recv();
}

impl DocStore for Faulty {
    fn append(&self, doc: &DocumentId, changes: &[NewChange]) -> Result<usize, Error> {
        self.refuse_when_broken()?;
        self.inner.append(doc, changes)
    }
    fn load(&self, doc: &DocumentId) -> Result<Option<StoredDoc>, Error> {
        if let Some((gated, gate)) = &self.load_gate
            && gated == doc
        {
            self.loads.fetch_add(1, Ordering::SeqCst);
            wait(gate);
        }
        self.inner.load(doc)
    }
    fn changes_after(
        &self,
        doc: &DocumentId,
        position: u64,
    ) -> Result<Option<Vec<Vec<u8>>>, Error> {
        self.inner.changes_after(doc, position)
    }
    fn position(&self, doc: &DocumentId) -> Result<u64, Error> {
        self.inner.position(doc)
    }
    fn contains(&self, doc: &DocumentId, hash: &ChangeHash) -> Result<bool, Error> {
        self.inner.contains(doc, hash)
    }
    fn changes_since_snapshot(&self, doc: &DocumentId) -> Result<usize, Error> {
        self.inner.changes_since_snapshot(doc)
    }
    fn compact(&self, doc: &DocumentId, snapshot: &[u8], through: u64) -> Result<(), Error> {
        self.inner.compact(doc, snapshot, through)
    }
    fn import(
        &self,
        doc: &DocumentId,
        snapshot: &[u8],
        hashes: &[ChangeHash],
    ) -> Result<(), Error> {
        self.inner.import(doc, snapshot, hashes)
    }
    fn append_snapshot(
        &self,
        doc: &DocumentId,
        snapshot: &[u8],
        new: &[ChangeHash],
    ) -> Result<usize, Error> {
        self.refuse_when_broken()?;
        self.inner.append_snapshot(doc, snapshot, new)
    }
    fn remove(&self, doc: &DocumentId) -> Result<(), Error> {
        self.inner.remove(doc)
    }
    fn documents(&self) -> Result<Vec<DocumentId>, Error> {
        self.inner.documents()
    }
    fn flush(&self) -> Result<(), Error> {
        self.flushes.fetch_add(1, Ordering::SeqCst);
        if let Some(gate) = &self.flush_gate {
            wait(gate);
        }
        std::thread::sleep(self.flush_delay);
        self.inner.flush()?;
        self.flushed_at
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Instant::now());
        Ok(())
    }
}
