//! End-to-end tests: the real `nudge` binary, temporary homes, real sled files.
//! `cargo test --workspace` builds the binary first (see `client-cli/tests/binary.rs`).

mod backup;
mod browser;
mod buddy;
mod cli_errors;
mod cli_journal;
mod crash;
mod damage;
mod devices;
mod disk_full;
mod faults;
mod first_hour;
mod floods;
mod hostile_memory;
mod import;
mod install;
mod interop;
mod let_go;
mod method;
mod operator;
mod postgres;
mod progress;
mod proxy;
mod quota;
mod readme;
mod restored;
mod samod;
mod security;
mod server;
mod server_lifecycle;
mod share_history;
mod shell;
mod sync;
mod talkative;
mod util;
mod watch;
