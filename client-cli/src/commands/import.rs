//! `nudge import`: records from a `nudge export --json` or Taskwarrior's `task export`.

use anyhow::Result;
use clap::Args;
use clap::ValueEnum;
use nudge_replica::Replica;

use crate::output::{Out, count};

/// `import --from` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ImportFrom {
    /// `nudge export --json` of this or another journal.
    Nudge,
    /// Taskwarrior's `task export`: pending tasks become planned shifts, completed ones
    /// done shifts, projects ideas.
    Taskwarrior,
}

/// `nudge import`.
#[derive(Args, Debug)]
pub struct ImportArgs {
    /// The file (`-` reads standard input: task export | nudge import --from taskwarrior -).
    pub file: std::path::PathBuf,
    /// What the file is.
    #[arg(long, value_enum, default_value_t = ImportFrom::Nudge)]
    pub from: ImportFrom,
    /// Say what would be added, change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// `nudge import FILE [--from nudge|taskwarrior] [--dry-run]`.
pub(crate) fn run(session: &Replica, out: &mut Out, args: ImportArgs) -> Result<()> {
    let ImportArgs {
        file,
        from,
        dry_run,
    } = args;
    let file = file.as_path();
    use std::io::Read;

    let stdin = file.as_os_str() == "-";
    let name = if stdin {
        "standard input".to_owned()
    } else {
        file.display().to_string()
    };
    let mut text = String::new();
    let read = if stdin {
        std::io::stdin().read_to_string(&mut text).map(|_| ())
    } else {
        std::fs::File::open(file).and_then(|mut f| f.read_to_string(&mut text).map(|_| ()))
    };
    read.map_err(|e| anyhow::anyhow!("cannot read {name}: {e}"))?;
    let batch = match from {
        ImportFrom::Nudge => nudge_journal::import::from_export(&text),
        ImportFrom::Taskwarrior => nudge_journal::import::from_taskwarrior(&text, &session.now),
    }
    .map_err(|e| anyhow::anyhow!("{name}: {e}; nothing was imported"))?;
    let source = if stdin {
        "stdin".to_owned()
    } else {
        file.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| name.clone())
    };
    let report = if dry_run {
        let mut journal = match session.load_journal()? {
            Some(journal) => journal,
            None => nudge_journal::Journal::create(
                nudge_journal::automerge::ActorId::random(),
                &session.now,
                "dry run",
                "",
            ),
        };
        journal.import(&session.now, &batch, &source)?
    } else {
        let report = session.write(|journal, _| {
            let report = journal.import(&session.now, &batch, &source)?;
            Ok((report, nudge_replica::Touched::All))
        })?;
        // Contact details go to the contacts document, for people that have none yet.
        if !batch.contacts.is_empty() {
            let view = session.require_view()?;
            let have = session
                .load_contacts(&view.catalog)?
                .map(|(_, c)| c.all())
                .unwrap_or_default();
            for (file_id, contact) in &batch.contacts {
                let Some(target) = report.people_map.get(file_id) else {
                    continue;
                };
                if view.catalog.contact(&have, target).is_empty() {
                    super::person::save_contact(session, target, contact)?;
                }
            }
        }
        report
    };
    let verb = if dry_run { "Would import" } else { "Imported" };
    if report.added() == 0 {
        out.line(format!(
            "Nothing new in {name}: {} in the journal already.",
            match report.already {
                1 => "its one record is".to_owned(),
                n => format!("all {n} records are"),
            }
        ));
    } else {
        out.line(format!(
            "{verb} {}, {}, {} from {name}{}.",
            count(report.shifts, "shift", "shifts"),
            count(report.ideas, "idea", "ideas"),
            count(report.people, "person", "people"),
            if report.already > 0 {
                format!(" ({} already here)", report.already)
            } else {
                String::new()
            }
        ));
    }
    for line in &batch.left_out {
        out.line(format!("  left out: {line}"));
    }
    Ok(())
}
