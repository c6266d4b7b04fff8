//! Gives libpanns.so its SONAME, `libpanns.so.MAJOR` (e.g. `libpanns.so.1`): programs
//! linked against it load any later 1.x release, and a 2.0 can be installed beside it.
//! `scripts/build-lib.sh` installs the versioned file names and symlinks.

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if matches!(
        os.as_str(),
        "linux" | "android" | "freebsd" | "netbsd" | "openbsd"
    ) {
        let major = env!("CARGO_PKG_VERSION_MAJOR");
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libpanns.so.{major}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
