//! The C worker library (`c/worker.c`), as the Rust-host test calls it. Its pthreads call
//! boundflow's C ABI, resolved against `boundflow-ffi` at link time, as a C worker would.
#![allow(unsafe_code)] // Declares the C functions.

pub use boundflow_ffi;

unsafe extern "C" {
    /// Starts `threads` pthreads that each send `per_thread` 8-byte messages
    /// (`thread << 32 | sequence`) through `sender` with `boundflow_send_timeout`, joins them,
    /// and returns the first status that was not OK (or OK). `timeouts` gets the number of
    /// sends that timed out and were tried again.
    pub fn worker_produce(sender: u64, threads: u32, per_thread: u32, timeouts: *mut u64) -> i32;

    /// Starts `threads` pthreads that take work from `work` with `boundflow_recv_many` and send
    /// each item back through `results`, until `work` is closed and drained; joins them and
    /// returns the first status that was not OK (or OK). `handled` gets the items handled.
    pub fn worker_serve(work: u64, results: u64, threads: u32, handled: *mut u64) -> i32;

    /// The README's C example (`c/readme_example.c`): 0 when its send succeeded.
    pub fn readme_example(config_dir: *const std::ffi::c_char) -> i32;
}
