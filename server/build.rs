//! Links `nudge-server` with packed relative relocations (DT_RELR, glibc 2.36 and
//! binutils 2.38 on): the loader then writes far fewer pages of the binary at start, which
//! keeps an idle server 0.1-0.5 MiB smaller (docs/PERFORMANCE.md, "Idle RSS"). The flag
//! needs GNU ld 2.38 or lld 15 on (Debian 12, the machines here, has ld 2.40); builds for
//! other targets than Linux with glibc never get it.

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
