//! RACK-TLP (RFC 8985) on a connection that uses SACK: the records fed
//! from what is sent and acknowledged, recovery entered on a loss RACK
//! finds, and the one timer shared by the retransmission timeout, the
//! reordering timeout (§6.2 step 6) and the probe timeout (§7.2), as
//! RFC 8985 §7.2 and §6.2 arm them in place of the RTO. The rules live in
//! `crate::rack`.

use super::{Conn, Ctx};
use crate::congestion::Phase;
use crate::conn::Cause;
use crate::packet::SegmentIn;
use crate::rack::pto_us;
use crate::recovery::Next;

/// What the connection's single retransmission timer stands for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum TimerKind {
    /// The retransmission (or persist) timeout, RFC 6298 §5.
    #[default]
    Rto,
    /// RACK's reordering timeout (RFC 8985 §6.2 step 6).
    Reorder,
    /// TLP's probe timeout (RFC 8985 §7.2).
    Probe,
}

impl Conn {
    /// The pipe of RFC 6675 §5 step (C): from RACK's records when RACK is
    /// on (`crate::rack::Rack::pipe`), `SetPipe()` otherwise.
    pub(super) fn recovery_pipe(&self, ctx: &Ctx<'_>) -> u32 {
        if self.rack_on(ctx) {
            self.rack.pipe(self.snd_nxt)
        } else {
            let smss = u32::from(self.snd_mss);
            self.sack.pipe(self.snd_una, self.snd_nxt, smss)
        }
    }

    /// RACK-TLP is on: configured and SACK in use on this connection.
    pub(super) fn rack_on(&self, ctx: &Ctx<'_>) -> bool {
        ctx.p.rack && self.sack_ok
    }

    /// Data `[seq, end)` went out (new or again): RACK's records.
    pub(super) fn rack_sent(
        &mut self,
        ctx: &Ctx<'_>,
        seq: crate::seq::SeqNum,
        end: crate::seq::SeqNum,
    ) {
        if self.rack_on(ctx) {
            self.rack.sent(seq, end, ctx.now);
        }
    }

    /// The running timer is the retransmission timeout (not a RACK or TLP
    /// timer): only its expiry counts against the retry limit.
    pub fn timer_is_rto(&self) -> bool {
        self.rtx_kind == TimerKind::Rto
    }

    /// An acceptable ACK was processed (`advanced`: it moved SND.UNA): RACK
    /// learns what it delivered (RFC 8985 §6.2 steps 1–3), the TLP episode
    /// may end (§7.4), and segments sent before the most recently delivered
    /// one are marked lost once their reordering window has passed (steps
    /// 4–6). A loss outside recovery starts SACK recovery (RFC 6675 §5 step
    /// 4 with RACK's test in place of DupThresh, RFC 8985 §9.1); the lost
    /// ranges go first in `NextSeg()`.
    pub(super) fn rack_on_ack(&mut self, ctx: &mut Ctx<'_>, seg: &SegmentIn<'_>, advanced: bool) {
        if !self.rack_on(ctx) {
            return;
        }
        let blocks = seg.options.sack_blocks;
        self.rack.on_ack(ctx.now, self.snd_una, blocks.as_slice());
        self.tlp_on_ack(seg, advanced);
        self.rack_detect(ctx);
    }

    /// The end of a TLP episode (RFC 8985 §7.4.2) once the ACK reaches the
    /// probe's end: a probe of new data needs nothing more; a probe that
    /// sent the last segment again was redundant when the ACK reports that
    /// segment as a duplicate (a D-SACK, RFC 2883) or is a duplicate ACK
    /// without SACK blocks (both copies arrived); it repaired a loss when
    /// the ACK goes beyond it without such a report, and cwnd then falls
    /// as for one loss. An ACK of exactly the probe's end without a D-SACK
    /// says neither, and the episode waits for the next one.
    fn tlp_on_ack(&mut self, seg: &SegmentIn<'_>, advanced: bool) {
        let Some((end, is_retrans)) = self.rack.tlp else {
            return;
        };
        if self.snd_una.lt(end) {
            return;
        }
        let blocks = &seg.options.sack_blocks;
        let redundant = blocks.dsack(seg.ack).is_some_and(|(_, r)| r == end)
            || (!advanced && blocks.is_empty());
        if !is_retrans || redundant {
            self.rack.tlp = None;
        } else if seg.ack.gt(end) {
            self.rack.tlp = None;
            if self.cc.phase == Phase::Open {
                let smss = u32::from(self.snd_mss);
                self.cc.reduce_once(smss);
            }
        }
    }

