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
    /// A change chunk whose checksum does not match its contents (Automerge would drop it
    /// without a word), or that is not an Automerge chunk at all.
    #[error("a change that does not check out: {0}")]
    Change(&'static str),
    /// More heads, needs or haves than any honest peer sends. Each costs a few bytes on
    /// the wire and tens once Automerge decodes it, so they are counted before decoding.
    #[error("{what}: {count} entries, over the limit of {max}")]
    TooMany {
        /// Which list.
        what: &'static str,
        /// How many the message claims.
        count: u64,
        /// The limit.
        max: u64,
    },
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

/// Most `have` entries a sync message may carry. Automerge sends one; tens is generous.
pub const MAX_HAVES: u64 = 64;
/// Most hashes in one list of heads, needs or a have's last-sync heads. A journal's heads
/// are one per device that wrote concurrently; its needs, the dependencies a peer found
/// missing. Hashes decode to their own size, so this bounds work, not amplification.
pub const MAX_HASHES: u64 = 4096;

fn at_most(what: &'static str, count: u64, max: u64) -> Result<(), ShapeError> {
    if count > max {
        return Err(ShapeError::TooMany { what, count, max });
    }
    Ok(())
}

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
        at_most(what, count, MAX_HASHES)?;
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

/// The four bytes every Automerge chunk starts with.
const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];

/// How far the compressed changes of one message may inflate: a few kilobytes of deflate
/// can claim gigabytes.
pub const MAX_INFLATED_BYTES: u64 = 64 << 20;

/// Automerge's checksum of a chunk: the first four bytes of the SHA-256 of its type, its
/// length (LEB128) and its data.
fn checksum(kind: u8, data: &[u8]) -> [u8; 4] {
    use sha2::Digest;
    let mut header = vec![kind];
    let mut n = data.len() as u64;
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            header.push(byte);
            break;
        }
        header.push(byte | 0x80);
    }
    let mut hasher = sha2::Sha256::new();
    hasher.update(&header);
    hasher.update(data);
    let hash = hasher.finalize();
    [hash[0], hash[1], hash[2], hash[3]]
}

/// How many changes these sync-message entries carry at most, read from their chunk
/// headers alone; `None` when a chunk holds a whole document or a bundle (any number) or
/// the bytes are not well-formed chunks.
pub fn changes_at_most<'a>(entries: impl IntoIterator<Item = &'a [u8]>) -> Option<usize> {
    let mut count = 0;
    for entry in entries {
        let mut c = Cursor { rest: entry };
        while !c.rest.is_empty() {
            c.take(8, "chunk magic and checksum").ok()?;
            let kind = c.take(1, "chunk type").ok()?[0];
            let len = c.uleb("chunk length").ok()?;
            c.take(len, "chunk data").ok()?;
            match kind {
                1 | 2 => count += 1,
                _ => return None,
            }
        }
    }
    Some(count)
}

/// Checks every chunk in one entry of a message's changes: Automerge chunks whose checksum
/// matches. A compressed change is inflated (up to `budget`, which it uses up) to check
/// the checksum of what it stands for.
fn check_chunks(entry: &[u8], budget: &mut u64) -> Result<(), ShapeError> {
    let mut c = Cursor { rest: entry };
    while !c.rest.is_empty() {
        if c.take(4, "chunk magic")? != MAGIC {
            return Err(ShapeError::Change("not an Automerge chunk"));
        }
        let claimed: [u8; 4] = c
            .take(4, "chunk checksum")?
            .try_into()
            .map_err(|_| ShapeError::Malformed("chunk checksum"))?;
        let kind = c.take(1, "chunk type")?[0];
        let len = c.uleb("chunk length")?;
        let data = c.take(len, "chunk data")?;
        let actual = match kind {
            // Document, change, bundle: the checksum covers the bytes as they are.
            0 | 1 | 3 => checksum(kind, data),
            // A compressed change: its checksum is the uncompressed change's.
            2 => {
                use std::io::Read;
                let mut inflated = Vec::new();
                let read = flate2::read::DeflateDecoder::new(data)
                    .take(*budget + 1)
                    .read_to_end(&mut inflated)
                    .map_err(|_| ShapeError::Change("compressed data that does not inflate"))?;
                if read as u64 > *budget {
                    return Err(ShapeError::Change(
                        "compressed changes that inflate beyond 64 MiB in one message",
                    ));
                }
                *budget -= read as u64;
                checksum(1, &inflated)
            }
            _ => return Err(ShapeError::Change("unknown chunk type")),
        };
        if actual != claimed {
            return Err(ShapeError::Change("bad checksum"));
        }
    }
    Ok(())
}

