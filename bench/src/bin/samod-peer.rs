//! `samod-peer`: a sync server built on samod 0.16 (the Rust automerge-repo), the way its
//! own README sets one up, for `bench/compare.sh`: websocket connections on 127.0.0.1,
//! file-system storage, samod's default share policy. Prints `listening on ADDR`.
//!
//! ```text
//! samod-peer DATA_DIR
//! ```

use anyhow::{Context, Result};
use futures_util::{SinkExt, StreamExt, TryStreamExt};
use tokio_tungstenite::tungstenite::Message as WsMessage;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let dir = std::env::args()
        .nth(1)
        .context("usage: samod-peer DATA_DIR")?;
    let repo = samod::Repo::build_tokio()
        .with_storage(samod::storage::TokioFilesystemStorage::new(&dir))
        .load()
        .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let acceptor = repo
        .make_acceptor(samod::Url::parse(&format!("ws://{addr}/"))?)
        .map_err(|_| anyhow::anyhow!("the samod repo stopped"))?;
    println!("listening on {addr}");
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let Ok(ws) = tokio_tungstenite::accept_async(stream).await else {
                return;
            };
            let (sink, stream) = ws.split();
            let stream = Box::pin(stream.try_filter_map(|m| async move {
                Ok(match m {
                    WsMessage::Binary(b) => Some(b.to_vec()),
                    _ => None,
                })
            }));
            let sink = Box::pin(sink.with(|bytes: Vec<u8>| async move {
                Ok::<_, tokio_tungstenite::tungstenite::Error>(WsMessage::Binary(bytes.into()))
            }));
            let _ = acceptor.accept(samod::Transport::new(stream, sink));
        });
    }
}
