//! `nudge sync`: one exchange with the server, until every document holds the heads the
//! other side reported.
//!
//! 1. Ask the server which document is the account's journal (`GET /v1/journal`).
//! 2. If it has none, push this device's journal and its contacts document, then register
//!    it (`PUT /v1/journal`; the first device to register wins, and a loser adopts).
//! 3. If it is this device's journal, sync it and its contacts document.
//! 4. If it is another, fetch it and its contacts document, carry this device's own
//!    records over into it as new changes (`nudge_journal::Journal::adopt`), switch to it,
//!    and push the carried records.
//!
//! Everything received is stored and flushed before the command reports success. Exit
//! codes: 3 the server cannot be reached (or stopped answering), 4 it refused the token.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use futures_util::{SinkExt, StreamExt};
use nudge_journal::automerge::Automerge;
use nudge_journal::{Carried, Contacts, Journal};
use nudge_protocol::{ClientSync, Limits, Message, Moved, inspect};
use nudge_store::DocumentId;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::api::{Api, broke, refused, unreachable};
use crate::counted::Counted;
use crate::output::{Out, paint};
use crate::remote;
use nudge_replica::Replica;

type Ws = WebSocketStream<MaybeTlsStream<Counted<TcpStream>>>;

/// Largest message accepted from the server: a first fetch of a big journal comes whole,
/// and a 100,000-shift journal is a few MiB; more than this is no journal (and would cost
/// twice its size in memory to read).
const MAX_INBOUND: usize = 64 << 20;

/// Messages in a row that bring nothing new to store, after which a server that keeps
/// talking without getting anywhere is given up on.
const MAX_ROUNDS_WITHOUT_PROGRESS: u32 = 256;

/// The store is let go (`Replica::park`) when the next message takes longer than this, so
/// that other commands work while a sync waits on the network.
const HOLD_IDLE: Duration = Duration::from_millis(200);

/// Nor is it held for longer than this at a time while a sync goes on (a server that keeps
/// sending cannot keep the device's other commands out).
const MAX_HOLD: Duration = Duration::from_secs(1);

/// The websocket side: one connection, documents added as they become known.
pub(crate) struct Link {
    pub(crate) ws: Ws,
    pub(crate) client: ClientSync,
    limits: Limits,
    url: String,
    timeout: Duration,
    /// When a one-shot sync gives up, however much the server keeps talking (`--timeout`).
    deadline: tokio::time::Instant,
    /// Messages in a row that stored nothing.
    rounds_without_progress: u32,
    progress: Progress,
}

/// What has arrived, on stderr, for syncs that take a while: on a terminal only, from the
/// first byte (counted under the websocket, so a journal fetched whole shows while it
/// comes), cleared when the sync ends; never for `sync --watch` ([`NO_PROGRESS`]).
struct Progress {
    bar: indicatif::ProgressBar,
    ticker: Option<tokio::task::JoinHandle<()>>,
}

/// Set by `sync --watch`: its output is a log, so no sync of this process shows progress.
pub(crate) static NO_PROGRESS: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// How long a sync runs before it shows anything: a quick one never flashes a bar.
const PROGRESS_AFTER: Duration = Duration::from_millis(300);

