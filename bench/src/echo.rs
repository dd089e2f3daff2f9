//! `nudge-bench echo ADDR N`: round trips through an echoing server (`http-stack`), for
//! `bench/http-stack.sh`, which compares nudge-server's HTTP stack with axum.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use futures_util::StreamExt;

use crate::sync::client_runtime;
use nudge_testkit::peer::connect;
use nudge_testkit::percentile;

/// `nudge-bench echo ADDR N` (bench/http-stack.sh): N round trips of a 300-byte binary
/// message through a server that echoes them (`http-stack`), one at a time on one joined
/// connection after 100 unmeasured ones; prints the median and p99 in ms, as JSON.
pub fn echo_report(addr: &str, n: usize) -> Result<()> {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message as WsMessage;
    client_runtime()?.block_on(async {
        let (mut ws, _) = connect(addr, "echo", &format!("echo-{}", std::process::id())).await?;
        let payload = vec![7u8; 300];
        let mut took = Vec::with_capacity(n);
        for i in 0..n + 100 {
            let started = Instant::now();
            ws.send(WsMessage::Binary(payload.clone().into())).await?;
            loop {
                match ws.next().await {
                    Some(Ok(WsMessage::Binary(b))) if b.len() == payload.len() => break,
                    Some(Ok(_)) => {}
                    other => bail!("the echo ended: {other:?}"),
                }
            }
            if i >= 100 {
                took.push(started.elapsed());
            }
        }
        took.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "{{\"median_ms\": {:.3}, \"p99_ms\": {:.3}}}",
            ms(percentile(&took, 0.5)),
            ms(percentile(&took, 0.99))
        );
        Ok(())
    })
}
