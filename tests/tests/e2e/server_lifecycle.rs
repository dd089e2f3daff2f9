//! The real `nudge-server`'s lifecycle and limits: SIGTERM closing connections with a
//! reason, the handshake timeout, the connection cap and idle pings, and documents leaving
//! memory when nobody has them open.

use std::process::Command;
use std::time::Duration;

use automerge::transaction::Transactable;
use automerge::{Automerge, ROOT, ReadDoc};
use nudge_store::DocumentId;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::server::{connect, join, recv, runtime, sync};
use crate::util::{Server, add_account, server_bin};

#[test]
fn sigterm_closes_connections_with_a_reason_and_exits_0() {
    let data = tempfile::tempdir().unwrap();
    let token = add_account(data.path(), "alice");
    let mut server = Server::start(data.path());
    runtime().block_on(async {
        let mut ws = connect(&server.addr, Some(&token)).await.unwrap();
        join(&mut ws, "laptop").await;
        // While it runs, a second server on the same folder is refused.
        let busy = Command::new(server_bin())
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data.path())
            .output()
            .unwrap();
        assert_eq!(busy.status.code(), Some(1));
        assert!(
            String::from_utf8_lossy(&busy.stderr).contains("stop it first"),
            "{}",
            String::from_utf8_lossy(&busy.stderr)
        );
        assert!(data.path().join("admin.json").exists());
        let status = Command::new("kill")
            .args(["-TERM", &server.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let mut reason = None;
        for _ in 0..10 {
            match recv(&mut ws, Duration::from_secs(2)).await {
                Some(WsMessage::Close(frame)) => {
                    reason = frame.map(|f| f.reason.to_string());
                    break;
                }
                Some(_) => {}
                None => break,
            }
        }
        assert_eq!(reason.as_deref(), Some("server shutting down"));
    });
    let status = server.child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "a graceful stop exits 0");
    assert!(
        !data.path().join("admin.json").exists(),
        "admin.json goes with the server"
    );
}

#[test]
fn a_silent_or_trickling_client_is_cut_off_at_the_handshake_timeout() {
    use std::io::{Read, Write};
    let data = tempfile::tempdir().unwrap();
    // Only this test shortens the handshake timeout: elsewhere a loaded machine could
    // legitimately take longer than a second between connecting and joining.
    let server = Server::start_with(data.path(), &["--handshake-timeout", "1"]);
    for trickle in [false, true] {
        let mut stream = std::net::TcpStream::connect(&server.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let started = std::time::Instant::now();
        if trickle {
            // One byte at a time, slower than the timeout allows for a whole request.
            for byte in b"GET /v1/sync HTTP/1.1\r\n".iter().take(4) {
                let _ = stream.write_all(&[*byte]);
                std::thread::sleep(Duration::from_millis(400));
            }
        }
        let mut buf = [0u8; 64];
        let n = stream.read(&mut buf).unwrap_or(0);
        assert_eq!(n, 0, "the server closed the connection");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "closed at the 1 s handshake timeout, not later"
        );
    }
}

#[test]
fn connections_beyond_the_cap_are_closed_and_idle_ones_are_pinged_then_closed() {
    let data = tempfile::tempdir().unwrap();
    let token = add_account(data.path(), "alice");
    let server = Server::start_with(
        data.path(),
        &["--max-connections", "2", "--idle-timeout", "1"],
    );
    runtime().block_on(async {
        let mut a = connect(&server.addr, Some(&token)).await.unwrap();
        join(&mut a, "a").await;
        let mut b = connect(&server.addr, Some(&token)).await.unwrap();
        join(&mut b, "b").await;
        assert!(
            connect(&server.addr, Some(&token)).await.is_err(),
            "a third connection is refused"
        );
        // `a` stops answering: pinged after 1 s of silence, closed after 2 s. It must not
        // read meanwhile (reading sends the pong), so the silence itself is the test's
        // stimulus, not a wait for something.
        tokio::time::sleep(Duration::from_millis(2600)).await;
        let mut saw_ping = false;
        let mut reason = None;
        for _ in 0..5 {
            match recv(&mut a, Duration::from_secs(2)).await {
                Some(WsMessage::Ping(_)) => saw_ping = true,
                Some(WsMessage::Close(frame)) => {
                    reason = frame.map(|f| f.reason.to_string());
                    break;
                }
                Some(_) => {}
                None => break,
            }
        }
        assert!(saw_ping);
        assert_eq!(reason.as_deref(), Some("idle: no answer to ping"));
        // Its slot is free again, once the server has let go of it.
        let mut c =
            nudge_testkit::wait::retry(Duration::from_secs(10), "the slot to come free", || {
                connect(&server.addr, Some(&token))
            })
            .await;
        join(&mut c, "c").await;
    });
}

/// `nudge_documents_loaded` from the server's metrics.
fn documents_loaded(addr: &str) -> u64 {
    let metrics = ureq::get(format!("http://{addr}/metrics"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("nudge_documents_loaded "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no nudge_documents_loaded in {metrics}"))
}

#[test]
fn idle_documents_leave_memory_and_come_back_whole() {
    let data = tempfile::tempdir().unwrap();
    let token = add_account(data.path(), "alice");
    let server = Server::start_with(data.path(), &["--unload-after", "1"]);
    let id = DocumentId::random();
    let mut doc = Automerge::new();
    for i in 0..50 {
        let mut tx = doc.transaction();
        tx.put(ROOT, format!("k{i}").as_str(), i).unwrap();
        tx.commit();
    }
    runtime().block_on(async {
        let mut ws = connect(&server.addr, Some(&token)).await.unwrap();
        let s = join(&mut ws, "laptop").await;
        sync(&mut ws, "laptop", &s, &id, &mut doc, "sync")
            .await
            .unwrap();
        // Open on a connection: it stays, however long that connection is quiet.
        tokio::time::sleep(Duration::from_millis(2_500)).await;
        assert_eq!(documents_loaded(&server.addr), 1);
        // The device writes again after the quiet spell: still the same document.
        let mut tx = doc.transaction();
        tx.put(ROOT, "later", true).unwrap();
        tx.commit();
        sync(&mut ws, "laptop", &s, &id, &mut doc, "sync")
            .await
            .unwrap();
    });
    // Nobody has it open: it leaves memory after a second.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while documents_loaded(&server.addr) > 0 {
        assert!(std::time::Instant::now() < deadline, "never unloaded");
        std::thread::sleep(Duration::from_millis(50));
    }
    // And comes back whole when asked for.
    runtime().block_on(async {
        let mut ws = connect(&server.addr, Some(&token)).await.unwrap();
        let s = join(&mut ws, "phone").await;
        let mut fetched = Automerge::new();
        let _ = sync(&mut ws, "phone", &s, &id, &mut fetched, "request").await;
        let (mut a, mut b) = (fetched.get_heads(), doc.get_heads());
        a.sort();
        b.sort();
        assert_eq!(a, b);
        assert_eq!(fetched.length(ROOT), 51);
    });
    assert_eq!(documents_loaded(&server.addr), 1);
}
