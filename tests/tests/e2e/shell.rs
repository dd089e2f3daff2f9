//! Shell integration: completions and man pages from the same clap definitions.

use crate::util::Home;

#[test]
fn completions_for_every_shell_name_the_commands() {
    let home = Home::new();
    for (shell, marker) in [
        ("bash", "complete -F _nudge"),
        ("zsh", "#compdef nudge"),
        ("fish", "complete -c nudge"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let script = home.ok(&["completions", shell]);
        assert!(script.contains(marker), "{shell}: no {marker:?}");
        for command in ["add", "sync", "buddy", "follow", "doctor"] {
            assert!(script.contains(command), "{shell}: {command} missing");
        }
    }
    // Options with a fixed set of values complete those values, not file names.
    let bash = home.ok(&["completions", "bash"]);
    for values in [
        "counts titles full",
        "to_contact reached_out talking met dormant",
        "weekly_goal week_start display_name device.name color",
    ] {
        assert!(bash.contains(values), "bash does not complete {values:?}");
    }
    assert!(bash.contains("email call"), "bash does not complete --kind");
    // An unknown shell is a usage error, and no data folder was needed for any of it.
    let err = home.fails(2, &["completions", "tcsh"]);
    assert!(err.contains("possible values"), "{err}");
    assert!(!home.path().join("store").exists());
    // The values are still read as before: any case.
    home.ok(&["add", "Email Sam", "--kind", "EMAIL"]);
}

#[test]
fn man_pages_cover_every_command() {
    let home = Home::new();
    let dir = home.path().join("man1");
    let said = home.ok(&["man", "--out", dir.to_str().unwrap()]);
    assert!(said.starts_with("Wrote "), "{said}");
    for page in [
        "nudge.1",
        "nudge-sync.1",
        "nudge-buddy-invite.1",
        "nudge-idea-drop.1",
    ] {
        let text =
            std::fs::read_to_string(dir.join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(text.contains(".TH"), "{page} is not a man page");
    }
    let sync = std::fs::read_to_string(dir.join("nudge-sync.1")).unwrap();
    assert!(sync.contains("watch"), "{sync}");
    // The full name in the synopsis, the version, and the sections a man page has.
    let synopsis = sync.split(".SH SYNOPSIS").nth(1).unwrap_or_default();
    assert!(
        synopsis.trim_start().starts_with("\\fBnudge sync\\fR"),
        "{sync}"
    );
    for section in [
        ".SH VERSION",
        ".SH \"EXIT STATUS\"",
        ".SH ENVIRONMENT",
        ".SH FILES",
    ] {
        assert!(sync.contains(section), "no {section} in nudge-sync.1");
    }
    // Every page another page points to exists.
    for entry in std::fs::read_dir(&dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for (i, _) in text.match_indices("(1)") {
            let before = &text[..i];
            let start = before
                .rfind(|c: char| c.is_whitespace() || c == 'B')
                .map_or(0, |s| s + 1);
            let name = before[start..].replace("\\fR", "").replace("\\-", "-");
            if name.starts_with("nudge") {
                assert!(
                    dir.join(format!("{name}.1")).exists(),
                    "a page points to {name}(1)"
                );
            }
        }
    }
    // A folder that cannot be made: one line, exit 1.
    let file = home.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let err = home.fails(1, &["man", "--out", file.join("sub").to_str().unwrap()]);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("pick another --out folder"), "{err}");
}

#[test]
fn the_config_file_gives_defaults_and_its_mistakes_are_one_line() {
    let home = Home::new();
    // `config path` names the file (here NUDGE_CONFIG), whether or not it exists.
    let path = home.ok(&["config", "path"]);
    assert_eq!(path.trim(), home.config_path().to_str().unwrap());
    assert!(!home.config_path().exists());
    // Without NUDGE_CONFIG it is the platform's config folder.
    let out = home
        .cmd()
        .env_remove("NUDGE_CONFIG")
        .env("XDG_CONFIG_HOME", home.path().join("xdg"))
        .args(["config", "path"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .ends_with("xdg/nudge/config.toml"),
        "{out:?}"
    );

    std::fs::write(
        home.config_path(),
        "# my defaults\ncolor = \"never\"\nweek_start = \"sunday\"\nweekly_goal = 7\n\
         remote = \"http://127.0.0.1:9\"\ndevice_name = \"kitchen laptop\"\n",
    )
    .unwrap();
    // A journal created here starts with the file's settings; the device takes its name.
    home.new_id(&["add", "Email Sam"]);
    assert_eq!(home.ok(&["config", "get", "week_start"]).trim(), "sunday");
    assert_eq!(home.ok(&["config", "get", "weekly_goal"]).trim(), "7");
    assert_eq!(
        home.ok(&["config", "get", "device.name"]).trim(),
        "kitchen laptop"
    );
    assert_eq!(home.ok(&["config", "get", "color"]).trim(), "never");
    let week = home.json(&["week", "--json"]);
    assert_eq!(week["weeks"][0]["goal"], 7, "{week}");
    assert_eq!(
        week["weeks"][0]["days"][0]["date"], "2026-11-22",
        "a Sunday: {week}"
    );
    // This device's own setting wins over the file; the journal's settings are the
    // journal's once it exists.
    home.ok(&["config", "set", "device.name", "laptop"]);
    assert_eq!(home.ok(&["config", "get", "device.name"]).trim(), "laptop");
    home.ok(&["config", "set", "weekly_goal", "9"]);
    assert_eq!(home.ok(&["config", "get", "weekly_goal"]).trim(), "9");
    // `remote add` without a URL takes the file's remote.
    let out = home
        .cmd()
        .args(["remote", "add"])
        .env(
            "NUDGE_TOKEN",
            "nudge_acct_0123456789ab_".to_owned() + &"a".repeat(64),
        )
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let shown = home.json(&["remote", "show", "--json"]);
    assert_eq!(shown["url"], "http://127.0.0.1:9", "{shown}");

    // A mistake: one line naming the file and the line, every command refuses, data kept;
    // `config path` still answers.
    let before = home.ok(&["export", "--json"]);
    std::fs::write(
        home.config_path(),
        "color = \"never\"\ncolour = \"always\"\n",
    )
    .unwrap();
    let err = home.fails(1, &["list"]);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("line 2") && err.contains("colour"), "{err}");
    assert!(err.contains(home.config_path().to_str().unwrap()), "{err}");
    home.ok(&["config", "path"]);
    std::fs::write(home.config_path(), "weekly_goal = 0\n").unwrap();
    let err = home.fails(1, &["list"]);
    assert!(err.contains("weekly_goal"), "{err}");
    std::fs::remove_file(home.config_path()).unwrap();
    assert_eq!(home.ok(&["export", "--json"]), before);
}

#[test]
fn color_never_and_always_reach_help_and_global_options_have_their_heading() {
    let home = Home::new();
    let plain = home.ok(&["--color", "never", "--help"]);
    assert!(!plain.contains('\u{1b}'), "{plain:?}");
    assert!(plain.contains("Global options:"), "{plain}");
    let coloured = home.ok(&["--color=always", "sync", "--help"]);
    assert!(coloured.contains('\u{1b}'), "{coloured:?}");
}

#[test]
fn help_groups_the_commands_and_shows_examples() {
    let home = Home::new();
    let help = home.ok(&["--help"]);
    for heading in [
        "Shifts:",
        "Ideas and people:",
        "Sync and sharing:",
        "Setup:",
        "Global options:",
        "Examples:",
        "Usage: nudge [OPTIONS] <COMMAND>",
    ] {
        assert!(help.contains(heading), "no {heading:?} in\n{help}");
    }
    for command in [
        "add", "done", "week", "idea", "sync", "buddy", "doctor", "man",
    ] {
        assert!(
            help.lines()
                .any(|l| l.trim_start().starts_with(&format!("{command} "))),
            "{command} is not listed"
        );
    }
    assert!(home.ok(&["done", "--help"]).contains("Examples:"));
    // The commands hidden from the list still parse, and typos still get a suggestion.
    let err = home.fails(2, &["sinc"]);
    assert!(err.contains("'sync'"), "{err}");
}

/// What the shell would be offered for `words` (the last one being typed), asked the way
/// fish asks: `COMPLETE=fish nudge -- nudge WORDS`; one value per line.
fn offered(home: &Home, words: &[&str]) -> Vec<String> {
    let out = home
        .std_cmd()
        .env("COMPLETE", "fish")
        .arg("--")
        .arg("nudge")
        .args(words)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.split('\t').next().unwrap().to_owned())
        .filter(|v| !v.starts_with("--"))
        .collect()
}

