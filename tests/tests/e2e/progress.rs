//! What `nudge sync` shows while a big journal arrives over a slow link: in a pseudo-
//! terminal (util-linux `script`), the bytes received from the first one, cleared at the
//! end; piped, nothing. The slow link is a proxy in the test that paces what the server
//! sends.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::util::{Home, Server, add_account, nudge_bin, scale};

/// A proxy to `server` that hands the client at most `per_second` bytes a second.
async fn slow_link(server: String, per_second: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let server = server.clone();
            tokio::spawn(async move {
                let Ok(upstream) = TcpStream::connect(&server).await else {
                    return;
                };
                let (mut client_read, mut client_write) = client.into_split();
                let (mut up_read, mut up_write) = upstream.into_split();
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut client_read, &mut up_write).await;
                    let _ = up_write.shutdown().await;
                });
                // The link's pace: one chunk each twentieth of a second.
                let chunk = (per_second / 20).max(1);
                let mut buf = vec![0u8; chunk];
                let mut pace = tokio::time::interval(Duration::from_millis(50));
                loop {
                    pace.tick().await;
                    let n = match up_read.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if client_write.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                let _ = client_write.shutdown().await;
            });
        }
    });
    addr
}

fn journal_of(shifts: usize) -> String {
    let list: Vec<String> = (0..shifts)
        .map(|i| {
            format!(
                r#"{{"id":"{i:032x}","text":"Shift number {i} with a few words of text","status":"planned","created_at":"2026-11-20T10:15:00Z"}}"#
            )
        })
        .collect();
    format!(r#"{{"schema_version":1,"shifts":[{}]}}"#, list.join(","))
}

#[test]
fn a_slow_first_sync_shows_what_arrived_on_a_terminal_and_nothing_when_piped() {
    let data = tempfile::tempdir().unwrap();
    let token = add_account(data.path(), "ana");
    let server = Server::start(data.path());
    let laptop = Home::new();
    laptop.remote_add(&format!("http://{}", server.addr), &token);
    let file = laptop.path().join("big.json");
    std::fs::write(&file, journal_of(scale(3_000, 20_000))).unwrap();
    laptop.ok(&["import", file.to_str().unwrap()]);
    laptop.ok(&["sync"]);

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let link = runtime.block_on(slow_link(server.addr.clone(), 32 << 10));
    // In a pseudo-terminal.
    let phone = Home::new();
    phone.remote_add(&format!("http://{link}"), &token);
    let command = format!("{} sync", nudge_bin().display());
    let out = std::process::Command::new("script")
        .args(["-qefc", &command, "/dev/null"])
        .env("NUDGE_HOME", phone.path())
        .env("NUDGE_CONFIG", phone.config_path())
        .env("NUDGE_NOW", &phone.now)
        .env("TZ", &phone.tz)
        .env("TERM", "xterm")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{shown}");
    let last = shown
        .rfind("received")
        .unwrap_or_else(|| panic!("no progress shown:\n{shown:?}"));
    // It moved while the journal arrived (one message, shown as its bytes came in).
    let mut figures: Vec<&str> = shown
        .split("syncing: ")
        .skip(1)
        .filter_map(|s| s.split(" received").next())
        .collect();
    figures.dedup();
    eprintln!("progress shown: {figures:?}");
    assert!(figures.len() >= 2, "the progress never moved: {figures:?}");
    let after = &shown[last..];
    assert!(
        after.contains("\u{1b}["),
        "the bar is not cleared: {after:?}"
    );
    assert!(after.contains("Synced with"), "{after:?}");
    // Piped: nothing but the result.
    let tablet = Home::new();
    tablet.remote_add(&format!("http://{link}"), &token);
    let piped = tablet.run(&["sync"]);
    assert!(piped.status.success());
    let stderr = String::from_utf8_lossy(&piped.stderr);
    assert!(!stderr.contains("received"), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "{stderr:?}");
}
