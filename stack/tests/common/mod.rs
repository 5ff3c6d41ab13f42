//! Helpers shared by the stack's integration tests.

use tcp_stack::{Endpoint, Instant};

/// Moves packets both ways between two endpoints, with no loss, until
/// both are quiet.
pub fn pump(a: &mut Endpoint, b: &mut Endpoint, now: Instant) {
    loop {
        let mut moved = false;
        while let Some(p) = a.poll_transmit(now) {
            b.handle_packet(now, &p);
            moved = true;
        }
        while let Some(p) = b.poll_transmit(now) {
            a.handle_packet(now, &p);
            moved = true;
        }
        if !moved {
            return;
        }
    }
}