    /// Loss detection (RFC 8985 §6.2 steps 4–6) and its consequences.
    fn rack_detect(&mut self, ctx: &mut Ctx<'_>) {
        if self.cc.phase == Phase::AfterTimeout || !self.syn_acked() {
            // After a timeout everything outstanding is sent again in
            // order (RFC 5681 §3.1): nothing left to mark.
            return;
        }
        let in_recovery = self.sack.in_recovery;
        let reo = self.rack.reo_wnd_us(in_recovery, self.rto.srtt_us());
        let found = self.rack.detect(ctx.now, reo);
        ctx.stats.rack_lost = ctx
            .stats
            .rack_lost
            .saturating_add(u64::from(found.segments));
        let enter = !found.lost.is_empty()
            && !self.sack.in_recovery
            && self.cc.may_enter_sack_recovery(self.snd_una);
        let smss = u32::from(self.snd_mss);
        if enter {
            self.cc
                .enter_sack_recovery(self.flight(), self.snd_nxt, smss);
            self.sack.enter(self.snd_una, self.snd_nxt);
            ctx.stats.recoveries = ctx.stats.recoveries.saturating_add(1);
        }
        for (l, r) in found.lost {
            self.sack.mark_lost(l, r);
        }
        if enter {
            // RFC 6675 §5 step 4.3: the first segment taken as lost goes
            // out at once, whatever the pipe.
            let (una, nxt) = (self.snd_una, self.snd_nxt);
            if let Next::Retransmit { seq, end, rescue } = self.sack.next_seg(una, nxt, smss, false)
            {
                self.rtt_probe = None; // Karn (RFC 6298 §3)
                let after = self.retransmit_range(ctx, seq, end, Cause::FastRetransmit);
                ctx.stats.fast_retransmits = ctx.stats.fast_retransmits.saturating_add(1);
                self.sack.retransmitted(seq, after, self.snd_nxt, rescue);
            }
        }
        if let Some(t) = found.timeout_us {
            let at = ctx.now.plus_micros(t);
            if self.rtx_deadline.is_none_or(|d| at < d) {
                self.rtx_deadline = Some(at);
                self.rtx_kind = TimerKind::Reorder;
            }
        }
    }

