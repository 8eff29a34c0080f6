//! Embeds the libtorch library folder as an rpath, so that binaries and tests run without LD_LIBRARY_PATH.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    let Some(libtorch) = std::env::var_os("LIBTORCH") else {
        println!("cargo:warning=LIBTORCH is not set; run scripts/setup.sh first");
        return;
    };
    let lib = PathBuf::from(libtorch).join("lib");
    // The canonical path keeps working if the checkout's .libtorch link is later replaced.
    let lib = lib.canonicalize().unwrap_or(lib);
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
}
