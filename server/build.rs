//! Links `nudge-server` with packed relative relocations (DT_RELR, glibc 2.36 and
//! binutils 2.38 on): the loader then writes far fewer pages of the binary at start, which
//! keeps an idle server about 0.25 MiB smaller (docs/PERFORMANCE.md, "Idle RSS"). Older
//! GNU linkers ignore the flag with a warning; other systems never get it.

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
