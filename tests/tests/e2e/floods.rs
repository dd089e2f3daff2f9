//! Connection floods against the real server while an honest device syncs in a loop:
//! idle TCP sockets that never send a byte, idle websockets on one buddy link, and the
//! buddy page's event streams on the same link (`nudge_testkit::flood`). Each attacker
//! is held to its address's and its link's share of the server; the honest device's
//! syncs all succeed. Latencies are printed (quiet and flooded), not asserted: the
//! benchmark `nudge-bench flood` measures them, in release builds (docs/PERFORMANCE.md).

use std::time::{Duration, Instant};

use nudge_testkit::flood::{Flood, UNDER_WAY};
use nudge_testkit::percentile;

use crate::util::{Home, Server, add_account, scale};

fn timed_syncs(home: &Home, n: usize, label: &str) -> Vec<Duration> {
    (0..n)
        .map(|i| {
            home.new_id(&["add", &format!("{label} {i}")]);
            let started = Instant::now();
            home.ok(&["sync"]);
            started.elapsed()
        })
        .collect()
}

#[test]
fn honest_syncs_succeed_while_idle_sockets_websockets_and_event_streams_flood_the_server() {
    let data = tempfile::tempdir().unwrap();
    let token = add_account(data.path(), "ana");
    let server = Server::start(data.path());
    let laptop = Home::new();
    laptop.remote_add(&format!("http://{}", server.addr), &token);
    laptop.new_id(&["add", "Email Sam"]);
    let link = laptop.ok(&["buddy", "invite", "Jo"]);
    let share = crate::util::share_token_of(&link);
    let rounds = scale(20, 100);
    let quiet = timed_syncs(&laptop, rounds, "Quiet");

    let flood = Flood::start(&server.addr, &share).unwrap();
    // Every flooded sync succeeds (`ok` asserts it).
    let flooded = timed_syncs(&laptop, rounds, "Flooded");
    let tried = flood.stop();
    eprintln!("flooded syncs: {flooded:?}");
    eprintln!(
        "{rounds} honest syncs: quiet p99 {:?}, flooded p99 {:?} ({tried} attacker connections tried)",
        percentile(&quiet, 0.99),
        percentile(&flooded, 0.99)
    );
    assert!(tried >= UNDER_WAY, "the floods did not start: {tried}");
    // The buddy's page still works.
    let page = ureq::get(format!("http://{}/view/{share}", server.addr))
        .call()
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
}
