//! `nudge completions SHELL`: shell completions, generated from the grammar.

use anyhow::Result;
use clap::Args;

use crate::output::Out;

/// `nudge completions`.
#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// bash, zsh, fish, elvish or powershell.
    pub shell: clap_complete::Shell,
}

/// `nudge completions`, for the whole grammar `command`: needs no data folder.
pub(crate) fn run(out: &mut Out, args: &CompletionsArgs, mut command: clap::Command) -> Result<()> {
    let mut text = Vec::new();
    clap_complete::generate(args.shell, &mut command, "nudge", &mut text);
    out.line(String::from_utf8_lossy(&text).trim_end());
    Ok(())
}
