//! `nudge man --out DIR`: man pages, generated from the grammar.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use crate::output::Out;

/// `nudge man`.
#[derive(Args, Debug)]
pub struct ManArgs {
    /// The folder, e.g. ~/.local/share/man/man1 (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// What every page ends with: exit codes, environment, files (docs/cli.md says the same).
const MAN_TAIL: &str = r#".SH "EXIT STATUS"
0 on success; 1 on an error you can fix (one line on stderr says how); 2 on bad usage; 3 when the server cannot be reached or stopped answering; 4 when the server refused the token; 5 when the server is holding back this address after too many failed attempts. A failed command changes nothing.
.SH ENVIRONMENT
.TP
\fBNUDGE_HOME\fR
Where nudge keeps its data (as \fB--home\fR).
.TP
\fBNUDGE_TOKEN\fR
The account's token, for \fBnudge remote add\fR.
.TP
\fBNUDGE_SYNC_TIMEOUT\fR
Seconds a whole sync may take (as \fB--timeout\fR).
.TP
\fBNUDGE_CONFIG\fR
The config file to read instead of the platform's.
.TP
\fBNO_COLOR\fR
No colour with \fB--color auto\fR.
.TP
\fBTZ\fR
The time zone done shifts are counted in.
.SH FILES
.TP
\fI~/.local/share/nudge\fR
The data folder on Linux (the store, the read cache, remote.json and follows.json, mode 0600).
.TP
\fI~/.config/nudge/config.toml\fR
Defaults for colour, week start, weekly goal, remote and device name (\fBnudge config path\fR says where).
"#;

/// Writes `nudge.1` and a page per command (`nudge-sync.1`, `nudge-buddy-invite.1`, ...).
/// `root` is the whole grammar.
pub(crate) fn run(out: &mut Out, args: &ManArgs, root: clap::Command) -> Result<()> {
    let dir = args.out.as_path();
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create {}; pick another --out folder", dir.display()))?;
    let mut written = 0;
    // Built first, so that every command knows its full name (`nudge sync`) and version.
    // No `help` subcommands on paper: each command's page is its help.
    fn without_help(command: clap::Command) -> clap::Command {
        command
            .disable_help_subcommand(true)
            .mut_subcommands(without_help)
    }
    let mut root = without_help(root);
    root.build();
    let mut stack = vec![("nudge".to_owned(), root)];
    while let Some((name, command)) = stack.pop() {
        let command = command.display_name(name.replace('-', " "));
        // Every command listed gets its page, so no SEE ALSO points nowhere.
        for sub in command.get_subcommands() {
            stack.push((format!("{name}-{}", sub.get_name()), sub.clone()));
        }
        let mut page = Vec::new();
        clap_mangen::Man::new(command)
            .title(name.clone())
            .render(&mut page)
            .with_context(|| format!("cannot render the man page for {name}"))?;
        page.extend_from_slice(MAN_TAIL.as_bytes());
        let path = dir.join(format!("{name}.1"));
        std::fs::write(&path, page).with_context(|| {
            format!("cannot write {}; pick another --out folder", path.display())
        })?;
        written += 1;
    }
    out.line(format!(
        "Wrote {written} man pages to {} (try: man -l {}).",
        dir.display(),
        dir.join("nudge.1").display()
    ));
    Ok(())
}
