//! A damaged store never loses data silently: copies of a stopped server's store and of a
//! device's store are damaged in several ways (scattered writes, a zeroed block, a torn
//! tail, a cut file, a damaged snapshot or large value), and every start either serves
//! every change the store had confirmed or refuses with one line and leaves every byte of
//! the folder as it was.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::util::{Home, Server, add_account, files, noise, scale, texts, write_files};

/// Ways a disk damages a file, each placed by `seed`.
#[derive(Clone, Copy, Debug)]
enum Damage {
    /// 64 writes of 16 random bytes at random places of `db`.
    Scattered,
    /// A 4 KiB block of `db` zeroed.
    ZeroedBlock,
    /// Random bytes over the last 4 KiB of `db`, where the newest records are.
    TornTail,
    /// `db` cut short.
    Cut,
    /// Random bytes in the middle of sled's snapshot file, or of a large value's file.
    OtherFile,
}

const DAMAGES: [Damage; 5] = [
    Damage::Scattered,
    Damage::ZeroedBlock,
    Damage::TornTail,
    Damage::Cut,
    Damage::OtherFile,
];

fn damage(store: &Path, how: Damage, seed: u64) {
    let mut x = seed.wrapping_mul(0x2545_f491_4f6c_dd1d) | 1;
    let mut next = move |below: usize| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % below.max(1) as u64) as usize
    };
    let db = store.join("db");
    let mut bytes = std::fs::read(&db).unwrap();
    let len = bytes.len();
    match how {
        Damage::Scattered => {
            for i in 0..64 {
                let at = next(len.saturating_sub(16));
                let end = (at + 16).min(len);
                bytes[at..end].copy_from_slice(&noise(seed * 100 + i, end - at));
            }
        }
        Damage::ZeroedBlock => {
            let at = next(len.saturating_sub(4096));
            let end = (at + 4096).min(len);
            bytes[at..end].fill(0);
        }
        Damage::TornTail => {
            let at = len.saturating_sub(4096) + next(4096.min(len));
            let end = (at + 64).min(len);
            bytes[at..end].copy_from_slice(&noise(seed, end - at));
        }
        Damage::Cut => bytes.truncate(next(len)),
        Damage::OtherFile => {
            let mut others: Vec<PathBuf> = files(store)
                .into_keys()
                .filter(|p| {
                    let name = p.to_string_lossy();
                    name.starts_with("snap.") || name.starts_with("blobs/")
                })
                .collect();
            others.sort();
            let Some(other) = others.get(next(others.len())) else {
                return;
            };
            let path = store.join(other);
            let mut other = std::fs::read(&path).unwrap();
            let at = other.len() / 2;
            let end = (at + 16).min(other.len());
            other[at..end].copy_from_slice(&noise(seed, end - at));
            std::fs::write(path, other).unwrap();
            return;
        }
    }
    std::fs::write(db, bytes).unwrap();
}

/// A refusal is an error line that says nothing was changed, and it changed nothing.
fn check_refusal(said: &str, before: &BTreeMap<PathBuf, Vec<u8>>, dir: &Path, case: &str) {
    let last = said.trim().lines().last().unwrap_or_default();
    assert!(
        last.contains("nothing was changed"),
        "{case}: the refusal does not say what to do: {said}"
    );
    let after = files(dir);
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>(),
        "{case}: the refusal changed which files there are"
    );
    for (path, bytes) in before {
        assert!(
            after[path] == *bytes,
            "{case}: the refusal changed {}",
            path.display()
        );
    }
}

#[test]
fn a_damaged_server_store_serves_every_confirmed_change_or_refuses_untouched() {
    let data = tempfile::tempdir().unwrap();
    let token = add_account(data.path(), "ana");
    let mut server = Server::start(data.path());
    let url = format!("http://{}", server.addr);
    let laptop = Home::new();
    laptop.remote_add(&url, &token);
    // Several syncs, so that the store holds several flushes' worth of log.
    for round in 0..6 {
        for i in 0..5 {
            laptop.new_id(&["add", &format!("Shift {round}.{i} with some words in it")]);
        }
        laptop.ok(&["sync"]);
    }
    let expected = texts(&laptop.json(&["export", "--json"]));
    server.kill9();
    let pristine = files(data.path());

    let seeds = scale(2, 10) as u64;
    let (mut served, mut refused) = (0, 0);
    for how in DAMAGES {
        for seed in 1..=seeds {
            let case = format!("{how:?} #{seed}");
            let dir = tempfile::tempdir().unwrap();
            write_files(dir.path(), &pristine);
            damage(dir.path(), how, seed);
            let before = files(dir.path());
            match Server::try_start(dir.path()) {
                Err(said) => {
                    check_refusal(&said, &before, dir.path(), &case);
                    refused += 1;
                }
                Ok(server) => {
                    let phone = Home::new();
                    phone.remote_add(&format!("http://{}", server.addr), &token);
                    let synced = phone.run(&["sync"]);
                    assert!(
                        synced.status.success(),
                        "{case}: the server started but could not serve: {}",
                        String::from_utf8_lossy(&synced.stderr)
                    );
                    assert_eq!(
                        texts(&phone.json(&["export", "--json"])),
                        expected,
                        "{case}: the server started and served less than it had confirmed"
                    );
                    served += 1;
                }
            }
        }
    }
    println!("damaged server stores: {served} served everything, {refused} refused untouched");
}

#[test]
fn a_damaged_device_store_shows_every_change_or_refuses_untouched() {
    let home = Home::new();
    for i in 0..40 {
        home.new_id(&["add", &format!("Shift {i} with some words in it")]);
    }
    let expected = texts(&home.json(&["export", "--json"]));
    let pristine = files(home.path());

    let seeds = scale(2, 10) as u64;
    let (mut shown, mut refused) = (0, 0);
    for how in DAMAGES {
        for seed in 1..=seeds {
            let case = format!("{how:?} #{seed}");
            let copy = Home::new();
            write_files(copy.path(), &pristine);
            damage(&copy.path().join("store"), how, seed);
            let before = files(copy.path());
            let out = copy.run(&["export", "--json"]);
            if out.status.success() {
                let export: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                assert_eq!(texts(&export), expected, "{case}: less than was confirmed");
                shown += 1;
            } else {
                assert_eq!(out.status.code(), Some(1), "{case}: {out:?}");
                check_refusal(
                    &String::from_utf8_lossy(&out.stderr),
                    &before,
                    copy.path(),
                    &case,
                );
                refused += 1;
            }
        }
    }
    println!("damaged device stores: {shown} shown whole, {refused} refused untouched");
}
