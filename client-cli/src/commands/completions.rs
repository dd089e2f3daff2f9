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

/// `nudge completions`: needs no data folder.
pub(crate) fn run(out: &mut Out, args: &CompletionsArgs) -> Result<()> {
    let mut command = <crate::cli::Cli as clap::CommandFactory>::command();
    let mut text = Vec::new();
    clap_complete::generate(args.shell, &mut command, "nudge", &mut text);
    out.line(String::from_utf8_lossy(&text).trim_end());
    Ok(())
}
