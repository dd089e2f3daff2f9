//! A device restored from a copy of its home, while the original went on syncing: the
//! copy's new changes clash with the original's (same actor, same sequence numbers), so
//! the sync moves the copy to a fresh actor, carries its changes over and says so; both
//! devices then converge, and go on syncing.

use crate::util::{Account, Home, files, texts, write_files};

#[test]
fn a_device_restored_from_a_copy_of_its_home_moves_to_a_fresh_actor_and_loses_nothing() {
    let account = Account::start();
    let laptop = account.device();
    laptop.ok(&["add", "Before the backup", "+ux", "@sam"]);
    laptop.ok(&["sync"]);

    // A backup of the home, restored later.
    let backup = files(laptop.path());
    laptop.ok(&["add", "After the backup, on the original"]);
    laptop.ok(&["person", "edit", "sam", "--how", "old colleague"]);
    laptop.ok(&["sync"]);
    let restored = Home::new();
    write_files(restored.path(), &backup);
    restored.ok(&["add", "After the restore", "+pottery"]);
    restored.ok(&["person", "edit", "sam", "--phone", "+44 20 7946 0000"]);

    let said = restored.ok(&["sync"]);
    assert!(said.contains("restored from a copy"), "{said}");
    let doctor = restored.ok(&["doctor"]);
    assert!(doctor.contains("fresh actor"), "{doctor}");
    laptop.ok(&["sync"]);
    let both = texts(&laptop.json(&["export", "--json"]));
    assert_eq!(both.len(), 3, "{both:?}");
    assert_eq!(both, texts(&restored.json(&["export", "--json"])));
    let sam = laptop.json(&["person", "show", "sam", "--json"]);
    assert_eq!(sam["how_known"], "old colleague", "{sam}");
    assert_eq!(sam["contact"]["phone"], "+44 20 7946 0000", "{sam}");

    // From now on the copy is a device like any other: no more moves.
    restored.ok(&["add", "A week later"]);
    let again = restored.ok(&["sync"]);
    assert!(!again.contains("restored"), "{again}");
    laptop.ok(&["sync"]);
    assert!(texts(&laptop.json(&["export", "--json"])).contains(&"A week later".to_owned()));
}
