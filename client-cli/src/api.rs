//! The server's HTTP routes, as the CLI calls them (blocking, `ureq`), and the errors
//! with exit codes of their own: 3 the server cannot be reached, 4 it refused the token,
//! 5 it asked this address to slow down (429).
//!
//! An `Api` made for a command's session ([`Api::letting_go`]) lets go of the device's
//! store before every call, so that other commands work offline while this one waits on
//! the network (the next use of the store opens it again).

use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use nudge_store::DocumentId;
use serde_json::Value;

use nudge_replica::Replica;

use crate::remote::{self, Endpoints, Remote};

/// An error with an exit code of its own.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    /// The exit code.
    pub code: u8,
    /// One line saying what happened and what to do.
    pub message: String,
}

/// The server cannot be reached, or stopped answering.
pub const UNREACHABLE: u8 = 3;
/// The server refused the token.
pub const REFUSED: u8 = 4;
/// The server is holding back this address after too many failed attempts (429).
pub const THROTTLED: u8 = 5;

/// The server at `url` answered 429: too many failed credentials from this address.
pub fn throttled(url: &str) -> anyhow::Error {
    Failure {
        code: THROTTLED,
        message: format!(
            "the server at {url} is holding back this address after too many failed attempts (a bad token, link or code); nothing was changed here: check the token or link, then retry in a few seconds"
        ),
    }
    .into()
}

/// The server at `url` cannot be reached.
pub fn unreachable(url: &str, why: impl std::fmt::Display) -> anyhow::Error {
    Failure {
        code: UNREACHABLE,
        message: format!(
            "cannot reach the server at {url} ({why}); nothing was changed here: check the address and that the server runs, then try again"
        ),
    }
    .into()
}

/// The server at `url` refused the token.
pub fn refused(url: &str) -> anyhow::Error {
    Failure {
        code: REFUSED,
        message: format!(
            "the server at {url} refused this device's token (unknown or revoked); nothing was changed here: link this device again (`nudge device link` on a linked one, then `nudge join`), or `nudge remote remove` and `nudge remote add {url}` with a new token"
        ),
    }
    .into()
}

/// The connection to `url` broke off mid-way.
pub fn broke(url: &str, why: impl std::fmt::Display) -> anyhow::Error {
    Failure {
        code: UNREACHABLE,
        message: format!(
            "the connection to {url} broke off ({why}); what arrived is kept: run `nudge sync` again"
        ),
    }
    .into()
}

/// The server ended the sync with a reason of its own (a refusal, a shutdown). A reason
/// that says what to do (after a `;`, as the server's refusals do) is passed on as it is;
/// any other is a connection that broke off.
pub fn ended(url: &str, why: &str) -> anyhow::Error {
    if !why.contains("; ") {
        return broke(url, why);
    }
    Failure {
        code: UNREACHABLE,
        message: format!("the server at {url} stopped the sync: {why}"),
    }
    .into()
}

/// A server's HTTP routes.
pub struct Api<'s> {
    agent: ureq::Agent,
    /// The address as the user gave it (for messages).
    pub url: String,
    /// Where to reach it.
    pub endpoints: Endpoints,
    token: Option<String>,
    /// The session whose store is let go before each call.
    session: Option<&'s Replica>,
}

/// What a route answered that was not a success, for callers that explain it themselves.
pub struct Refusal {
    /// The HTTP status.
    pub status: u16,
    /// The server's one-line reason.
    pub reason: String,
}

impl Api<'static> {
    /// The routes of `remote`'s server, with its token.
    pub fn new(remote: &Remote, endpoints: Endpoints, timeout: Duration) -> Self {
        let mut api = Self::anonymous(&remote.url, endpoints, timeout);
        api.token = Some(remote.token.clone());
        api
    }

    /// The routes of the server at `url`, without a token.
    pub fn anonymous(url: &str, endpoints: Endpoints, timeout: Duration) -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .build()
            .into();
        Self {
            agent,
            url: url.to_owned(),
            endpoints,
            token: None,
            session: None,
        }
    }

    /// The same routes, letting go of `session`'s store before each call.
    pub fn letting_go(self, session: &Replica) -> Api<'_> {
        Api {
            agent: self.agent,
            url: self.url,
            endpoints: self.endpoints,
            token: self.token,
            session: Some(session),
        }
    }
}

