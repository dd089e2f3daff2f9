//! `nudge sync`, and every other command that asks the server, lets go of the device's
//! store while it waits on the network: other commands work offline meanwhile, and what
//! they write goes out with that same sync (it is never marked synced unsent).

use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::talkative::endless;
use crate::util::{Account, Home, texts};

#[test]
fn a_sync_held_up_by_its_server_leaves_the_device_working() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    let (joined, join) = mpsc::channel();
    runtime.spawn(endless(listener, false, joined));
    let home = Home::new();
    home.new_id(&["add", "Email Sam"]);
    let token = format!("nudge_acct_{}_{}", "a".repeat(12), "b".repeat(64));
    home.remote_add(&format!("http://{addr}"), &token);
    let mut sync = home
        .std_cmd()
        .args(["sync", "--timeout", "120"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    join.recv_timeout(Duration::from_secs(60))
        .expect("the sync reached the server");
    let started = Instant::now();
    home.new_id(&["add", "Call Priya"]);
    let listed = home.ok(&["list"]);
    eprintln!("add and list beside a held sync: {:?}", started.elapsed());
    assert!(
        sync.try_wait().unwrap().is_none(),
        "the sync ended before the other commands ran"
    );
    sync.kill().unwrap();
    sync.wait().unwrap();
    assert!(listed.contains("Call Priya"), "{listed}");
    let export = home.json(&["export", "--json"]);
    assert_eq!(texts(&export), ["Call Priya", "Email Sam"]);
}

#[test]
fn a_shift_added_while_a_sync_waits_goes_out_with_that_sync() {
    let account = Account::start();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (open, opened) = watch::channel(true);
    let (holding, held) = mpsc::channel();
    let proxy = runtime.block_on(gate(account.server.addr.to_string(), opened, holding));
    let home = Home::new();
    home.remote_add(&format!("http://{proxy}"), &account.token);
    home.new_id(&["add", "Email Sam"]);
    home.ok(&["sync"]);

    // The next sync's messages are held at the gate after its join.
    open.send_replace(false);
    let sync = home
        .std_cmd()
        .args(["sync", "--timeout", "120"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    held.recv_timeout(Duration::from_secs(60))
        .expect("the sync sent its journal");
    home.new_id(&["add", "Call Priya"]);
    open.send_replace(true);
    let out = sync.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("↑ 1 change"), "{stdout}");

    // The server has it: another device gets it, and this one has nothing left to send.
    let other = account.device();
    other.ok(&["sync"]);
    assert_eq!(
        texts(&other.json(&["export", "--json"])),
        ["Call Priya", "Email Sam"]
    );
    assert_eq!(home.json(&["status", "--json"])["unsynced_changes"], 0);
}

/// A proxy to `server`. On a websocket, the device's first frame (its join) passes at
/// once; what it sends after that waits while `open` is false, and `holding` is told when
/// something is held. Everything the server sends passes.
async fn gate(
    server: String,
    open: watch::Receiver<bool>,
    holding: mpsc::Sender<()>,
) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let (server, mut open, holding) = (server.clone(), open.clone(), holding.clone());
            tokio::spawn(async move {
                let _ = pass(client, &server, &mut open, &holding).await;
            });
        }
    });
    addr
}

async fn pass(
    mut client: TcpStream,
    server: &str,
    open: &mut watch::Receiver<bool>,
    holding: &mpsc::Sender<()>,
) -> std::io::Result<()> {
    let Some(head) = crate::util::read_http_head(&mut client).await else {
        return Ok(());
    };
    let mut upstream = TcpStream::connect(server).await?;
    upstream.write_all(head.as_bytes()).await?;
    let websocket = head.to_ascii_lowercase().contains("upgrade: websocket");
    let (mut from_client, mut to_client) = client.into_split();
    let (mut from_server, mut to_server) = upstream.into_split();
    tokio::spawn(async move { tokio::io::copy(&mut from_server, &mut to_client).await });
    if websocket {
        let join = read_frame(&mut from_client).await?;
        to_server.write_all(&join).await?;
        let mut first = [0u8; 1];
        if from_client.read(&mut first).await? == 0 {
            return Ok(());
        }
        if !*open.borrow() {
            let _ = holding.send(());
            while !*open.borrow_and_update() {
                if open.changed().await.is_err() {
                    return Ok(());
                }
            }
        }
        to_server.write_all(&first).await?;
    }
    tokio::io::copy(&mut from_client, &mut to_server).await?;
    Ok(())
}

/// One whole websocket frame as a client sends it (masked), bytes as read.
async fn read_frame(from: &mut (impl AsyncReadExt + Unpin)) -> std::io::Result<Vec<u8>> {
    let mut frame = vec![0u8; 2];
    from.read_exact(&mut frame).await?;
    let extended = match frame[1] & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let mut more = vec![0u8; extended];
    from.read_exact(&mut more).await?;
    let len = match extended {
        0 => u64::from(frame[1] & 0x7f),
        _ => more.iter().fold(0u64, |n, b| n << 8 | u64::from(*b)),
    };
    frame.extend(more);
    let mask = if frame[1] & 0x80 != 0 { 4 } else { 0 };
    let mut rest = vec![0u8; mask + len as usize];
    from.read_exact(&mut rest).await?;
    frame.extend(rest);
    Ok(frame)
}

/// A server that reads each request and never answers; sends each request line on.
async fn silent(listener: TcpListener, asked: mpsc::Sender<String>) {
    let mut held = Vec::new();
    while let Ok((mut stream, _)) = listener.accept().await {
        if let Some(head) = crate::util::read_http_head(&mut stream).await {
            let _ = asked.send(head.lines().next().unwrap_or_default().to_owned());
        }
        held.push(stream);
    }
}

#[test]
fn every_command_that_asks_the_server_lets_go_of_the_store_while_it_waits() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (asked, asks) = mpsc::channel();
    runtime.spawn(silent(listener, asked));
    let home = Home::new();
    home.new_id(&["add", "Email Sam"]);
    let token = format!("nudge_acct_{}_{}", "a".repeat(12), "b".repeat(64));
    home.remote_add(&base, &token);
    let share = format!("{base}/view/nudge_share_{}", "c".repeat(40));
    let commands: [&[&str]; 5] = [
        &["device", "link"],
        &["device", "list"],
        &["buddy", "invite", "Jo"],
        &["follow", &share, "--timeout", "120"],
        &["buddy", "list"],
    ];
    for (i, args) in commands.into_iter().enumerate() {
        let mut waiting = home
            .std_cmd()
            .args(args)
            .env("NUDGE_SYNC_TIMEOUT", "120")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let request = asks
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("{args:?} never reached the server"));
        let started = Instant::now();
        let text = format!("Written while {} waits", args.join(" "));
        home.new_id(&["add", &text]);
        let listed = home.ok(&["list"]);
        eprintln!(
            "{args:?} waiting on {request:?}: add and list in {:?}",
            started.elapsed()
        );
        assert!(
            waiting.try_wait().unwrap().is_none(),
            "{args:?} ended before the other commands ran"
        );
        waiting.kill().unwrap();
        waiting.wait().unwrap();
        assert!(listed.contains(&text), "{listed}");
        assert_eq!(
            texts(&home.json(&["export", "--json"])).len(),
            i + 2,
            "nothing was lost"
        );
    }
}
