//! The server's inbound path (`nudge_protocol::fuzzing::inbound`): any bytes a peer sends.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    nudge_protocol::fuzzing::inbound(data);
});