/// Checks that `data` is shaped like an Automerge sync message with sane bloom filters and
/// changes whose checksums match.
pub fn check(data: &[u8]) -> Result<(), ShapeError> {
    let (&version, rest) = data.split_first().ok_or(ShapeError::Malformed("empty"))?;
    if version != 0x42 && version != 0x43 {
        return Err(ShapeError::Version(version));
    }
    let mut c = Cursor { rest };
    c.hashes("heads")?;
    c.hashes("need")?;
    let haves = c.uleb("have count")?;
    at_most("have", haves, MAX_HAVES)?;
    for _ in 0..haves {
        c.hashes("last sync")?;
        let len = c.uleb("bloom length")?;
        check_bloom(c.take(len, "bloom")?)?;
    }
    let changes = c.uleb("change count")?;
    let mut budget = MAX_INFLATED_BYTES;
    for _ in 0..changes {
        let len = c.uleb("change length")?;
        check_chunks(c.take(len, "change")?, &mut budget)?;
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

    #[test]
    fn change_chunks_are_counted_and_whole_documents_are_not() {
        use automerge::transaction::Transactable;
        let mut doc = automerge::Automerge::new();
        for i in 0..3 {
            let mut tx = doc.transaction();
            tx.put(automerge::ROOT, "k", i).unwrap();
            tx.commit();
        }
        let changes: Vec<Vec<u8>> = doc
            .get_changes(&[])
            .iter()
            .map(|c| c.raw_bytes().to_vec())
            .collect();
        assert_eq!(changes_at_most(changes.iter().map(Vec::as_slice)), Some(3));
        // Two changes in one entry count as two.
        let joined = [changes[0].clone(), changes[1].clone()].concat();
        assert_eq!(changes_at_most([joined.as_slice()]), Some(2));
        let whole = doc.save();
        assert_eq!(changes_at_most([whole.as_slice()]), None);
        assert_eq!(changes_at_most([&b"garbage"[..]]), None);
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

    /// A v1 message with `haves` empty have entries and `heads` zero hashes as heads.
    fn with_counts(heads: usize, haves: usize) -> Vec<u8> {
        let mut msg = vec![0x42];
        leb(&mut msg, heads as u64);
        msg.extend(std::iter::repeat_n(0u8, heads * 32));
        msg.push(0);
        leb(&mut msg, haves as u64);
        for _ in 0..haves {
            msg.extend([0, 0]);
        }
        msg.push(0);
        msg
    }

    fn leb(out: &mut Vec<u8>, mut n: u64) {
        while n >= 0x80 {
            out.push((n as u8 & 0x7f) | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
    }

    #[test]
    fn lists_longer_than_an_honest_peer_sends_are_refused_before_decoding() {
        check(&with_counts(2, 1)).unwrap();
        check(&with_counts(MAX_HASHES as usize, MAX_HAVES as usize)).unwrap();
        assert_eq!(
            check(&with_counts(1, 1_000_000)),
            Err(ShapeError::TooMany {
                what: "have",
                count: 1_000_000,
                max: MAX_HAVES
            })
        );
        assert!(matches!(
            check(&with_counts(MAX_HASHES as usize + 1, 1)),
            Err(ShapeError::TooMany { what: "heads", .. })
        ));
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

    /// A sync message whose changes section holds `entries`.
    fn carrying(entries: Vec<Vec<u8>>) -> Vec<u8> {
        automerge::sync::Message {
            heads: Vec::new(),
            need: Vec::new(),
            have: Vec::new(),
            changes: entries.into(),
            flags: None,
            version: automerge::sync::MessageVersion::V1,
        }
        .encode()
    }

    fn big_change() -> automerge::Change {
        let mut doc = automerge::Automerge::new();
        let mut tx = doc.transaction();
        tx.put(ROOT, "text", "compressible ".repeat(2_000)).unwrap();
        tx.commit();
        doc.get_changes(&[]).remove(0)
    }

    #[test]
    fn changes_with_bad_checksums_are_rejected_plain_or_compressed() {
        let mut change = big_change();
        let raw = change.raw_bytes().to_vec();
        let compressed = change.bytes().to_vec();
        assert_eq!(compressed[8], 2, "automerge compresses a change this big");
        assert!(compressed.len() < raw.len());
        check(&carrying(vec![raw.clone()])).unwrap();
        check(&carrying(vec![compressed.clone()])).unwrap();
        // Two chunks in one entry are fine too (Automerge loads them both).
        check(&carrying(vec![[raw.clone(), compressed.clone()].concat()])).unwrap();
        for good in [raw, compressed] {
            let mut bad = good.clone();
            bad[5] ^= 0xff;
            assert_eq!(
                check(&carrying(vec![bad])),
                Err(ShapeError::Change("bad checksum"))
            );
            // A flipped byte in the data, checksum untouched.
            let mut bad = good.clone();
            let last = bad.len() - 1;
            bad[last] ^= 0x01;
            assert!(check(&carrying(vec![bad])).is_err());
        }
        let mut not_a_chunk = vec![0u8; 40];
        not_a_chunk[0] = 1;
        assert_eq!(
            check(&carrying(vec![not_a_chunk])),
            Err(ShapeError::Change("not an Automerge chunk"))
        );
    }

    #[test]
    fn a_deflate_bomb_is_refused_without_inflating_it() {
        use std::io::Write;
        let mut encoder =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..80 {
            encoder.write_all(&zeros).unwrap();
        }
        let data = encoder.finish().unwrap();
        assert!(data.len() < 200 << 10, "80 MiB of zeros deflate small");
        let mut chunk = MAGIC.to_vec();
        chunk.extend([0, 0, 0, 0, 2]);
        let mut n = data.len();
        while n >= 0x80 {
            chunk.push((n as u8 & 0x7f) | 0x80);
            n >>= 7;
        }
        chunk.push(n as u8);
        chunk.extend(data);
        assert!(matches!(
            check(&carrying(vec![chunk])),
            Err(ShapeError::Change(why)) if why.contains("inflate beyond")
        ));
    }
}
