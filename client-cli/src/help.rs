//! `nudge --help`: the commands in groups (shifts; ideas and people; sync and sharing;
//! setup) with a few examples, instead of one list of thirty. The groups name commands;
//! each command's one-line description still comes from its clap definition, and a test
//! checks that every command is in exactly one group.

/// The groups, in the order `--help` shows them.
pub(crate) const GROUPS: &[(&str, &[&str])] = &[
    (
        "Shifts",
        &[
            "next", "add", "log", "done", "shrink", "skip", "drop", "edit", "rm", "undo", "list",
            "show", "week", "review", "pause", "history",
        ],
    ),
    ("Ideas and people", &["idea", "person", "suggest"]),
    (
        "Sync and sharing",
        &[
            "remote",
            "sync",
            "status",
            "device",
            "join",
            "buddy",
            "follow",
            "following",
            "cheer",
            "cheers",
            "unfollow",
        ],
    ),
    (
        "Setup",
        &[
            "export",
            "import",
            "config",
            "doctor",
            "completions",
            "man",
            "help",
        ],
    ),
];

/// A few commands to start from, and what each does.
const EXAMPLES: &[(&str, &str)] = &[
    (
        r#"nudge add "Draft email to Sam about UX roles" +ux @sam"#,
        "plan a five-minute shift",
    ),
    (
        r#"nudge done 3f2a --little-yes "Sam offered an intro""#,
        "mark it done (any 4+ id prefix)",
    ),
    (
        r#"nudge log "Called Priya" +teaching --at "yesterday 5pm""#,
        "record one already made",
    ),
    ("nudge week", "this week against the goal"),
    (
        r#"nudge idea drop teaching --note "not for me""#,
        "a door closed: a relief",
    ),
    ("nudge sync", "exchange changes with the server"),
    (
        "nudge buddy invite Jo --scope titles",
        "a read-only link for a buddy",
    ),
];

fn examples() -> String {
    let width = EXAMPLES.iter().map(|(c, _)| c.len()).max().unwrap_or(0);
    let mut text = String::from("Examples:\n");
    for (command, what) in EXAMPLES {
        text.push_str(&format!("  {command:<width$}  {what}\n"));
    }
    text.push_str("\n`nudge COMMAND --help` says more; `nudge man --out DIR` writes man pages.");
    text
}

/// `root` with its help showing the commands in [`GROUPS`] and the examples.
pub(crate) fn grouped(root: clap::Command) -> clap::Command {
    let width = root
        .get_subcommands()
        .map(|c| c.get_name().len())
        .max()
        .unwrap_or(0);
    let mut text = String::new();
    for (title, names) in GROUPS {
        text.push_str(&format!("{title}:\n"));
        for name in *names {
            let about = root
                .find_subcommand(name)
                .and_then(|c| c.get_about())
                .map(|a| a.to_string())
                .unwrap_or_else(|| "Print this message or the help of the given command".into());
            text.push_str(&format!("  {name:<width$}  {}\n", headline(&about)));
        }
        text.push('\n');
    }
    // The commands are listed above, in groups; the options keep their headings. Hidden
    // from this help only: completions and man pages are made from a command of their own.
    root.mut_subcommands(|c| c.hide(true))
        .override_usage("nudge [OPTIONS] <COMMAND>")
        .help_template(
            "{about-with-newline}\n{usage-heading} {usage}\n\n{before-help}{all-args}\n{after-help}",
        )
        .before_help(text)
        .after_help(examples())
}

/// A command's description up to its first example or aside, so that a line fits.
fn headline(about: &str) -> String {
    let first = about.lines().next().unwrap_or_default();
    let cut_at = |text: &str, seps: &[&str]| {
        let cut = seps
            .iter()
            .filter_map(|sep| text.find(sep))
            .min()
            .unwrap_or(text.len());
        text[..cut].trim_end_matches(['.', ',']).to_owned()
    };
    let mut short = cut_at(first, &[": nudge ", " ("]);
    if short.chars().count() > 76 {
        short = cut_at(&short, &[": "]);
    }
    if short.chars().count() <= 76 {
        short.to_owned()
    } else {
        let mut kept: String = short.chars().take(75).collect();
        kept.push('…');
        kept
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_is_in_exactly_one_group() {
        let root = <crate::cli::Cli as clap::CommandFactory>::command();
        let mut listed: Vec<&str> = GROUPS
            .iter()
            .flat_map(|(_, names)| names.iter().copied())
            .collect();
        listed.sort();
        let mut commands: Vec<String> = root
            .get_subcommands()
            .map(|c| c.get_name().to_owned())
            .chain(["help".to_owned()])
            .collect();
        commands.sort();
        assert_eq!(listed, commands);
    }

    #[test]
    fn headlines_stop_before_examples_and_asides() {
        assert_eq!(
            headline("Plan a micro shift: nudge add \"x\""),
            "Plan a micro shift"
        );
        assert_eq!(
            headline("Write man pages (nudge.1 and more)"),
            "Write man pages"
        );
        assert_eq!(headline("Mark a shift done"), "Mark a shift done");
        assert_eq!(headline("Ideas: the hunches"), "Ideas: the hunches");
        assert!(headline(&"x".repeat(200)).chars().count() <= 76);
    }
}