impl Api<'_> {
    /// Lets go of the session's store, if this was made [`Api::letting_go`]: before every
    /// HTTP call, and before a websocket connects (`Link::connect`).
    pub fn let_go(&self) -> Result<()> {
        match self.session {
            Some(session) => session.park(),
            None => Ok(()),
        }
    }

    /// The token this client presents.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// Calls a route; `Ok(Err(_))` is an answer other than success, 401 and 404-at-the-root
    /// (those become exit codes 4 and 3).
    pub fn call(
        &self,
        method: &str,
        route: &str,
        body: Option<Value>,
    ) -> Result<Result<Value, Refusal>> {
        self.let_go()?;
        let url = format!("{}{route}", self.endpoints.http);
        let bearer = self.token.as_ref().map(|t| format!("Bearer {t}"));
        let result = match method {
            "GET" | "DELETE" => {
                let mut request = if method == "GET" {
                    self.agent.get(&url)
                } else {
                    self.agent.delete(&url)
                };
                if let Some(b) = &bearer {
                    request = request.header("Authorization", b);
                }
                request.call()
            }
            _ => {
                let mut request = if method == "PUT" {
                    self.agent.put(&url)
                } else {
                    self.agent.post(&url)
                };
                if let Some(b) = &bearer {
                    request = request.header("Authorization", b);
                }
                request
                    .header("Content-Type", "application/json")
                    .send(body.unwrap_or(Value::Null).to_string())
            }
        };
        let mut response = result.map_err(|e| unreachable(&self.url, e))?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .read_to_string()
            .map_err(|e| unreachable(&self.url, e))?;
        if status == 401 {
            return Err(refused(&self.url));
        }
        // Busy or its storage away (a database restarting): as unreachable, so that a
        // watcher tries again instead of giving up.
        if status == 503 {
            return Err(unreachable(
                &self.url,
                format!("it answered 503: {}", text.trim()),
            ));
        }
        if status == 429 {
            return Err(throttled(&self.url));
        }
        if !(200..300).contains(&status) {
            if status == 404 && text.starts_with("no such endpoint") {
                return Err(unreachable(
                    &self.url,
                    "it does not know this route: is it a nudge server of this version?",
                ));
            }
            return Ok(Err(Refusal {
                status,
                reason: text.trim().to_owned(),
            }));
        }
        serde_json::from_str(&text).map(Ok).map_err(|_| {
            anyhow!(
                "the server at {} sent something unexpected: is it a nudge server?",
                self.url
            )
        })
    }

    /// Like [`Api::call`], with any refusal as an error.
    pub fn expect(&self, method: &str, route: &str, body: Option<Value>) -> Result<Value> {
        match self.call(method, route, body)? {
            Ok(value) => Ok(value),
            Err(refusal) => bail!(
                "the server at {} answered {}: {}",
                self.url,
                refusal.status,
                refusal.reason
            ),
        }
    }

    fn journal_of(&self, value: &Value) -> Result<Option<DocumentId>> {
        match value.get("journal") {
            Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.parse().map_err(|_| {
                anyhow!(
                    "the server at {} named a journal with a bad id {s:?}",
                    self.url
                )
            })?)),
            _ => bail!(
                "the server at {} sent something unexpected: is it a nudge server?",
                self.url
            ),
        }
    }

    /// The account's journal, if one is registered.
    pub fn journal(&self) -> Result<Option<DocumentId>> {
        let value = self.expect("GET", "/v1/journal", None)?;
        self.journal_of(&value)
    }

    /// Registers `id` as the account's journal; returns the one that won.
    pub fn register(&self, id: &DocumentId) -> Result<DocumentId> {
        let value = self.expect(
            "PUT",
            "/v1/journal",
            Some(serde_json::json!({ "journal": id.to_string() })),
        )?;
        self.journal_of(&value)?.ok_or_else(|| {
            anyhow!(
                "the server at {} did not register the journal; run `nudge sync` again",
                self.url
            )
        })
    }
}

/// This device's remote and its routes, letting go of `session`'s store before each call;
/// `missing` is the error when none is set.
pub fn connected<'s>(
    session: &'s Replica,
    timeout: Duration,
    missing: &str,
) -> Result<(Remote, Api<'s>)> {
    let Some(remote) = remote::load(session.home())? else {
        bail!("{missing}");
    };
    let endpoints = remote::endpoints(&remote.url)?;
    let api = Api::new(&remote, endpoints, timeout).letting_go(session);
    Ok((remote, api))
}
