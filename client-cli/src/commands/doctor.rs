//! `nudge doctor`: check this device's data (`crate::doctor`; it opens the store itself,
//! so it runs before any store opens).

use clap::Args;

/// `nudge doctor`.
#[derive(Args, Debug)]
pub struct DoctorArgs {
    /// Print JSON: {"ok", "checks": [{"part", "ok", "detail", "fix"}]}.
    #[arg(long)]
    pub json: bool,
}