impl Progress {
    fn new(read: Arc<AtomicU64>) -> Self {
        let bar = indicatif::ProgressBar::hidden();
        let show = std::io::IsTerminal::is_terminal(&std::io::stderr())
            && !NO_PROGRESS.load(Ordering::Relaxed);
        let ticker = show.then(|| {
            let (bar, read) = (bar.clone(), read.clone());
            tokio::spawn(async move {
                tokio::time::sleep(PROGRESS_AFTER).await;
                bar.set_style(
                    indicatif::ProgressStyle::with_template(
                        "{spinner} syncing: {bytes} received ({bytes_per_sec})",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
                );
                bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                let mut redraw = tokio::time::interval(Duration::from_millis(100));
                loop {
                    redraw.tick().await;
                    bar.set_position(read.load(Ordering::Relaxed));
                    bar.tick();
                }
            })
        });
        Self { bar, ticker }
    }

    fn finish(&mut self) {
        if let Some(ticker) = self.ticker.take() {
            ticker.abort();
        }
        self.bar.finish_and_clear();
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        // On an error path too, the error line must not land after a stale bar.
        self.finish();
    }
}

impl Link {
    pub(crate) async fn connect(api: &Api, timeout: Duration) -> Result<Self> {
        let url = api.url.clone();
        let endpoints = &api.endpoints;
        let token = api.token().unwrap_or_default();
        let mut request = endpoints
            .sync
            .as_str()
            .into_client_request()
            .map_err(|e| anyhow!("{url:?} is not a usable address: {e}"))?;
        let bearer = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
            anyhow!("the stored token is damaged; run `nudge remote remove` and add it again")
        })?;
        request.headers_mut().insert("Authorization", bearer);
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_INBOUND))
            .max_frame_size(Some(MAX_INBOUND));
        let read = Arc::new(AtomicU64::new(0));
        let host = request.uri().host().unwrap_or_default().to_owned();
        let port =
            request
                .uri()
                .port_u16()
                .unwrap_or(if request.uri().scheme_str() == Some("wss") {
                    443
                } else {
                    80
                });
        let connected = tokio::time::timeout(timeout, async {
            let tcp = TcpStream::connect((host.trim_matches(['[', ']']), port))
                .await
                .map_err(tokio_tungstenite::tungstenite::Error::Io)?;
            let _ = tcp.set_nodelay(true);
            let counted = Counted {
                inner: tcp,
                read: read.clone(),
            };
            tokio_tungstenite::client_async_tls_with_config(request, counted, Some(config), None)
                .await
        })
        .await
        .map_err(|_| unreachable(&url, "no answer in time"))?;
        let ws = match connected {
            Ok((ws, _)) => ws,
            Err(tokio_tungstenite::tungstenite::Error::Http(response))
                if response.status().as_u16() == 401 =>
            {
                return Err(refused(&url));
            }
            Err(tokio_tungstenite::tungstenite::Error::Http(response))
                if response.status().as_u16() == 429 =>
            {
                return Err(crate::api::throttled(&url));
            }
            Err(e) => return Err(unreachable(&url, e)),
        };
        let peer_id = format!("nudge-cli-{}", nudge_journal::ids::new_id());
        let (client, join) = ClientSync::new(peer_id);
        let limits = Limits {
            max_message_bytes: MAX_INBOUND,
            ..Limits::default()
        };
        let mut link = Self {
            ws,
            client,
            limits,
            url,
            timeout,
            deadline: tokio::time::Instant::now() + timeout,
            rounds_without_progress: 0,
            progress: Progress::new(read),
        };
        link.send(vec![join]).await?;
        while !link.client.is_established() {
            link.step(None).await?;
        }
        Ok(link)
    }

    pub(crate) async fn send(&mut self, messages: Vec<Message>) -> Result<()> {
        for message in messages {
            self.ws
                .send(WsMessage::Binary(message.encode().into()))
                .await
                .map_err(|e| broke(&self.url, e))?;
        }
        Ok(())
    }

    /// Receives one message and acts on it; stores what it brought through `session`.
    /// Within the sync's deadline (`--timeout` for the whole exchange, not per message),
    /// and within [`MAX_ROUNDS_WITHOUT_PROGRESS`].
    async fn step(&mut self, session: Option<&Replica>) -> Result<()> {
        let next = self.next_message(session).await?;
        let (document, replies) = self.receive(next)?;
        let mut stored = false;
        if let (Some(session), Some(id)) = (session, document) {
            match self.client.doc(&id) {
                // A document fetched into an empty device: one snapshot, not a log entry
                // per change (a 10,000-shift journal stored in a fraction of the time).
                // Empty in the store too: another command may have written to it while
                // the store was let go, and a snapshot replaces what is there.
                Some(doc)
                    if self.client.nothing_stored(&id)
                        && !doc.get_heads().is_empty()
                        && session.store_position(&id)? == 0 =>
                {
                    session.store_whole(&id, doc)?;
                    self.client.mark_stored(&id);
                    stored = true;
                }
                _ => {
                    let changes = self.client.take_new_changes(&id);
                    if !changes.is_empty() {
                        session.store_changes(&id, &changes)?;
                        stored = true;
                    }
                }
            }
        }
        self.rounds_without_progress = if stored {
            0
        } else {
            self.rounds_without_progress + 1
        };
        if self.rounds_without_progress > MAX_ROUNDS_WITHOUT_PROGRESS {
            return Err(broke(
                &self.url,
                format!(
                    "{MAX_ROUNDS_WITHOUT_PROGRESS} messages in a row brought nothing new; is it a nudge server?"
                ),
            ));
        }
        self.send(replies).await
    }

    /// Waits for the next message, within the sync's deadline. The store is let go when
    /// the wait outlasts [`HOLD_IDLE`], or the session has held it for [`MAX_HOLD`].
    async fn next_message(
        &mut self,
        session: Option<&Replica>,
    ) -> Result<Option<Result<WsMessage, tokio_tungstenite::tungstenite::Error>>> {
        if let Some(session) = session
            && let Some(since) = session.held_since()
        {
            let let_go_at = tokio::time::Instant::from_std(since + MAX_HOLD)
                .min(tokio::time::Instant::now() + HOLD_IDLE);
            if let_go_at < self.deadline {
                // Cancel-safe: a message that was not whole yet stays in the stream.
                match tokio::time::timeout_at(let_go_at, self.ws.next()).await {
                    Ok(next) => return Ok(next),
                    Err(_) => session.park()?,
                }
            }
        }
        tokio::time::timeout_at(self.deadline, self.ws.next())
            .await
            .map_err(|_| {
                broke(
                    &self.url,
                    format!(
                        "the sync did not finish within {} s (--timeout)",
                        self.timeout.as_secs()
                    ),
                )
            })
    }

    /// Acts on what the socket gave, without I/O: returns the document it was about and
    /// the replies to send.
    pub(crate) fn receive(
        &mut self,
        next: Option<Result<WsMessage, tokio_tungstenite::tungstenite::Error>>,
    ) -> Result<(Option<DocumentId>, Vec<Message>)> {
        let bytes = match next {
            Some(Ok(WsMessage::Binary(bytes))) => bytes,
            Some(Ok(WsMessage::Close(frame))) => {
                let why = frame
                    .map(|f| f.reason.to_string())
                    .filter(|r| !r.is_empty())
                    .unwrap_or_else(|| "closed by the server".into());
                return Err(broke(&self.url, why));
            }
            Some(Ok(_)) => return Ok((None, Vec::new())),
            Some(Err(e)) => return Err(broke(&self.url, e)),
            None => return Err(broke(&self.url, "closed by the server")),
        };
        let inbound = inspect(&bytes, &self.limits)
            .map_err(|e| anyhow!("the server at {} sent a bad message ({e}); nothing bad was stored: run `nudge sync` again", self.url))?;
        let document = inbound.document;
        let replies = self.client.receive(inbound).map_err(|e| match e {
            nudge_protocol::ClientError::Server(why) => crate::api::ended(&self.url, &why),
            nudge_protocol::ClientError::ActorReused {
                document,
                actor,
                seq,
            } => anyhow::Error::new(crate::actor_moves::ActorReused {
                document,
                actor,
                seq,
            }),
            other => anyhow!("{other}; run `nudge sync` again"),
        })?;
        Ok((document, replies))
    }

    /// The sync's `--timeout`.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    pub(crate) async fn add(&mut self, id: DocumentId, doc: Automerge) -> Result<()> {
        let messages = self.client.add(id, doc);
        self.send(messages).await
    }

    pub(crate) async fn until_done(&mut self, session: &Replica) -> Result<()> {
        while !self.client.is_done() {
            self.step(Some(session)).await?;
        }
        Ok(())
    }

    pub(crate) async fn close(mut self) {
        self.progress.finish();
        let _ = tokio::time::timeout(Duration::from_secs(2), self.ws.close(None)).await;
    }
}

