//! Manifest text (any bytes) through parsing and validation; see fuzz/src/lib.rs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| reconcile_fuzz::check_bytes(data));
