//! What the FFI integration tests share: the last error as a string, and a registry on the
//! shipped presets' `test` environment.
#![allow(dead_code, clippy::unwrap_used)] // Each test file uses some of these.
#![allow(unsafe_code)] // Calls the C ABI.

use std::ffi::{CStr, CString};

use boundflow_ffi::*;

/// This thread's last error message.
pub fn last_error() -> String {
    // SAFETY: the library returns a valid NUL-terminated string.
    unsafe { CStr::from_ptr(boundflow_last_error()) }
        .to_string_lossy()
        .into_owned()
}

/// The shipped presets' directory.
pub fn presets() -> CString {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/presets");
    CString::new(dir.to_str().unwrap()).unwrap()
}

/// A registry on the presets' `test` environment.
pub fn registry() -> u64 {
    let (dir, env) = (presets(), c"test");
    let mut registry = 0;
    // SAFETY: valid strings and out-pointer.
    let status = unsafe { boundflow_registry_open(dir.as_ptr(), env.as_ptr(), &mut registry) };
    assert_eq!(status, BOUNDFLOW_OK, "{}", last_error());
    registry
}