#[test]
fn completion_offers_ideas_people_shift_ids_from_the_journal() {
    let home = Home::new();
    // Before there is a journal: nothing offered, nothing said, and nothing created.
    assert!(offered(&home, &["done", ""]).is_empty());
    assert!(!home.path().join("store").exists());

    let planned = home.new_id(&["add", "Email Sam about UX roles", "+ux", "@sam"]);
    let made = home.new_id(&["add", "Find one pottery class", "+pottery"]);
    home.ok(&["done", &made]);
    home.ok(&["person", "add", "Priya Raman"]);

    let ids = offered(&home, &["done", ""]);
    assert_eq!(ids.len(), 1, "only the planned shift: {ids:?}");
    assert!(planned.starts_with(&ids[0]), "{ids:?} for {planned}");
    assert_eq!(offered(&home, &["show", ""]).len(), 2);
    assert_eq!(offered(&home, &["add", "Call", "+p"]), ["+pottery"]);
    assert_eq!(
        offered(&home, &["log", "Call", "@"]),
        ["@Priya Raman", "@sam"]
    );
    assert_eq!(offered(&home, &["idea", "drop", ""]), ["pottery", "ux"]);
    assert_eq!(offered(&home, &["person", "show", "P"]), ["Priya Raman"]);
    // Through --home as typed, not only the environment.
    let elsewhere = Home::new();
    let typed = home.path().to_str().unwrap();
    let out = elsewhere
        .std_cmd()
        .env("COMPLETE", "fish")
        .args(["--", "nudge", "--home", typed, "idea", "park", "u"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("ux"),
        "{out:?}"
    );
}
