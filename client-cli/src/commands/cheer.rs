//! `nudge cheer NAME "text"`: a short cheer to someone this device follows. It goes to
//! their server with the share's link (`POST /v1/shares/<token>/cheers`), which checks it
//! and keeps it in the share's cheers document; their journal is never touched.

use anyhow::{Result, anyhow, bail};
use clap::Args;
use nudge_replica::Replica;
use serde_json::json;

use crate::api::{Api, Failure, THROTTLED};
use crate::output::Out;
use crate::remote;
use crate::sync::follows::{follows, mark_revoked};

/// `nudge cheer`.
#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  nudge cheer ana \"Great week!\"\n  nudge cheer ana \"That call took guts. Proud of you.\""
)]
pub struct CheerArgs {
    /// Whom (as `nudge following` lists them).
    pub name: String,
    /// What to say (at most 500 characters).
    pub text: String,
    /// Seconds to wait for the server.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub timeout: u64,
    /// Print JSON: {"id", "text", "at"}.
    #[arg(long)]
    pub json: bool,
}

/// `cheer`.
pub(crate) fn run(session: &Replica, out: &mut Out, args: CheerArgs) -> Result<()> {
    let text = nudge_journal::cheers::check(&args.text)?;
    let all = follows(session.home())?;
    let f = all.get(&args.name).ok_or_else(|| {
        anyhow!(
            "this device follows no one called {:?}; `nudge following` lists them",
            args.name
        )
    })?;
    if f.revoked {
        bail!(
            "{} stopped sharing with you, so a cheer cannot reach them",
            args.name
        );
    }
    let api = Api::anonymous(
        &f.url,
        remote::endpoints(&f.url)?,
        std::time::Duration::from_secs(args.timeout.max(1)),
    )
    .letting_go(session);
    let answer = match api.call(
        "POST",
        &format!("/v1/shares/{}/cheers", f.token),
        Some(json!({ "text": text })),
    ) {
        Ok(answer) => answer,
        Err(e)
            if e.downcast_ref::<Failure>()
                .is_some_and(|x| x.code == THROTTLED) =>
        {
            return Err(Failure {
                code: THROTTLED,
                message: format!(
                    "the server at {} takes at most 10 cheers an hour from one share; nothing was sent: try again later",
                    f.url
                ),
            }
            .into());
        }
        Err(e) => return Err(e),
    };
    let sent = match answer {
        Ok(sent) => sent,
        Err(refusal) if refusal.status == 404 => {
            mark_revoked(session.home(), &args.name)?;
            bail!(
                "{} stopped sharing with you (the link was revoked), so a cheer cannot reach them",
                args.name
            );
        }
        Err(refusal) => bail!("the cheer was not sent: {}", refusal.reason),
    };
    if args.json {
        return out.json(&json!({
            "id": sent["id"],
            "text": sent["text"],
            "at": sent["at_ms"].as_i64().map(nudge_journal::when::rfc3339),
        }));
    }
    out.line(format!("Cheered {}: \"{text}\"", args.name));
    Ok(())
}
