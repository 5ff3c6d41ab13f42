//! SACK on a connection: the scoreboard fed from arriving ACKs and the
//! loss recovery of RFC 6675 §5 (entry on DupThresh duplicates or on
//! `IsLost`, pipe-limited sending of `NextSeg`, exit at the recovery
//! point). The routines themselves live in `crate::recovery`.

use super::{Conn, Ctx};
use crate::conn::Cause;
use crate::packet::SegmentIn;
use crate::recovery::{Next, DUP_THRESH};
use crate::seq::SeqNum;
use tcp_spec::{AckClass, SegmentEvent};

impl Conn {
    /// `Update()` (RFC 6675 §4) with the blocks of an acceptable ACK:
    /// returns whether it SACKed octets not SACKed before.
    pub(super) fn sack_update(&mut self, seg: &SegmentIn<'_>, ev: &SegmentEvent) -> bool {
        if !self.sack_ok || (seg.options.sack_blocks.is_empty() && self.sack.is_empty()) {
            return false;
        }
        let una = match ev.ack {
            AckClass::New | AckClass::FinAcked => seg.ack,
            AckClass::Dup => self.snd_una,
            _ => return false,
        };
        self.sack
            .update(una, self.snd_nxt, &seg.options.sack_blocks)
    }

    /// A cumulative acknowledgment moved SND.UNA to `ack`: recovery ends
    /// once it covers the recovery point (RFC 6675 §5 (A)).
    pub(super) fn sack_new_ack(&mut self, ack: SeqNum) {
        self.sack.on_cumulative(ack);
    }

    /// An ACK at SND.UNA with SACK in use. It counts as a duplicate when
    /// it SACKs new data (RFC 6675 §2), or, without blocks, by the
    /// classic rule of RFC 5681 §2 (no data, same window). The third
    /// duplicate, or an `IsLost(SND.UNA)` scoreboard, starts recovery
    /// (RFC 6675 §5 steps 3–4); within recovery the pipe-limited sending
    /// of step (C) follows in [`Conn::output`].
    pub(super) fn sack_dup_ack(
        &mut self,
        ctx: &mut Ctx<'_>,
        seg: &SegmentIn<'_>,
        wnd: u32,
        sacked_new: bool,
    ) {
        let pure = seg.payload.is_empty() && !seg.flags.syn && !seg.flags.fin;
        let probing = self.snd_wnd == 0 || self.probe_outstanding;
        let classic = seg.options.sack_blocks.is_empty() && wnd == self.snd_wnd;
        let outstanding = self.snd_una != self.snd_nxt;
        if !(pure && outstanding && !probing && (sacked_new || classic)) {
            if !pure || (wnd != self.snd_wnd && !sacked_new) {
                self.dupacks = 0;
            }
            return;
        }
        self.dupacks = self.dupacks.saturating_add(1);
        let smss = u32::from(self.snd_mss);
        let lost = self.sack.is_lost(self.snd_una, smss);
        if self.sack.in_recovery
            || !(self.dupacks >= DUP_THRESH || lost)
            || !self.cc.may_enter_sack_recovery(self.snd_una)
        {
            return;
        }
        // Step 4: the recovery point, ssthresh = cwnd = FlightSize / 2,
        // and the first segment from SND.UNA again at once.
        self.cc
            .enter_sack_recovery(self.flight(), self.snd_nxt, smss);
        self.sack.enter(self.snd_una, self.snd_nxt);
        ctx.stats.recoveries = ctx.stats.recoveries.saturating_add(1);
        ctx.stats.fast_retransmits = ctx.stats.fast_retransmits.saturating_add(1);
        self.rtt_probe = None; // Karn (RFC 6298 §3)
        let hole_end = self.sack.first_hole_end(self.snd_una, self.snd_nxt);
        let una = self.snd_una;
        let end = self.retransmit_range(ctx, una, hole_end, Cause::FastRetransmit);
        self.sack.retransmitted(una, end, self.snd_nxt, false);
    }

    /// Step (C) of RFC 6675 §5: while cwnd exceeds the pipe by a segment,
    /// send what `NextSeg()` picks (a lost hole, new data within the
    /// peer's window, a hole not yet lost, or the rescue retransmission),
    /// counting each segment into the pipe; then the probe timeout
    /// (`Conn::tlp_schedule`, RFC 8985 §7.2).
    pub(super) fn sack_transmit(&mut self, ctx: &mut Ctx<'_>) {
        let smss = u32::from(self.snd_mss);
        let mut pipe = self.recovery_pipe(ctx);
        while pipe.saturating_add(smss) <= self.cc.cwnd {
            let rwnd_end = self.snd_una + self.snd_wnd;
            let new_data =
                !self.fin_sent && self.data_end().gt(self.snd_nxt) && rwnd_end.gt(self.snd_nxt);
            match self
                .sack
                .next_seg(self.snd_una, self.snd_nxt, smss, new_data)
            {
                Next::Retransmit { seq, end, rescue } => {
                    let after = self.retransmit_range(ctx, seq, end, Cause::Recovery);
                    if !after.gt(seq) {
                        break;
                    }
                    self.rtt_probe = None; // Karn (RFC 6298 §3)
                                           // Driven by acknowledgments, not the timer.
                    ctx.stats.fast_retransmits = ctx.stats.fast_retransmits.saturating_add(1);
                    self.sack.retransmitted(seq, after, self.snd_nxt, rescue);
                    pipe = pipe.saturating_add(after.since(seq));
                }
                Next::NewData => match self.send_new_segment(ctx, rwnd_end) {
                    0 => break,
                    n => pipe = pipe.saturating_add(n),
                },
                Next::Nothing => break,
            }
        }
        self.tlp_schedule(ctx);
    }
}
