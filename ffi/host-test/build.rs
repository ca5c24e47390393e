//! Compiles the C worker library the Rust-host test drives through the ABI.
fn main() {
    println!("cargo:rerun-if-changed=c/worker.c");
    println!("cargo:rerun-if-changed=c/readme_example.c");
    println!("cargo:rerun-if-changed=../include/boundflow.h");
    cc::Build::new()
        .file("c/worker.c")
        .file("c/readme_example.c")
        .include("../include")
        .flag("-pthread")
        .warnings(true)
        .extra_warnings(true)
        .compile("boundflow_c_worker");
}
