//! Buffers kept for reuse on the data path, so that a segment in steady
//! state allocates nothing: packet buffers handed back with
//! [`crate::Endpoint::recycle`], and the lists an event's emitted packets
//! are gathered in.

use crate::endpoint::SegmentSummary;

/// The packets one event emitted, with their summaries.
pub(crate) type Emitted = Vec<(Vec<u8>, SegmentSummary)>;

/// The reusable buffers of one endpoint.
#[derive(Clone, Debug, Default)]
pub(crate) struct Spare {
    packets: Vec<Vec<u8>>,
    lists: Vec<Emitted>,
}

/// Buffers of each kind kept at most (the rest are freed).
const KEEP: usize = 64;

impl Spare {
    /// A packet buffer (empty or with a previous packet's allocation).
    pub fn packet(&mut self) -> Vec<u8> {
        self.packets.pop().unwrap_or_default()
    }

    /// Keeps a packet buffer for later output.
    pub fn give_packet(&mut self, packet: Vec<u8>) {
        if self.packets.len() < KEEP {
            self.packets.push(packet);
        }
    }

    /// An empty list for an event's output.
    pub fn list(&mut self) -> Emitted {
        self.lists.pop().unwrap_or_default()
    }

    /// Keeps an emptied list.
    pub fn give_list(&mut self, mut list: Emitted) {
        list.clear();
        if self.lists.len() < KEEP && list.capacity() > 0 {
            self.lists.push(list);
        }
    }
}
