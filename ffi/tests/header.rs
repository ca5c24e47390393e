//! The committed header is what cbindgen makes of the crate now: CI fails when it is stale.
//! `BOUNDFLOW_BLESS=1 cargo test -p boundflow-ffi --test header` rewrites it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::Path;

#[test]
fn header_is_current() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).unwrap();
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen reads the crate")
        .write(&mut generated);
    let generated = String::from_utf8(generated).unwrap();
    let path = crate_dir.join("include").join("boundflow.h");
    if std::env::var_os("BOUNDFLOW_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "ffi/include/boundflow.h is stale: run `BOUNDFLOW_BLESS=1 cargo test -p boundflow-ffi --test header` and commit it"
    );
}
