//! A structural check of an Automerge sync message, before Automerge parses it.
//!
//! automerge 0.12 trusts the bloom filter parameters in a sync message's `have` entries:
//! zero bits per entry makes it divide by zero (a panic) and a huge probe count makes it
//! allocate gigabytes. This walks the message layout (version byte; heads, need, have,
//! changes; optional flags) without allocating and rejects what no honest peer sends.

/// Why a sync message was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ShapeError {
    /// The message ends early or has a malformed length.
    #[error("truncated or malformed sync message ({0})")]
    Malformed(&'static str),
    /// Not a sync message version we know.
    #[error("unknown sync message version byte {0:#04x}")]
    Version(u8),
    /// Bloom filter parameters no honest peer sends.
    #[error(
        "bloom filter with {entries} entries, {bits_per_entry} bits per entry, {probes} probes is not acceptable"
    )]
    Bloom {
        /// Entries claimed.
        entries: u64,
        /// Bits per entry claimed.
        bits_per_entry: u64,
        /// Probes claimed.
        probes: u64,
    },
}

/// Upper bounds on bloom filter parameters. Automerge itself writes 10 bits per entry and
/// 7 probes.
pub const MAX_BITS_PER_ENTRY: u64 = 64;
/// See [`MAX_BITS_PER_ENTRY`].
pub const MAX_PROBES: u64 = 64;

struct Cursor<'a> {
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn uleb(&mut self, what: &'static str) -> Result<u64, ShapeError> {
        let mut value: u64 = 0;
        for (i, byte) in self.rest.iter().enumerate().take(10) {
            let part = u64::from(byte & 0x7f);
            if i == 9 && part > 1 {
                return Err(ShapeError::Malformed(what));
            }
            value |= part << (7 * i);
            if byte & 0x80 == 0 {
                self.rest = &self.rest[i + 1..];
                return Ok(value);
            }
        }
        Err(ShapeError::Malformed(what))
    }

    fn take(&mut self, n: u64, what: &'static str) -> Result<&'a [u8], ShapeError> {
        let n = usize::try_from(n).map_err(|_| ShapeError::Malformed(what))?;
        if n > self.rest.len() {
            return Err(ShapeError::Malformed(what));
        }
        let (taken, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(taken)
    }

    fn hashes(&mut self, what: &'static str) -> Result<(), ShapeError> {
        let count = self.uleb(what)?;
        self.take(
            count.checked_mul(32).ok_or(ShapeError::Malformed(what))?,
            what,
        )?;
        Ok(())
    }
}

fn check_bloom(bytes: &[u8]) -> Result<(), ShapeError> {
    if bytes.is_empty() {
        return Ok(());
    }
    let mut c = Cursor { rest: bytes };
    let entries = c.uleb("bloom entries")?;
    let bits_per_entry = c.uleb("bloom bits per entry")?;
    let probes = c.uleb("bloom probes")?;
    let bloom = || ShapeError::Bloom {
        entries,
        bits_per_entry,
        probes,
    };
    if entries == 0
        || entries > u64::from(u32::MAX)
        || !(1..=MAX_BITS_PER_ENTRY).contains(&bits_per_entry)
        || !(1..=MAX_PROBES).contains(&probes)
    {
        return Err(bloom());
    }
    let bits = (entries * bits_per_entry).div_ceil(8);
    if bits > c.rest.len() as u64 {
        return Err(ShapeError::Malformed("bloom bits"));
    }
    Ok(())
}

/// Checks that `data` is shaped like an Automerge sync message with sane bloom filters.
pub fn check(data: &[u8]) -> Result<(), ShapeError> {
    let (&version, rest) = data.split_first().ok_or(ShapeError::Malformed("empty"))?;
    if version != 0x42 && version != 0x43 {
        return Err(ShapeError::Version(version));
    }
    let mut c = Cursor { rest };
    c.hashes("heads")?;
    c.hashes("need")?;
    let haves = c.uleb("have count")?;
    for _ in 0..haves {
        c.hashes("last sync")?;
        let len = c.uleb("bloom length")?;
        check_bloom(c.take(len, "bloom")?)?;
    }
    let changes = c.uleb("change count")?;
    for _ in 0..changes {
        let len = c.uleb("change length")?;
        c.take(len, "change")?;
    }
    if !c.rest.is_empty() {
        let len = c.uleb("flags length")?;
        c.take(len, "flags")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::sync::SyncDoc;
    use automerge::transaction::Transactable;
    use automerge::{AutoCommit, ROOT};

    fn real_messages() -> Vec<Vec<u8>> {
        let mut a = AutoCommit::new();
        a.put(ROOT, "x", 1).unwrap();
        a.commit();
        let mut b = AutoCommit::new();
        let mut sa = automerge::sync::State::new();
        let mut sb = automerge::sync::State::new();
        let mut out = Vec::new();
        for _ in 0..4 {
            if let Some(m) = a.sync().generate_sync_message(&mut sa) {
                let bytes = m.encode();
                b.sync()
                    .receive_sync_message(
                        &mut sb,
                        automerge::sync::Message::decode(&bytes).unwrap(),
                    )
                    .unwrap();
                out.push(bytes);
            }
            if let Some(m) = b.sync().generate_sync_message(&mut sb) {
                let bytes = m.encode();
                a.sync()
                    .receive_sync_message(
                        &mut sa,
                        automerge::sync::Message::decode(&bytes).unwrap(),
                    )
                    .unwrap();
                out.push(bytes);
            }
        }
        out
    }

    #[test]
    fn real_sync_messages_pass() {
        let messages = real_messages();
        assert!(messages.len() >= 2);
        for m in messages {
            check(&m).unwrap();
        }
    }

    fn with_bloom(entries: u64, bits: u64, probes: u64, body: &[u8]) -> Vec<u8> {
        let mut bloom = Vec::new();
        for v in [entries, bits, probes] {
            bloom.push(v as u8);
        }
        bloom.extend_from_slice(body);
        let mut msg = vec![0x42, 0, 0, 1, 0, bloom.len() as u8];
        msg.extend(bloom);
        msg.push(0);
        msg
    }

    #[test]
    fn crafted_bloom_filters_are_rejected() {
        assert!(check(&with_bloom(1, 10, 7, &[0, 0])).is_ok());
        for (e, b, p) in [(1, 0, 7), (1, 10, 0), (1, 10, 100), (1, 100, 7), (0, 10, 7)] {
            let err = check(&with_bloom(e, b, p, &[0; 16])).unwrap_err();
            assert!(
                matches!(err, ShapeError::Bloom { .. }),
                "{e} {b} {p}: {err}"
            );
        }
        // Claims more bits than it carries.
        assert!(check(&with_bloom(100, 10, 7, &[0; 4])).is_err());
    }

    #[test]
    fn truncations_and_garbage_are_rejected() {
        for m in real_messages() {
            for cut in 0..m.len() {
                // A cut message is rejected or, where the cut lands between fields, accepted;
                // what matters is that checking never panics.
                let _ = check(&m[..cut]);
            }
        }
        assert_eq!(check(&[]), Err(ShapeError::Malformed("empty")));
        assert_eq!(check(&[0x99]), Err(ShapeError::Version(0x99)));
        assert!(
            check(&[
                0x42, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f
            ])
            .is_err()
        );
        assert!(check(&[0x42, 0x80]).is_err());
    }
}