/// What a sync did.
#[derive(Default)]
pub(crate) struct Report {
    moved: Moved,
    carried: Option<Carried>,
    adopted: bool,
}

fn add_moved(total: &mut Moved, m: Moved) {
    total.down += m.down;
    total.up += m.up;
}

/// The contacts document a journal names (read in place: no copy of the document).
pub(crate) fn contacts_id(doc: &Automerge) -> Result<Option<DocumentId>> {
    use nudge_journal::automerge::{ObjType, ROOT, ReadDoc, Value};
    Ok(match doc.get(ROOT, "contacts_doc")? {
        Some((Value::Scalar(s), _)) => s.as_str().and_then(|t| t.parse().ok()),
        Some((Value::Object(ObjType::Text), id)) => doc.text(&id)?.parse().ok(),
        _ => None,
    })
}

/// Where a sync starts: the server's routes and the account's journal, or `None` when
/// there is nothing to sync (no journal here or there).
pub(crate) fn prepare(
    session: &Replica,
    timeout: Duration,
) -> Result<Option<(Api, Option<DocumentId>)>> {
    let Some(remote) = remote::load(session.home())? else {
        bail!(
            "no remote is set: run `nudge remote add URL` with the account's token in NUDGE_TOKEN"
        );
    };
    let endpoints = remote::endpoints(&remote.url)?;
    let api = Api::new(&remote, endpoints, timeout);
    let local = session.journal_id()?;
    session.park()?;
    let account_journal = api.journal()?;
    if account_journal.is_none() && local.is_none() {
        return Ok(None);
    }
    Ok(Some((api, account_journal)))
}

