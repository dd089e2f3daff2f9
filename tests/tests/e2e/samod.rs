//! Interoperability: `samod` (the Rust automerge-repo) syncs a document with the real
//! `nudge-server`, both ways, over a websocket carrying the account token.

use std::sync::Arc;
use std::time::Duration;

use automerge::transaction::Transactable;
use automerge::{Automerge, ROOT, ReadDoc};
use futures_util::future::BoxFuture;
use futures_util::{SinkExt, StreamExt, TryStreamExt};
use nudge_store::DocumentId;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::server::{connect, join, runtime, sync};
use crate::util::{Server, add_account};

/// Dials the server's websocket with a bearer token; frames carry protocol messages.
struct TokenDialer {
    url: String,
    token: String,
}

impl samod::Dialer for TokenDialer {
    type Error = std::io::Error;

    fn url(&self) -> samod::Url {
        samod::Url::parse(&self.url).expect("a valid url")
    }

    fn connect(
        &self,
    ) -> BoxFuture<'static, Result<samod::Transport, samod::DialError<Self::Error>>> {
        let (url, token) = (self.url.clone(), self.token.clone());
        Box::pin(async move {
            let mut request = url
                .into_client_request()
                .map_err(samod::DialError::transient)?;
            request.headers_mut().insert(
                "authorization",
                format!("Bearer {token}").parse().expect("a valid header"),
            );
            let (ws, _) = tokio_tungstenite::connect_async(request)
                .await
                .map_err(samod::DialError::transient)?;
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
            Ok(samod::Transport::new(stream, sink))
        })
    }
}

async fn samod_repo(addr: &str, token: &str) -> samod::Repo {
    let repo = samod::Repo::build_tokio().load().await;
    let dialer = TokenDialer {
        url: format!("ws://{addr}/v1/sync"),
        token: token.to_owned(),
    };
    let handle = repo
        .dial(samod::BackoffConfig::default(), Arc::new(dialer))
        .expect("the repo runs");
    tokio::time::timeout(Duration::from_secs(10), handle.established())
        .await
        .expect("samod connects in time")
        .expect("samod's handshake with nudge-server succeeds");
    repo
}

fn value(doc: &Automerge, key: &str) -> Option<String> {
    doc.get(ROOT, key)
        .ok()
        .flatten()
        .and_then(|(v, _)| v.into_string().ok())
}

#[test]
fn a_samod_client_syncs_with_nudge_server_both_ways() {
    let data = tempfile::tempdir().unwrap();
    let token = add_account(data.path(), "ana");
    let server = Server::start(data.path());
    runtime().block_on(async {
        // samod -> nudge-server: samod creates a document and announces it.
        let alice = samod_repo(&server.addr, &token).await;
        let mut initial = Automerge::new();
        let mut tx = initial.transaction();
        tx.put(ROOT, "from_samod", "hello").unwrap();
        tx.commit();
        let handle = alice.create(initial).await.unwrap();
        let id: DocumentId = handle.document_id().to_string().parse().unwrap();

        // A plain protocol client of ours fetches it from the server.
        let mut fetched = Automerge::new();
        let mut got = false;
        for _ in 0..20 {
            let mut ws = connect(&server.addr, Some(&token)).await.unwrap();
            let server_id = join(&mut ws, "nudge-raw").await;
            if sync(
                &mut ws,
                "nudge-raw",
                &server_id,
                &id,
                &mut fetched,
                "request",
            )
            .await
            .is_ok()
                && value(&fetched, "from_samod").is_some()
            {
                got = true;
                // nudge-server -> samod: a change pushed by our client reaches samod.
                let mut tx = fetched.transaction();
                tx.put(ROOT, "from_nudge", "hi back").unwrap();
                tx.commit();
                sync(&mut ws, "nudge-raw", &server_id, &id, &mut fetched, "sync")
                    .await
                    .unwrap();
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(got, "the server never had samod's document");
        assert_eq!(value(&fetched, "from_samod").as_deref(), Some("hello"));

        let mut arrived = false;
        for _ in 0..50 {
            if handle.with_document(|d| value(d, "from_nudge")).is_some() {
                arrived = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            arrived,
            "samod never received the change pushed through nudge-server"
        );

        // A second, fresh samod repo finds the whole document on the server.
        let bob = samod_repo(&server.addr, &token).await;
        let found = tokio::time::timeout(
            Duration::from_secs(10),
            bob.find(handle.document_id().clone()),
        )
        .await
        .expect("find answers in time")
        .unwrap()
        .expect("the server has the document");
        let both = found.with_document(|d| (value(d, "from_samod"), value(d, "from_nudge")));
        assert_eq!(both, (Some("hello".into()), Some("hi back".into())));
        alice.stop().await;
        bob.stop().await;
    });
}
