//! The other nodes on a shared database (PostgreSQL): what they announce through the
//! store reaches this server's loaded documents and open sockets (`Server::heard`). On a
//! store one process has to itself (sled), there is nobody to hear.

use std::sync::{Arc, Weak};

use crate::server::Server;

/// Starts hearing the other nodes; the task ends with the server (it holds it weakly),
/// and is aborted at shutdown.
pub(crate) fn follow(server: &Arc<Server>) -> Option<tokio::task::JoinHandle<()>> {
    let shared = server.store().shared()?.clone();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    shared.listen(Box::new(move |signal| {
        let _ = tx.send(signal);
    }));
    let server: Weak<Server> = Arc::downgrade(server);
    Some(tokio::spawn(async move {
        while let Some(signal) = rx.recv().await {
            let Some(server) = server.upgrade() else {
                return;
            };
            server.heard(signal).await;
        }
    }))
}
