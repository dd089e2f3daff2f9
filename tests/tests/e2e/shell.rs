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
    // An unknown shell is a usage error, and no data folder was needed for any of it.
    let err = home.fails(2, &["completions", "tcsh"]);
    assert!(err.contains("possible values"), "{err}");
    assert!(!home.path().join("store").exists());
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
    // A folder that cannot be made: one line, exit 1.
    let file = home.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let err = home.fails(1, &["man", "--out", file.join("sub").to_str().unwrap()]);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("pick another --out folder"), "{err}");
}