/// `nudge sync`: this device's journal (and its share views) with its server, then the
/// shares it follows.
pub fn run(session: &Replica, out: &mut Out, timeout: Duration) -> Result<()> {
    let follows = crate::buddy::follows(session.home())?;
    if remote::load(session.home())?.is_none() && !follows.is_empty() {
        return crate::buddy::sync_follows(session, out, timeout);
    }
    // Counted before the store is let go for the network (one opening less).
    let shifts_before = shift_count(session)?;
    let Some((api, account_journal)) = prepare(session, timeout)? else {
        out.line("Nothing to sync yet: the journal is empty and the account has none. Add a shift first.");
        return crate::buddy::sync_follows(session, out, timeout);
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the network runtime")?;
    let (report, moves) = runtime.block_on(crate::actor_moves::retrying(session, async || {
        let (report, mut link) = exchange(session, &api, account_journal, timeout).await?;
        crate::buddy::refresh_views(session, &mut link).await?;
        link.close().await;
        Ok::<_, anyhow::Error>(report)
    }))?;
    let shifts_after = shift_count(session)?;
    for line in report_lines(
        &api.url,
        &report,
        shifts_after.saturating_sub(shifts_before),
    ) {
        out.line(line);
    }
    if let Some(line) = crate::actor_moves::report_line(&moves) {
        out.line(line);
    }
    crate::buddy::sync_follows(session, out, timeout)
}

/// What a sync says it did.
pub(crate) fn report_lines(url: &str, report: &Report, new_shifts: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = format!("Synced with {url}: ");
    if report.moved.down == 0 && report.moved.up == 0 {
        line.push_str("up to date");
    } else {
        line.push_str(&format!(
            "↓ {} {}, ↑ {} {}",
            report.moved.down,
            plural(report.moved.down, "change", "changes"),
            report.moved.up,
            plural(report.moved.up, "change", "changes"),
        ));
        if new_shifts > 0 && report.carried.is_none() {
            line.push_str(&format!(
                " ({new_shifts} new {})",
                plural(new_shifts, "shift", "shifts")
            ));
        }
    }
    lines.push(line);
    if let Some(carried) = report.carried.filter(|c| !c.is_empty()) {
        lines.push(format!(
            "Joined the account's journal; carried over this device's {} {}, {} {} and {} {}.",
            carried.shifts,
            plural(carried.shifts, "shift", "shifts"),
            carried.ideas,
            plural(carried.ideas, "idea", "ideas"),
            carried.people,
            plural(carried.people, "person", "people"),
        ));
    } else if report.adopted {
        lines.push(paint(crate::output::GOOD, "Joined the account's journal."));
    }
    lines
}

pub(crate) fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

fn shift_count(session: &Replica) -> Result<usize> {
    Ok(session.shift_ids_with_prefix("")?.len())
}

/// One full sync over a new connection; returns what moved and the connection, still open.
pub(crate) async fn exchange(
    session: &Replica,
    api: &Api,
    account_journal: Option<DocumentId>,
    timeout: Duration,
) -> Result<(Report, Link)> {
    session.park()?;
    let mut link = Link::connect(api, timeout).await?;
    // What other commands write from here on, while the store is let go, goes too (below).
    let mut seen = session.writes_seen()?;
    let mut report = Report::default();
    // This device's journal, pushed before another device's won the registration.
    let mut pushed = Moved::default();
    let local = session.journal_id()?;
    let target = match account_journal {
        // The account has no journal: this device's becomes it, once it is on the server.
        None => {
            let Some(local) = local else {
                bail!("the journal is empty");
            };
            sync_pair(session, &mut link, local).await?;
            pushed = moved_pair(&link, local)?;
            session.park()?;
            api.register(&local)?
        }
        Some(journal) => {
            if Some(journal) == local {
                sync_pair(session, &mut link, journal).await?;
            }
            journal
        }
    };
    if Some(target) != session.journal_id()? {
        report.adopted = true;
        report.carried = adopt(session, &mut link, target).await?;
    }
    send_local_writes(session, &mut link, &mut seen).await?;
    // What the journal synced last moved, counted once it is in sync (the writes sent
    // just above included).
    report.moved = moved_pair(&link, target)?;
    if Some(target) != local {
        add_moved(&mut report.moved, pushed);
    }
    // From the last look at the store to here, it is held: nothing is marked synced that
    // the server did not get.
    session.commit_sync()?;
    for id in documents(session, &link)? {
        session.mark_synced(&id)?;
    }
    session.sync_flush()?;
    // The link holds the journal exactly as stored now: derive the cache from it rather
    // than load the whole journal again from the store.
    if let Some(id) = session.journal_id()?
        && let Some(doc) = link.client.doc(&id)
    {
        session.refresh_cache_from(doc)?;
    }
    Ok((report, link))
}

/// Sends what other commands stored while the sync had let go of the store, until a look
/// at the store (held) finds no write since the last (`seen`, the `last-write` stamp).
async fn send_local_writes(session: &Replica, link: &mut Link, seen: &mut String) -> Result<()> {
    loop {
        let now = session.writes_seen()?;
        if now == *seen {
            return Ok(());
        }
        *seen = now;
        // The journal first: a new contacts document is found through it.
        let mut next = 0;
        while let Some(id) = documents(session, link)?.get(next).copied() {
            next += 1;
            let Some(stored) = session.load_automerge(&id)? else {
                continue;
            };
            let Some(held) = link.client.doc(&id) else {
                link.add(id, stored).await?;
                continue;
            };
            let missing: Vec<_> = stored
                .get_changes(&[])
                .into_iter()
                .filter(|c| {
                    nudge_journal::automerge::ReadDoc::get_change_by_hash(held, &c.hash()).is_none()
                })
                .collect();
            if !missing.is_empty() {
                let messages = link.client.apply_local(&id, missing)?;
                link.send(messages).await?;
            }
        }
        link.until_done(session).await?;
        session.sync_flush()?;
    }
}

/// The journal and its contacts document (read from the link's copy when it has one).
fn documents(session: &Replica, link: &Link) -> Result<Vec<DocumentId>> {
    let Some(id) = session.journal_id()? else {
        return Ok(Vec::new());
    };
    let mut ids = vec![id];
    let contacts = match link.client.doc(&id) {
        Some(doc) => contacts_id(doc)?,
        None => match session.load_automerge(&id)? {
            Some(doc) => contacts_id(&doc)?,
            None => None,
        },
    };
    ids.extend(contacts);
    Ok(ids)
}

/// Syncs a journal this device has, and then its contacts document.
async fn sync_pair(session: &Replica, link: &mut Link, journal: DocumentId) -> Result<()> {
    let doc = session.load_automerge(&journal)?.ok_or_else(|| {
        anyhow!(
            "the journal {journal} is missing from this device; restore the folder from a backup"
        )
    })?;
    let contacts = contacts_id(&doc)?;
    link.add(journal, doc).await?;
    if let Some(contacts) = contacts {
        let doc = session.load_automerge(&contacts)?.unwrap_or_default();
        link.add(contacts, doc).await?;
    }
    link.until_done(session).await?;
    session.sync_flush()?;
    // The journal may have arrived pointing at a contacts document not synced yet.
    if let Some(doc) = link.client.doc(&journal)
        && let Some(now) = contacts_id(doc)?
        && Some(now) != contacts
    {
        let doc = session.load_automerge(&now)?.unwrap_or_default();
        link.add(now, doc).await?;
        link.until_done(session).await?;
        session.sync_flush()?;
    }
    Ok(())
}

fn moved_pair(link: &Link, journal: DocumentId) -> Result<Moved> {
    let mut total = link.client.moved(&journal);
    if let Some(doc) = link.client.doc(&journal)
        && let Some(contacts) = contacts_id(doc)?
    {
        add_moved(&mut total, link.client.moved(&contacts));
    }
    Ok(total)
}

/// Fetches the account's journal `target`, carries this device's records over into it,
/// makes it this device's journal and pushes the carried records.
async fn adopt(session: &Replica, link: &mut Link, target: DocumentId) -> Result<Option<Carried>> {
    let existing = session.load_automerge(&target)?.unwrap_or_default();
    link.add(target, existing).await?;
    link.until_done(session).await?;
    if link.client.is_unavailable(&target) {
        bail!(
            "the account's journal {target} is not on the server yet; sync the device that created it, then run `nudge sync` here again"
        );
    }
    session.sync_flush()?;
    let fetched = link
        .client
        .doc(&target)
        .cloned()
        .ok_or_else(|| anyhow!("the account's journal did not arrive"))?;
    let mut journal = Journal::from_doc(fetched.with_actor(session.device_actor()?))
        .map_err(|e| anyhow!("the account's journal on the server is not usable here: {e}"))?;
    let contacts_target = contacts_id(journal.doc())?;
    if let Some(id) = contacts_target {
        let existing = session.load_automerge(&id)?.unwrap_or_default();
        link.add(id, existing).await?;
        link.until_done(session).await?;
        session.sync_flush()?;
    }
    // This device's own journal, if it has one with records, is carried over.
    let mut carried = None;
    if let Some(own) = session.load_journal()? {
        let before = journal.doc().get_heads();
        let count = journal.adopt(&session.now, &own)?;
        let mut contacts_count = 0;
        let journal_changes = journal.doc().get_changes(&before);
        let mut contacts_changes = Vec::new();
        if let (Some(cid), Some((_, own_contacts))) =
            (contacts_target, session.load_contacts(&own.catalog()?)?)
            && let Some(doc) = link.client.doc(&cid)
            && !link.client.is_unavailable(&cid)
        {
            let mut theirs = Contacts::load(&doc.save(), session.device_actor()?)?;
            let before = theirs.doc().get_heads();
            contacts_count = theirs.adopt(&session.now, &own_contacts)?;
            contacts_changes = theirs.doc().get_changes(&before);
            session.store_changes(&cid, &contacts_changes)?;
        }
        session.store_changes(&target, &journal_changes)?;
        session.sync_flush()?;
        session.switch_journal(&target)?;
        let messages = link.client.apply_local(&target, journal_changes)?;
        link.send(messages).await?;
        if let Some(cid) = contacts_target {
            let messages = link.client.apply_local(&cid, contacts_changes)?;
            link.send(messages).await?;
        }
        link.until_done(session).await?;
        carried = Some(Carried {
            contacts: contacts_count,
            ..count
        });
    } else {
        session.switch_journal(&target)?;
    }
    Ok(carried)
}