    /// Arms the probe timeout in place of the RTO after new data went out
    /// or new data was acknowledged (RFC 8985 §7.2): only with RACK on,
    /// with data outstanding and no probe of this episode sent yet, either
    /// outside any recovery with nothing SACKed (RACK's reordering timer
    /// covers that case) or during SACK recovery (also after the sending
    /// of RFC 6675 §5 step (C)); a reordering timer already running stays.
    ///
    /// §7.2 leaves fast recovery out (a SHOULD), counting on RACK to find
    /// lost retransmissions. RACK only learns from ACKs of later segments,
    /// though, and a receiver that acknowledges a whole burst with one ACK
    /// (Linux does) leaves nothing to learn from once that ACK is lost, or
    /// once the retransmission and the segments after it are: live at
    /// 5 % loss each such recovery waited for the 200 ms RTO. A probe at
    /// 2·SRTT draws the ACK and SACK blocks that let RACK go on (live 5 %:
    /// 1.4 -> 2.3 MiB/s, RTOs 3.7 -> 1.6 a transfer). After a timeout
    /// (RTO recovery, §7.2's other exclusion) there is still no probe.
    pub(super) fn tlp_schedule(&mut self, ctx: &Ctx<'_>) {
        let open = self.cc.phase == Phase::Open && !self.sack.in_recovery && self.sack.is_empty();
        let recovering = self.cc.phase == Phase::SackRecovery && self.sack.in_recovery;
        let allowed = self.rack_on(ctx)
            && (open || recovering)
            && self.rack.tlp.is_none()
            && self.syn_acked()
            && self.snd_una != self.snd_nxt
            && !self.probe_outstanding
            && !(self.rtx_kind == TimerKind::Reorder && self.rtx_deadline.is_some());
        if !allowed {
            return;
        }
        let smss = u32::from(self.snd_mss);
        let rto = self.rto.rto_us();
        let pto = pto_us(
            self.rto.srtt_us(),
            self.flight(),
            smss,
            ctx.p.delayed_ack_us,
            rto,
        );
        // §7.2: never later than the RTO would fire; a running RTO keeps
        // its own expiry, a probe being restarted stands for one at
        // now + RTO.
        let rto_at = match (self.rtx_kind, self.rtx_deadline) {
            (TimerKind::Rto, Some(d)) => d,
            _ => ctx.now.plus_micros(rto),
        };
        let probe_at = ctx.now.plus_micros(pto);
        if probe_at < rto_at {
            self.rtx_deadline = Some(probe_at);
            self.rtx_kind = TimerKind::Probe;
        }
    }

    /// The shared timer fired as a RACK or TLP timer (no table row: the
    /// state does not change). Returns false for the RTO, which the caller
    /// handles.
    pub(super) fn rack_timer(&mut self, ctx: &mut Ctx<'_>) -> bool {
        let kind = std::mem::take(&mut self.rtx_kind);
        match kind {
            TimerKind::Rto => return false,
            TimerKind::Reorder => {
                // §6.2 step 6: the windows have run out; mark and repair.
                self.rack_detect(ctx);
                self.output(ctx);
            }
            TimerKind::Probe if self.cc.phase != Phase::AfterTimeout => self.send_probe(ctx),
            // A timeout came between (no probe in RTO recovery, §7.2):
            // the RTO guards what is outstanding.
            TimerKind::Probe => {}
        }
        if self.rtx_deadline.is_none()
            && (self.snd_una != self.snd_nxt || self.data_end().gt(self.snd_nxt))
        {
            self.arm_rtx(ctx.now);
            self.tlp_schedule(ctx);
        }
        true
    }

    /// The probe of RFC 8985 §7.3: the highest segment sent, once more;
    /// then the RTO, not another probe, guards what is outstanding.
    ///
    /// §7.3 prefers a segment of new data when the peer's window takes
    /// one (a SHOULD). The probe sends the last segment again instead:
    /// when only the ACKs of a flight were lost, as a probe mostly finds
    /// with a receiver that acknowledges a whole burst at once, a lone
    /// in-order segment of new data is one the receiver may hold its ACK
    /// for up to its delayed-ACK time (RFC 9293 §3.8.6.3; Linux about
    /// 40 ms), while a duplicate is acknowledged at once with a D-SACK
    /// (RFC 5681 §4.2, RFC 2883), which also tells the sender the probe
    /// was redundant and needs no congestion response (§7.4.2). After a
    /// lost tail both probes draw the same SACK feedback for RACK.
    fn send_probe(&mut self, ctx: &mut Ctx<'_>) {
        if self.snd_una == self.snd_nxt {
            return;
        }
        let smss = u32::from(self.snd_mss);
        let data_top = self.snd_nxt.min(self.data_end());
        let seq = self.snd_una.max(data_top - smss);
        self.rtt_probe = None; // Karn (RFC 6298 §3)
        self.retransmit_range(ctx, seq, self.snd_nxt, Cause::LossProbe);
        self.rack.tlp = Some((self.snd_nxt, true));
        ctx.stats.loss_probes = ctx.stats.loss_probes.saturating_add(1);
        self.rtx_deadline = None;
        self.rtx_kind = TimerKind::Rto;
        self.arm_rtx(ctx.now);
    }
}
