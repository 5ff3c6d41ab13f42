//! The per-connection state machine: the transmission control block of
//! RFC 9293 §3.3.1 and the event processing of §3.10, written by hand.
//!
//! Every branch that decides an event names the table row it implements by
//! calling [`Ctx::record`] with the row's id literal; the endpoint logs that
//! id next to the abstractly classified event, so tests and fuzzers can
//! compare it with `tcp_spec::step`. The rows are not looked up here.

use crate::congestion::{AckAction, Congestion, Phase};
use crate::endpoint::SegmentSummary;
use crate::error::Error;
use crate::packet::{Flags, Payload, Segment, SegmentIn, Stats, TcpOptions};
use crate::reassembly::Reassembly;
use crate::rto::{RtoEstimator, RtoParams};
use crate::seq::SeqNum;
use crate::time::Instant;
use std::collections::VecDeque;
use std::net::SocketAddr;
use tcp_spec::{AckClass, Event, Profile, SegmentEvent, SeqClass, State};

mod rack_tlp;
mod sack_loss;

pub(crate) use rack_tlp::TimerKind;

/// The handle of a connection or listener: what the socket calls of
/// [`crate::Endpoint`] take, and what the transition log names. The number
/// is unique within one endpoint's life (handles are never reused), grows
/// with creation order, and starts at 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Handle(pub u64);

/// Why a segment was emitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cause {
    /// The response a table row prescribes (SYN, SYN-ACK, ACK, RST, FIN).
    Response,
    /// An RFC 5961 §§3–4 challenge ACK.
    ChallengeAck,
    /// New data (RFC 9293 §3.8.6).
    Data,
    /// Our FIN, sent once all queued data is out (RFC 9293 §3.10.4).
    Fin,
    /// Retransmission on timeout (RFC 6298 §5).
    Retransmit,
    /// Fast retransmission on the third duplicate ACK (RFC 5681 §3.2).
    FastRetransmit,
    /// Retransmission an acknowledgment calls for during loss recovery: a
    /// partial ACK in fast recovery (RFC 6582 §3.2), or an ACK after a
    /// timeout that leaves more of the lost window (RFC 5681 §3.1).
    Recovery,
    /// A zero-window probe (RFC 9293 §3.8.6.1).
    Probe,
    /// A tail loss probe that sends the highest segment again
    /// (RFC 8985 §7.3; a probe of new data is [`Cause::Data`]).
    LossProbe,
    /// A window update after the application read (RFC 9293 §3.8.6.2.2).
    WindowUpdate,
    /// A delayed ACK whose timer ran out (RFC 9293 §3.8.6.3).
    DelayedAck,
}

/// What the profile and configuration fix for every connection.
#[derive(Clone, Debug)]
pub(crate) struct ConnParams {
    pub profile: Profile,
    pub rto: RtoParams,
    pub time_wait_us: u64,
    /// The delayed-ACK timeout ([`ConnParams::delayed_ack_timeout_us`]).
    pub delayed_ack_us: u64,
    pub challenge_per_sec: u64,
    pub syn_retries: u32,
    pub max_retries: u32,
    pub default_mss_v4: u16,
    pub default_mss_v6: u16,
    pub mtu: u16,
    pub recv_buf: usize,
    pub send_buf: usize,
    pub nagle: bool,
    /// Window scaling offered and accepted (RFC 7323 §2).
    pub window_scaling: bool,
    /// SACK-permitted offered and accepted (RFC 2018 §2), SACK blocks
    /// sent and used (RFC 2018 §4, RFC 6675).
    pub sack: bool,
    /// RACK-TLP loss detection (RFC 8985) on connections that use SACK.
    pub rack: bool,
    /// Seeded bugs (tests only; all off by default).
    pub faults: crate::Faults,
}

/// How long the stack holds back the ACK of a lone in-order segment when
/// nothing shortens it: 200 ms. RFC 9293 §3.8.6.3 and RFC 1122 §4.2.3.2
/// require the delay to stay under half a second, and RFC 5681 §4.2 bounds
/// it by 500 ms from the segment's arrival; 200 ms is the customary choice
/// (Linux's `TCP_DELACK_MAX`, the BSD fast timer's worst case), well inside
/// that bound, so a peer with a 1 s minimum RTO never retransmits for want
/// of our ACK.
pub(crate) const DELAYED_ACK_US: u64 = 200_000;

impl ConnParams {
    /// The delayed-ACK timeout: [`DELAYED_ACK_US`], but strictly below the
    /// profile's bound `bound_us` (`delayed_ack_max_ms`: the RFCs' "less
    /// than 0.5 s" is exclusive) and no longer than the minimum RTO, so that
    /// a peer with the same minimum RTO does not time out before our ACK
    /// (Linux likewise caps its delayed-ACK maximum by the minimum RTO).
    /// Zero acknowledges at once.
    pub fn delayed_ack_timeout_us(bound_us: u64, rto_min_us: u64) -> u64 {
        DELAYED_ACK_US
            .min(bound_us.saturating_sub(1))
            .min(rto_min_us)
    }

    /// The MSS we advertise: the MTU minus IP and TCP headers
    /// (RFC 9293 §3.7.1).
    pub fn our_mss(&self, v6: bool) -> u16 {
        let hdr = if v6 { 60 } else { 40 };
        self.mtu.saturating_sub(hdr).max(64)
    }

    /// The window scale we offer: the smallest shift that lets the receive
    /// buffer be advertised (RFC 7323 §2.3, at most 14); 0 with window
    /// scaling off.
    pub fn our_wscale(&self) -> u8 {
        let mut s = 0u8;
        if !self.window_scaling {
            return s;
        }
        while s < 14 && (self.recv_buf >> s) > 65535 {
            s += 1;
        }
        s
    }
}

/// The context an event is processed in: time, parameters, counters, the
/// segments emitted (as packets, with their summaries) and the row taken.
pub(crate) struct Ctx<'a> {
    pub now: Instant,
    pub p: &'a ConnParams,
    pub stats: &'a mut Stats,
    /// Buffers kept for reuse ([`crate::Endpoint::recycle`]).
    pub spare: &'a mut crate::spare::Spare,
    pub out: crate::spare::Emitted,
    pub row: Option<&'static str>,
}

impl<'a> Ctx<'a> {
    pub fn new(
        now: Instant,
        p: &'a ConnParams,
        stats: &'a mut Stats,
        spare: &'a mut crate::spare::Spare,
    ) -> Self {
        let out = spare.list();
        Ctx {
            now,
            p,
            stats,
            spare,
            out,
            row: None,
        }
    }

    /// Names the table row the current branch implements.
    pub fn record(&mut self, row: &'static str) {
        self.row = Some(row);
    }

    /// Encodes `seg` at once (its payload may borrow the send buffer) and
    /// queues the packet.
    pub fn emit<P: Payload>(&mut self, seg: &Segment<P>, cause: Cause) {
        let mut packet = self.spare.packet();
        match crate::packet::build_into(seg, &mut packet) {
            Ok(()) => self.out.push((packet, SegmentSummary::of(seg, cause))),
            Err(_) => {
                self.spare.give_packet(packet);
                self.stats.build_errors = self.stats.build_errors.saturating_add(1);
            }
        }
    }

    fn profile(&self) -> Profile {
        self.p.profile
    }
}

/// Answers for segments that reach no connection (RFC 9293 §3.10.7.1):
/// the reset a closed port sends, or nothing for a RST.
pub(crate) fn closed_port_reply(ctx: &mut Ctx<'_>, seg: &SegmentIn<'_>) {
    if seg.flags.rst {
        ctx.record("CLOSED.RST");
        return;
    }
    if seg.flags.ack {
        ctx.record("CLOSED.ACK");
        ctx.emit(&rst_for_ack(seg), Cause::Response);
    } else {
        ctx.record("CLOSED.no-ACK");
        let ack = seg.seq + seg.seg_len();
        let rst = reply(
            seg,
            SeqNum(0),
            Some(ack),
            Flags {
                rst: true,
                ack: true,
                ..Flags::default()
            },
        );
        ctx.emit(&rst, Cause::Response);
    }
}

/// A segment answering `seg` (addresses and ports swapped), without
/// options or payload.
/// `<SEQ=SEG.ACK><CTL=RST>` in answer to `seg` (RFC 9293 §3.5.2).
pub(crate) fn rst_for_ack<P>(seg: &Segment<P>) -> Segment {
    reply(
        seg,
        seg.ack,
        None,
        Flags {
            rst: true,
            ..Flags::default()
        },
    )
}

pub(crate) fn reply<P>(
    seg: &Segment<P>,
    seq: SeqNum,
    ack: Option<SeqNum>,
    flags: Flags,
) -> Segment {
    Segment {
        src: seg.dst,
        dst: seg.src,
        src_port: seg.dst_port,
        dst_port: seg.src_port,
        seq,
        ack: ack.unwrap_or(SeqNum(0)),
        flags,
        window: 0,
        options: TcpOptions::default(),
        payload: Vec::new(),
    }
}

/// The abstract event of a segment seen in CLOSED or LISTEN (no sequence
/// space to compare with).
pub(crate) fn connectionless_event<P: Payload>(seg: &Segment<P>) -> Event {
    Event::Segment(SegmentEvent {
        syn: seg.flags.syn,
        fin: seg.flags.fin,
        rst: seg.flags.rst,
        payload: seg.payload.octets() > 0,
        seq: SeqClass::NotApplicable,
        ack: if seg.flags.ack {
            AckClass::Unchecked
        } else {
            AckClass::Absent
        },
    })
}

/// The transmission control block (RFC 9293 §3.3.1) and its buffers.
#[derive(Clone, Debug)]
pub(crate) struct Conn {
    pub state: State,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// The listener this connection came from (passive OPEN).
    pub listener: Option<Handle>,
    /// The user holds a handle (active OPEN, or accepted).
    pub has_handle: bool,
    /// Already placed in the listener's accept queue.
    pub queued_for_accept: bool,
    /// The error a later call reports (connection refused, reset, ...).
    pub error: Option<Error>,

    pub iss: SeqNum,
    pub irs: SeqNum,
    pub snd_una: SeqNum,
    pub snd_nxt: SeqNum,
    pub snd_wnd: u32,
    pub snd_wl1: SeqNum,
    pub snd_wl2: SeqNum,
    /// The largest window the peer has offered (RFC 5961 §5.2).
    pub max_snd_wnd: u32,
    /// Octets from the oldest unacknowledged one on.
    snd_buf: VecDeque<u8>,
    /// Sequence number of `snd_buf[0]`.
    snd_buf_seq: SeqNum,
    /// The user closed the sending direction; a FIN follows the data.
    fin_queued: bool,
    /// Our FIN has been sent (its number is `snd_buf_seq + snd_buf.len()`).
    fin_sent: bool,
    /// The sequence number of a FIN that arrived ahead of missing data; it
    /// takes effect once the gap is filled (RFC 9293 §3.10.7.4: segments
    /// beyond RCV.NXT may be held for later processing).
    held_fin: Option<SeqNum>,

    pub rcv_nxt: SeqNum,
    rcv_buf: VecDeque<u8>,
    reasm: Reassembly,
    /// The peer's FIN was received (end of stream after `rcv_buf`).
    pub fin_received: bool,
    /// The user shut the receiving direction down.
    read_shut: bool,
    /// The right edge of the window last advertised.
    adv_edge: SeqNum,

    pub snd_mss: u16,
    pub snd_wscale: u8,
    pub rcv_wscale: u8,
    /// The peer's SYN carried a window scale option (RFC 7323 §2.2).
    peer_offered_ws: bool,
    /// Both SYNs carried SACK-permitted (RFC 2018 §2): blocks go out on
    /// our ACKs and the peer's steer recovery.
    sack_ok: bool,
    /// Where out-of-order data arrived last (RFC 2018 §4 block order).
    sack_recent: crate::sack::Recent,
    /// The scoreboard and RFC 6675 recovery state.
    sack: crate::recovery::SackSender,
    /// RACK's per-segment records and the TLP episode (RFC 8985).
    rack: crate::rack::Rack,
    /// Set when a new incarnation replaced a TIME-WAIT TCB; the endpoint
    /// attaches it to a listener and clears the flag.
    pub reincarnated: bool,

    pub rto: RtoEstimator,
    /// The single retransmission (and persist) timer (RFC 6298 §5).
    pub rtx_deadline: Option<Instant>,
    /// What `rtx_deadline` stands for: the RTO, or RACK's reordering or
    /// TLP's probe timeout in its place (RFC 8985 §§6.2, 7.2).
    rtx_kind: TimerKind,
    rtx_count: u32,
    /// The segment being timed: its end and send time (Karn, RFC 6298 §3).
    rtt_probe: Option<(SeqNum, Instant)>,
    dupacks: u32,
    /// After a timeout: the next octet to send again (RFC 5681 §3.1).
    rtx_nxt: SeqNum,
    /// cwnd, ssthresh and fast recovery (RFC 5681, RFC 6582).
    pub cc: Congestion,
    /// Our SYN or SYN-ACK timed out: the initial window is one segment
    /// (RFC 5681 §3.1).
    syn_retransmitted: bool,
    /// A one-octet probe beyond a zero window is in flight.
    probe_outstanding: bool,
    pub delack_deadline: Option<Instant>,
    delack_segs: u32,
    ack_now: bool,
    pub tw_deadline: Option<Instant>,
    challenge_window: Instant,
    challenge_count: u64,
}

/// Starting values of a new TCB.
pub(crate) struct ConnInit {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub iss: u32,
    pub listener: Option<Handle>,
    pub has_handle: bool,
}

impl Conn {
    pub fn new(init: ConnInit, p: &ConnParams, now: Instant) -> Conn {
        let iss = SeqNum(init.iss);
        let v6 = init.remote.is_ipv6();
        Conn {
            state: State::Closed,
            local: init.local,
            remote: init.remote,
            listener: init.listener,
            has_handle: init.has_handle,
            queued_for_accept: false,
            error: None,
            iss,
            irs: SeqNum(0),
            snd_una: iss,
            snd_nxt: iss + 1,
            snd_wnd: 0,
            snd_wl1: SeqNum(0),
            snd_wl2: iss,
            max_snd_wnd: 0,
            snd_buf: VecDeque::new(),
            snd_buf_seq: iss + 1,
            fin_queued: false,
            fin_sent: false,
            held_fin: None,
            rcv_nxt: SeqNum(0),
            rcv_buf: VecDeque::new(),
            reasm: Reassembly::new(),
            fin_received: false,
            read_shut: false,
            adv_edge: SeqNum(0),
            snd_mss: if v6 {
                p.default_mss_v6
            } else {
                p.default_mss_v4
            }
            .min(p.our_mss(v6))
            .max(1),
            snd_wscale: 0,
            rcv_wscale: p.our_wscale(),
            peer_offered_ws: false,
            sack_ok: false,
            sack_recent: crate::sack::Recent::default(),
            sack: crate::recovery::SackSender::default(),
            rack: crate::rack::Rack::default(),
            reincarnated: false,
            rto: RtoEstimator::with_faults(p.rto, p.faults),
            rtx_deadline: None,
            rtx_kind: TimerKind::Rto,
            rtx_count: 0,
            rtt_probe: None,
            dupacks: 0,
            rtx_nxt: SeqNum(init.iss),
            cc: Congestion::new(1, false),
            syn_retransmitted: false,
            probe_outstanding: false,
            delack_deadline: None,
            delack_segs: 0,
            ack_now: false,
            tw_deadline: None,
            challenge_window: now,
            challenge_count: 0,
        }
    }

    // ----- derived values -------------------------------------------------

    /// Our SYN has been acknowledged.
    fn syn_acked(&self) -> bool {
        self.snd_una.gt(self.iss)
    }

    /// One past the last queued data octet.
    fn data_end(&self) -> SeqNum {
        self.snd_buf_seq + self.snd_buf.len() as u32
    }

    /// The FIN we sent is the last number sent and not yet acknowledged.
    /// Our FIN has been sent and is not yet acknowledged.
    pub fn fin_outstanding(&self) -> bool {
        self.fin_sent && self.snd_una.lt(self.snd_nxt) && self.snd_nxt == self.data_end() + 1
    }

    /// RCV.WND: free receive buffer, in units the scale can express
    /// (RFC 9293 §3.8.6, RFC 7323 §2.3).
    pub fn rcv_wnd(&self, p: &ConnParams) -> u32 {
        let used = self.rcv_buf.len();
        let free = p.recv_buf.saturating_sub(used);
        let max = 65535usize << self.rcv_wscale;
        let w = free.min(max) as u32;
        (w >> self.rcv_wscale) << self.rcv_wscale
    }

    /// Octets buffered for the user.
    pub fn readable(&self) -> usize {
        self.rcv_buf.len()
    }

    /// Octets queued for sending (unsent and unacknowledged).
    pub fn send_queued(&self) -> usize {
        self.snd_buf.len()
    }

    pub fn reasm_len(&self) -> usize {
        self.reasm.len()
    }

    /// The retransmission timer's next expiry would exceed the retry limit
    /// and becomes a user timeout (RFC 9293 §3.8.3 R2). A SYN-ACK counts as
    /// a SYN: R2 for a SYN segment covers both opens, so under the RFC
    /// profiles a passive open too keeps its SYN-ACK going for at least
    /// three minutes (RFC 1122 §4.2.3.5); the backlog bounds what that
    /// holds.
    pub fn retries_exhausted(&self, p: &ConnParams) -> bool {
        let limit = match self.state {
            State::SynSent | State::SynReceived => p.syn_retries,
            _ => p.max_retries,
        };
        self.rtx_count >= limit
    }

    // ----- classification ---------------------------------------------------

    /// Classifies an arriving segment against this TCB (RFC 9293 §3.4 and
    /// §3.10.7.4; the classes of `tcp_spec::model`).
    pub fn classify(&self, seg: &SegmentIn<'_>, p: &ConnParams) -> Event {
        let seq = if self.state.has_receive_window() {
            SeqClass::classify(seg.seq.0, seg.seg_len(), self.rcv_nxt.0, self.rcv_wnd(p))
        } else {
            SeqClass::NotApplicable
        };
        let ack = if !seg.flags.ack {
            AckClass::Absent
        } else {
            AckClass::classify(
                seg.ack.0,
                self.snd_una.0,
                self.snd_nxt.0,
                self.max_snd_wnd,
                self.fin_outstanding(),
            )
        };
        let fin = seg.flags.fin
            && (!self.state.has_receive_window()
                || SeqClass::fin_in_window(
                    seg.seq.0,
                    seg.seg_len(),
                    self.rcv_nxt.0,
                    self.rcv_wnd(p),
                ));
        Event::Segment(SegmentEvent {
            syn: seg.flags.syn,
            fin,
            rst: seg.flags.rst,
            payload: !seg.payload.is_empty(),
            seq,
            ack,
        })
    }

    // ----- emission -----------------------------------------------------------

    /// A segment from us to the peer, advertising the current window.
    fn segment<P>(&mut self, p: &ConnParams, seq: SeqNum, flags: Flags, payload: P) -> Segment<P> {
        let wnd = self.rcv_wnd(p);
        let window = if flags.syn {
            wnd.min(65535) as u16
        } else {
            (wnd >> self.rcv_wscale).min(65535) as u16
        };
        let shown = if flags.syn {
            u32::from(window)
        } else {
            u32::from(window) << self.rcv_wscale
        };
        if flags.ack {
            self.adv_edge = self.rcv_nxt + shown;
            // Any ACK we send covers what a delayed ACK would have.
            self.delack_deadline = None;
            self.delack_segs = 0;
            self.ack_now = false;
        }
        let mut options = TcpOptions::default();
        if flags.ack && !flags.syn && self.sack_ok && !self.reasm.is_empty() {
            // RFC 2018 §4: every ACK reports the held data while any is.
            options.sack_blocks = self.sack_recent.blocks(self.reasm.runs_iter());
        }
        Segment {
            src: self.local.ip(),
            dst: self.remote.ip(),
            src_port: self.local.port(),
            dst_port: self.remote.port(),
            seq,
            ack: if flags.ack { self.rcv_nxt } else { SeqNum(0) },
            flags,
            window,
            options,
            payload,
        }
    }

    /// `<SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>`.
    fn send_ack(&mut self, ctx: &mut Ctx<'_>, cause: Cause) {
        let s = self.segment(ctx.p, self.snd_nxt, ack_flags(), Vec::new());
        ctx.emit(&s, cause);
    }

    /// A challenge ACK, at most `challenge_ack_per_sec` per second per
    /// connection (RFC 5961 §7; 0 = unlimited).
    fn challenge_ack(&mut self, ctx: &mut Ctx<'_>) {
        let limit = ctx.p.challenge_per_sec;
        if ctx
            .now
            .saturating_duration_since(self.challenge_window)
            .as_micros()
            >= 1_000_000
        {
            self.challenge_window = ctx.now;
            self.challenge_count = 0;
        }
        if limit != 0 && self.challenge_count >= limit {
            ctx.stats.challenge_acks_suppressed =
                ctx.stats.challenge_acks_suppressed.saturating_add(1);
            return;
        }
        self.challenge_count = self.challenge_count.saturating_add(1);
        ctx.stats.challenge_acks = ctx.stats.challenge_acks.saturating_add(1);
        self.send_ack(ctx, Cause::ChallengeAck);
    }

    /// `<SEQ=SEG.ACK><CTL=RST>` in answer to `seg`.
    fn send_rst_for_ack(&mut self, ctx: &mut Ctx<'_>, seg: &SegmentIn<'_>) {
        ctx.emit(&rst_for_ack(seg), Cause::Response);
    }

    /// `<SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>` in answer to `seg`.
    fn send_rst_ack_for(&mut self, ctx: &mut Ctx<'_>, seg: &SegmentIn<'_>) {
        let r = reply(
            seg,
            SeqNum(0),
            Some(seg.seq + seg.seg_len()),
            Flags {
                rst: true,
                ack: true,
                ..Flags::default()
            },
        );
        ctx.emit(&r, Cause::Response);
    }

    /// Our SYN (SYN-SENT) or SYN-ACK (SYN-RECEIVED), with the MSS option and,
    /// when offered or answering an offer, window scale (RFC 7323 §2.2).
    fn send_syn(&mut self, ctx: &mut Ctx<'_>, cause: Cause) {
        let with_ack = self.state != State::SynSent;
        let flags = Flags {
            syn: true,
            ack: with_ack,
            ..Flags::default()
        };
        let mut s = self.segment(ctx.p, self.iss, flags, Vec::new());
        s.options.mss = Some(ctx.p.our_mss(self.remote.is_ipv6()));
        // RFC 7323 §2.2: offered on a SYN, echoed on a SYN-ACK only when the
        // peer's SYN carried it; never with window scaling off.
        if ctx.p.window_scaling && (!with_ack || self.peer_offered_ws) {
            s.options.window_scale = Some(self.rcv_wscale);
        }
        // RFC 2018 §2: offered on a SYN, on a SYN-ACK only in answer to it.
        s.options.sack_permitted = ctx.p.sack && (!with_ack || self.sack_ok);
        ctx.emit(&s, cause);
    }

    /// Arms the retransmission timer if it is not running (RFC 6298 §5.1).
    fn arm_rtx(&mut self, now: Instant) {
        if self.rtx_deadline.is_none() {
            self.rtx_deadline = Some(now.plus_micros(self.rto.rto_us()));
            self.rtx_kind = TimerKind::Rto;
        }
    }

    /// Sends what the window and Nagle allow, then our FIN when all data is
    /// out, then any ACK still owed (RFC 9293 §§3.8.6, 3.7.4, 3.10.4).
    /// Data queued before a CLOSE still goes out in FIN-WAIT-1, CLOSING
    /// (the peer's FIN overtook ours) and LAST-ACK.
    pub fn output(&mut self, ctx: &mut Ctx<'_>) {
        let sending = self.syn_acked()
            && matches!(
                self.state,
                State::Established
                    | State::CloseWait
                    | State::FinWait1
                    | State::Closing
                    | State::LastAck
            );
        if sending && self.sack.in_recovery {
            self.sack_transmit(ctx);
        }
        if sending && !self.fin_sent {
            while !self.sack.in_recovery && self.send_new_segment(ctx, self.send_limit()) > 0 {}
            if self.fin_queued && self.snd_nxt == self.data_end() {
                let flags = Flags {
                    fin: true,
                    ack: true,
                    ..Flags::default()
                };
                let s = self.segment(ctx.p, self.snd_nxt, flags, Vec::new());
                ctx.emit(&s, Cause::Fin);
                self.snd_nxt += 1;
                self.fin_sent = true;
                self.arm_rtx(ctx.now);
            }
            // Zero window with data waiting: the persist timer (RFC 9293
            // §3.8.6.1) shares the retransmission timer.
            // The same timer overrides sender SWS avoidance when nothing is
            // in flight (§3.8.6.2.1), so a small window cannot stall us.
            let waiting = self.data_end().gt(self.snd_nxt);
            if waiting && self.snd_una == self.snd_nxt {
                self.arm_rtx(ctx.now);
            }
        }
        if self.ack_now {
            self.send_ack(ctx, Cause::Response);
        }
    }

    /// Sends one segment of new data that ends at or before `limit`, when
    /// Nagle (RFC 9293 §3.7.4) and sender SWS avoidance (§3.8.6.2.1) let
    /// it go; returns the octets sent (0: nothing).
    fn send_new_segment(&mut self, ctx: &mut Ctx<'_>, limit: SeqNum) -> u32 {
        let off = self.snd_nxt.since(self.snd_buf_seq) as usize;
        let avail = self.snd_buf.len().saturating_sub(off);
        let usable = limit.since(self.snd_nxt) as usize;
        let mss = usize::from(self.snd_mss);
        let len = avail.min(usable).min(mss);
        if len == 0 {
            return 0;
        }
        let all = len == avail;
        let outstanding = self.snd_una != self.snd_nxt;
        // Nagle: hold a small segment while data is unacknowledged.
        if len < mss && outstanding && ctx.p.nagle {
            return 0;
        }
        // Sender SWS avoidance.
        if len < mss && !all && (len as u32).saturating_mul(2) < self.max_snd_wnd {
            return 0;
        }
        let flags = Flags {
            ack: true,
            psh: all,
            ..Flags::default()
        };
        let s = self.segment(ctx.p, self.snd_nxt, flags, ());
        ctx.emit(&self.with_data(s, off, len), Cause::Data);
        if self.rtt_probe.is_none() {
            self.rtt_probe = Some((self.snd_nxt + len as u32, ctx.now));
        }
        self.rack_sent(ctx, self.snd_nxt, self.snd_nxt + len as u32);
        self.snd_nxt += len as u32;
        self.arm_rtx(ctx.now);
        self.tlp_schedule(ctx);
        len as u32
    }

    /// Retransmits the oldest unacknowledged segment: SYN, SYN-ACK, data
    /// (up to one MSS, with FIN if it fits) or FIN; with nothing outstanding
    /// and a zero window, sends a one-octet probe (RFC 9293 §3.8.6.1).
    fn retransmit_oldest(&mut self, ctx: &mut Ctx<'_>, cause: Cause) {
        self.rtt_probe = None; // Karn (RFC 6298 §3)
        if !self.syn_acked() {
            self.send_syn(ctx, cause);
            if self.fin_sent && self.state != State::SynSent {
                // A FIN sent from SYN-RECEIVED stays outstanding too.
                let s = self.segment(ctx.p, self.data_end(), fin_ack_flags(), Vec::new());
                ctx.emit(&s, cause);
            }
            return;
        }
        if self.snd_una == self.snd_nxt {
            let off = self.snd_nxt.since(self.snd_buf_seq) as usize;
            let avail = self.snd_buf.len().saturating_sub(off);
            let usable = (self.snd_una + self.snd_wnd).since(self.snd_nxt) as usize;
            // A one-octet probe into a zero window, or what a small window
            // takes when the override timer fires.
            let len = avail.min(usable.max(1)).min(usize::from(self.snd_mss));
            if len > 0 && self.syn_acked() && !self.fin_sent {
                let s = self.segment(ctx.p, self.snd_nxt, ack_flags(), ());
                ctx.emit(&self.with_data(s, off, len), Cause::Probe);
                self.probe_outstanding = self.snd_wnd == 0;
                self.snd_nxt += len as u32;
            }
            return;
        }
        let end = self.retransmit_from(ctx, self.snd_una, cause);
        self.rtx_nxt = end;
    }

    /// Sends again up to one MSS of what was sent from `seq` on (with the
    /// FIN if it fits); returns the sequence number after it.
    fn retransmit_from(&mut self, ctx: &mut Ctx<'_>, seq: SeqNum, cause: Cause) -> SeqNum {
        self.retransmit_range(ctx, seq, seq + u32::from(self.snd_mss), cause)
    }

    /// Sends again what was sent of `[seq, end)` (at most one MSS of data,
    /// with the FIN if it was sent and the data reaches it); returns the
    /// sequence number after it.
    fn retransmit_range(
        &mut self,
        ctx: &mut Ctx<'_>,
        seq: SeqNum,
        end: SeqNum,
        cause: Cause,
    ) -> SeqNum {
        let data_sent_end = self.snd_nxt.min(self.data_end()).min(end);
        let len = data_sent_end.since(seq).min(u32::from(self.snd_mss)) as usize;
        let off = seq.since(self.snd_buf_seq) as usize;
        let end = seq + len as u32;
        let with_fin = self.fin_sent && end == self.data_end();
        let flags = Flags {
            ack: true,
            fin: with_fin,
            psh: len > 0,
            ..Flags::default()
        };
        let s = self.segment(ctx.p, seq, flags, ());
        ctx.emit(&self.with_data(s, off, len), cause);
        self.rack_sent(ctx, seq, end);
        end + u32::from(with_fin)
    }

    /// After a timeout, sends again what cwnd allows of what was sent
    /// before it, from the retransmission pointer on (slow start over the
    /// lost window, RFC 5681 §3.1; RFC 6582 §3.2 step 5 ends it at
    /// `recover`).
    fn retransmit_after_timeout(&mut self, ctx: &mut Ctx<'_>) {
        let Some(recover) = self.cc.recover else {
            return;
        };
        let limit = self.send_limit();
        self.rtx_nxt = self.rtx_nxt.max(self.snd_una);
        while self.rtx_nxt.lt(recover) && self.rtx_nxt.lt(self.snd_nxt) && self.rtx_nxt.lt(limit) {
            let end = self.retransmit_from(ctx, self.rtx_nxt, Cause::Recovery);
            if end == self.rtx_nxt {
                break;
            }
            ctx.stats.retransmits = ctx.stats.retransmits.saturating_add(1);
            self.rtx_nxt = end;
        }
    }

    /// `s` carrying the `len` octets `off` octets into the send buffer,
    /// borrowed rather than copied: the packet is built from them at once.
    fn with_data(&self, s: Segment<()>, off: usize, len: usize) -> Segment<[&[u8]; 2]> {
        s.with_payload(crate::ring::parts(&self.snd_buf, off, len))
    }

    // ----- user calls -----------------------------------------------------------

    /// Active OPEN from CLOSED (RFC 9293 §3.10.1).
    pub fn open_active(&mut self, ctx: &mut Ctx<'_>) {
        self.open_active_as(ctx, "CLOSED.OPEN.active");
    }

    /// Active OPEN recorded under `row` (`CLOSED.OPEN.active`, or
    /// `LISTEN.OPEN.active` when a listener turns active).
    pub fn open_active_as(&mut self, ctx: &mut Ctx<'_>, row: &'static str) {
        ctx.record(row);
        self.state = State::SynSent;
        self.send_syn(ctx, Cause::Response);
        self.rtt_probe = Some((self.iss + 1, ctx.now));
        self.arm_rtx(ctx.now);
    }

    /// A SYN reached a listener (RFC 9293 §3.10.7.2): the new TCB records
    /// IRS, picks up the peer's options and answers with a SYN-ACK.
    pub fn open_from_listen(&mut self, ctx: &mut Ctx<'_>, seg: &SegmentIn<'_>, with_fin: bool) {
        if with_fin {
            ctx.record("LISTEN.SYN-FIN");
        } else {
            ctx.record("LISTEN.SYN");
        }
        self.take_syn(ctx.p, seg);
        self.state = State::SynReceived;
        self.send_syn(ctx, Cause::Response);
        self.rtt_probe = Some((self.iss + 1, ctx.now));
        self.arm_rtx(ctx.now);
    }

    /// Records the peer's SYN: IRS, RCV.NXT, its window and options
    /// (RFC 9293 §3.10.7.2–3, RFC 7323 §2.2, RFC 9293 §3.7.1).
    fn take_syn(&mut self, p: &ConnParams, seg: &SegmentIn<'_>) {
        self.irs = seg.seq;
        self.rcv_nxt = seg.seq + 1;
        self.snd_wnd = u32::from(seg.window);
        self.max_snd_wnd = self.max_snd_wnd.max(self.snd_wnd);
        self.snd_wl1 = seg.seq;
        self.snd_wl2 = seg.ack;
        let v6 = self.remote.is_ipv6();
        let peer_mss = seg.options.mss.unwrap_or(if v6 {
            p.default_mss_v6
        } else {
            p.default_mss_v4
        });
        self.snd_mss = peer_mss.min(p.our_mss(v6)).max(1);
        self.cc = Congestion::new(u32::from(self.snd_mss), self.syn_retransmitted);
        // With window scaling off we offer none, so the peer's is ignored
        // (RFC 7323 §2.2: scaling needs the option in both SYNs).
        match seg.options.window_scale.filter(|_| p.window_scaling) {
            Some(ws) => {
                self.peer_offered_ws = true;
                self.snd_wscale = ws.min(14);
            }
            None => {
                self.peer_offered_ws = false;
                self.snd_wscale = 0;
                self.rcv_wscale = 0;
            }
        }
        self.adv_edge = self.rcv_nxt + self.rcv_wnd(p);
        // RFC 2018 §2: SACK is used only when both SYNs permit it.
        self.sack_ok = p.sack && seg.options.sack_permitted;
        self.cc.byte_counting = self.sack_ok;
    }

    /// SEND (RFC 9293 §3.10.2). Returns the octets accepted.
    pub fn send(&mut self, ctx: &mut Ctx<'_>, data: &[u8]) -> Result<usize, Error> {
        match self.state {
            State::Closed => {
                ctx.record("CLOSED.CALL");
                Err(self.error.unwrap_or(Error::NotConnected))
            }
            State::Listen => {
                ctx.record("LISTEN.SEND");
                Err(Error::NotConnected)
            }
            State::SynSent | State::SynReceived => {
                ctx.record("PRE.SEND");
                if self.fin_queued {
                    return Err(Error::ConnectionClosing);
                }
                Ok(self.queue(ctx.p, data))
            }
            State::Established | State::CloseWait => {
                ctx.record("OPEN.SEND");
                if self.fin_queued {
                    return Err(Error::ConnectionClosing);
                }
                let n = self.queue(ctx.p, data);
                if n == 0 && !data.is_empty() {
                    return Err(Error::WouldBlock);
                }
                self.output(ctx);
                Ok(n)
            }
            State::FinWait1
            | State::FinWait2
            | State::Closing
            | State::LastAck
            | State::TimeWait => {
                ctx.record("CLOSING.SEND");
                Err(Error::ConnectionClosing)
            }
        }
    }

    fn queue(&mut self, p: &ConnParams, data: &[u8]) -> usize {
        let room = p.send_buf.saturating_sub(self.snd_buf.len());
        let n = room.min(data.len());
        self.snd_buf.extend(data.get(..n).unwrap_or(&[]));
        n
    }

    /// RECEIVE (RFC 9293 §3.10.3): copies buffered data; 0 means end of
    /// stream. A window update goes out when the window grew by at least
    /// min(buffer/2, MSS) since last advertised (§3.8.6.2.2).
    pub fn receive<S: crate::ring::Sink>(
        &mut self,
        ctx: &mut Ctx<'_>,
        buf: S,
    ) -> Result<usize, Error> {
        match self.state {
            State::Closed => {
                ctx.record("CLOSED.CALL");
                if let Some(e) = self.error {
                    return Err(e);
                }
                if self.fin_received || self.read_shut {
                    return Ok(self.copy_out(buf));
                }
                Err(Error::NotConnected)
            }
            State::Listen | State::SynSent | State::SynReceived => {
                ctx.record("PRE.RECEIVE");
                Err(Error::WouldBlock)
            }
            State::Established | State::FinWait1 | State::FinWait2 => {
                ctx.record("OPEN.RECEIVE");
                if self.read_shut {
                    return Ok(0);
                }
                let wants = !buf.wants_nothing();
                let n = self.copy_out(buf);
                if n == 0 && wants {
                    return Err(Error::WouldBlock);
                }
                let edge = self.rcv_nxt + self.rcv_wnd(ctx.p);
                let grown = edge.since(self.adv_edge);
                let thresh = (ctx.p.recv_buf as u32 / 2).min(u32::from(self.snd_mss));
                if grown >= thresh.max(1) {
                    self.send_ack(ctx, Cause::WindowUpdate);
                }
                Ok(n)
            }
            State::CloseWait => {
                ctx.record("CW.RECEIVE");
                Ok(self.copy_out(buf))
            }
            State::Closing | State::LastAck | State::TimeWait => {
                ctx.record("END.RECEIVE");
                Ok(self.copy_out(buf))
            }
        }
    }

    fn copy_out<S: crate::ring::Sink>(&mut self, buf: S) -> usize {
        buf.take(&mut self.rcv_buf)
    }

    /// Shuts the receiving direction: buffered and later data is discarded.
    pub fn shutdown_read(&mut self) {
        self.read_shut = true;
        self.rcv_buf.clear();
    }

    /// CLOSE (RFC 9293 §3.10.4): our FIN follows the queued data.
    pub fn close(&mut self, ctx: &mut Ctx<'_>) -> Result<(), Error> {
        match self.state {
            State::Closed => {
                ctx.record("CLOSED.CALL");
                Ok(())
            }
            State::Listen | State::SynSent => {
                ctx.record("LISTEN.CLOSE");
                self.enter_closed(None);
                Ok(())
            }
            State::SynReceived | State::Established => {
                ctx.record("EST.CLOSE");
                self.fin_queued = true;
                self.state = State::FinWait1;
                if !self.syn_acked() && self.snd_buf.is_empty() {
                    // RFC 9293 §3.10.4: from SYN-RECEIVED the FIN goes at
                    // once when nothing is queued.
                    let s = self.segment(ctx.p, self.snd_nxt, fin_ack_flags(), Vec::new());
                    ctx.emit(&s, Cause::Response);
                    self.snd_nxt += 1;
                    self.fin_sent = true;
                    self.arm_rtx(ctx.now);
                } else {
                    self.output(ctx);
                }
                Ok(())
            }
            State::CloseWait => {
                ctx.record("CW.CLOSE");
                self.fin_queued = true;
                self.state = State::LastAck;
                self.output(ctx);
                Ok(())
            }
            State::FinWait1
            | State::FinWait2
            | State::Closing
            | State::LastAck
            | State::TimeWait => {
                ctx.record("FIN.CLOSE");
                Ok(())
            }
        }
    }

    /// ABORT (RFC 9293 §3.10.5): a RST in the synchronized states before
    /// our FIN is acknowledged, then the TCB is gone; under the linux
    /// profile a connection in TIME-WAIT is left to run out its timer.
    pub fn abort(&mut self, ctx: &mut Ctx<'_>) {
        match self.state {
            State::Closed => ctx.record("CLOSED.CALL"),
            State::Listen | State::SynSent => {
                ctx.record("PRE.ABORT");
                self.enter_closed(None);
            }
            State::SynReceived
            | State::Established
            | State::FinWait1
            | State::FinWait2
            | State::CloseWait => {
                ctx.record("SYNC.ABORT");
                let s = self.segment(
                    ctx.p,
                    self.snd_nxt,
                    Flags {
                        rst: true,
                        ..Flags::default()
                    },
                    Vec::new(),
                );
                ctx.emit(&s, Cause::Response);
                self.enter_closed(None);
            }
            State::TimeWait if ctx.profile() == Profile::Linux => {
                // Linux handed the connection to a TIME-WAIT mini-socket
                // when it entered TIME-WAIT; closing the user's socket no
                // longer reaches it (`__tcp_close()`).
                ctx.record("LX.TW.ABORT");
            }
            State::Closing | State::LastAck | State::TimeWait => {
                ctx.record("END.ABORT");
                self.enter_closed(None);
            }
        }
    }

    /// Moves to CLOSED: timers stop, queues are flushed (unread data stays
    /// readable after a graceful end), the error is kept for the user.
    fn enter_closed(&mut self, error: Option<Error>) {
        self.state = State::Closed;
        self.rtx_deadline = None;
        self.delack_deadline = None;
        self.tw_deadline = None;
        self.snd_buf.clear();
        self.reasm.clear();
        if let Some(e) = error {
            self.error = Some(e);
            self.rcv_buf.clear();
        }
    }

    fn enter_time_wait(&mut self, now: Instant, p: &ConnParams) {
        self.state = State::TimeWait;
        self.rtx_deadline = None;
        self.tw_deadline = Some(now.plus_micros(p.time_wait_us));
    }

    // ----- timeouts ---------------------------------------------------------------

    /// The retransmission timer fired (RFC 6298 §5.4–5.6, RFC 9293 §3.10.8).
    /// Returns false when the retry limit turned it into a user timeout.
    pub fn on_rtx_timeout(&mut self, ctx: &mut Ctx<'_>) -> bool {
        self.rtx_deadline = None;
        if self.rack_timer(ctx) {
            return true;
        }
        if self.retries_exhausted(ctx.p) {
            return false;
        }
        match self.state {
            State::SynSent => ctx.record("SS.RTO"),
            State::SynReceived => ctx.record("SR.RTO"),
            State::Established
            | State::FinWait1
            | State::CloseWait
            | State::Closing
            | State::LastAck => ctx.record("SYNC.RTO"),
            State::Closed | State::Listen | State::FinWait2 | State::TimeWait => return true,
        }
        let probe = self.snd_una == self.snd_nxt;
        self.rto.on_timeout();
        if !probe {
            self.rtx_count = self.rtx_count.saturating_add(1);
            ctx.stats.retransmits = ctx.stats.retransmits.saturating_add(1);
            ctx.stats.timeouts = ctx.stats.timeouts.saturating_add(1);
        }
        self.dupacks = 0;
        let smss = u32::from(self.snd_mss);
        if !self.syn_acked() {
            self.syn_retransmitted = true;
            self.cc.on_syn_timeout(smss);
        } else if !probe && !self.probe_outstanding {
            // A probe into a zero window is not a loss.
            self.cc.on_timeout(self.flight(), self.snd_nxt, smss);
            // RFC 6675 §5.1 ends any SACK recovery; what was SACKed is
            // forgotten, as the peer may have dropped it (RFC 2018 §8).
            self.sack.reset();
            self.rack.on_timeout();
        }
        self.retransmit_oldest(ctx, Cause::Retransmit);
        if self.snd_una != self.snd_nxt || self.data_end().gt(self.snd_nxt) {
            self.arm_rtx(ctx.now);
        }
        true
    }

    /// The retry limit (or a user timeout) ended the connection
    /// (RFC 9293 §3.10.8, RFC 5482 §2).
    pub fn on_user_timeout(&mut self, ctx: &mut Ctx<'_>) {
        ctx.record("CONN.USER-TIMEOUT");
        self.enter_closed(Some(Error::TimedOut));
    }

    /// The 2·MSL timer fired (RFC 9293 §3.10.8).
    pub fn on_time_wait_timeout(&mut self, ctx: &mut Ctx<'_>) {
        ctx.record("TW.2MSL");
        self.enter_closed(None);
    }

    /// The delayed-ACK timer fired (RFC 9293 §3.8.6.3): the deferred half
    /// of a delayable row, not a table event of its own.
    pub fn on_delack_timeout(&mut self, ctx: &mut Ctx<'_>) {
        self.delack_deadline = None;
        if self.state.has_receive_window() && self.state != State::Closed {
            self.send_ack(ctx, Cause::DelayedAck);
        }
    }

    // ----- segment arrival ------------------------------------------------------------

    /// Processes a segment for this connection (RFC 9293 §3.10.7.3 for
    /// SYN-SENT, §3.10.7.4 otherwise). `ev` is its classification against
    /// the TCB before processing.
    pub fn on_segment(&mut self, ctx: &mut Ctx<'_>, seg: &SegmentIn<'_>, ev: &SegmentEvent) {
        match self.state {
            State::SynSent => self.syn_sent(ctx, seg, ev),
            State::Closed | State::Listen => {}
            _ => self.synchronized(ctx, seg, ev),
        }
        if self.state != State::Closed && self.state != State::Listen {
            self.output(ctx);
        }
    }

    /// RFC 9293 §3.10.7.3.
    fn syn_sent(&mut self, ctx: &mut Ctx<'_>, seg: &SegmentIn<'_>, ev: &SegmentEvent) {
        // First: the ACK must cover exactly our SYN.
        if matches!(
            ev.ack,
            AckClass::TooOld | AckClass::Dup | AckClass::Beyond | AckClass::Old
        ) {
            if seg.flags.rst {
                ctx.record("SS.RST.bad-ack");
            } else {
                ctx.record("SS.ACK.bad");
                self.send_rst_for_ack(ctx, seg);
            }
            return;
        }
        // Second: RST.
        if seg.flags.rst {
            if ev.ack == AckClass::Absent {
                ctx.record("SS.RST.no-ACK");
            } else {
                ctx.record("SS.RST.acceptable");
                self.enter_closed(Some(Error::ConnectionRefused));
            }
            return;
        }
        // Fourth: SYN.
        if seg.flags.syn {
            self.take_syn(ctx.p, seg);
            if ev.ack == AckClass::New {
                self.ack_of_syn(ctx, seg);
                self.state = State::Established;
                if !seg.flags.fin {
                    ctx.record("SS.SYN-ACK");
                    self.accept_text(ctx, seg);
                } else if ctx.profile() == Profile::Linux {
                    // Linux runs only the URG step on the rest of a SYN-ACK
                    // (`tcp_rcv_state_process()`): its text and FIN are
                    // ignored, the ACK covers the SYN alone.
                    ctx.record("LX.SS.SYN-ACK-FIN");
                } else {
                    // RFC 9293 §3.10.7.3: the text and FIN are processed as
                    // from the sixth step of §3.10.7.4 on.
                    ctx.record("SS.SYN-ACK-FIN");
                    if self.accept_text(ctx, seg).fin {
                        self.state = State::CloseWait;
                    }
                }
                self.ack_now = true;
            } else {
                ctx.record("SS.SYN.simultaneous");
                self.state = State::SynReceived;
                // Karn: the SYN-ACK repeats our SYN's number.
                self.rtt_probe = None;
                self.send_syn(ctx, Cause::Response);
            }
            return;
        }
        ctx.record("SS.no-SYN");
    }

    /// SND.UNA moves past our SYN: RTT sample, timer, window
    /// (RFC 9293 §3.10.7.3, RFC 6298 §5.3).
    fn ack_of_syn(&mut self, ctx: &mut Ctx<'_>, seg: &SegmentIn<'_>) {
        self.new_ack(ctx, seg.ack);
        // The window of a SYN-ACK is never scaled (RFC 7323 §2.2).
        let scale = if seg.flags.syn { 0 } else { self.snd_wscale };
        self.snd_wnd = u32::from(seg.window) << scale;
        self.max_snd_wnd = self.max_snd_wnd.max(self.snd_wnd);
        self.snd_wl1 = seg.seq;
        self.snd_wl2 = seg.ack;
    }

    /// SND.UNA advances to `ack`: acknowledged octets leave the queue, an
    /// RTT sample is taken unless the timed segment was retransmitted
    /// (Karn), the timer restarts or stops (RFC 6298 §5.2–5.3).
    fn new_ack(&mut self, ctx: &mut Ctx<'_>, ack: SeqNum) {
        let data_acked_to = ack.min(self.data_end());
        let n = (data_acked_to.since(self.snd_buf_seq) as usize).min(self.snd_buf.len());
        self.snd_buf.drain(..n);
        self.snd_buf_seq += n as u32;
        self.snd_una = ack;
        self.sack_new_ack(ack);
        if self.snd_una == self.snd_nxt {
            self.probe_outstanding = false;
        }
        if let Some((end, sent)) = self.rtt_probe {
            if ack.ge(end) {
                let rtt = ctx.now.saturating_duration_since(sent);
                self.rto.on_sample(crate::time::duration_micros(rtt));
                self.rtt_probe = None;
            }
        }
        self.rtx_count = 0;
        self.dupacks = 0;
        self.rtx_deadline = None;
        if self.snd_una != self.snd_nxt {
            self.arm_rtx(ctx.now);
        }
        let smss = u32::from(self.snd_mss);
        let after_timeout = self.cc.phase == Phase::AfterTimeout;
        if self.cc.on_new_ack(ack, n as u32, self.flight(), smss) == AckAction::Retransmit
            && self.snd_una != self.snd_nxt
        {
            // The next hole, at once (RFC 6582 §3.2 steps 4 and 5).
            if after_timeout {
                self.rtt_probe = None; // Karn (RFC 6298 §3)
                self.retransmit_after_timeout(ctx);
            } else {
                ctx.stats.fast_retransmits = ctx.stats.fast_retransmits.saturating_add(1);
                self.retransmit_oldest(ctx, Cause::Recovery);
            }
        }
        self.tlp_schedule(ctx);
    }

    /// The end of what may be outstanding: SND.UNA plus the smaller of the
    /// peer's window and cwnd (RFC 5681 §3), cwnd with Limited Transmit's
    /// allowance (RFC 3042).
    fn send_limit(&self) -> SeqNum {
        let cwnd = self.cc.send_window(self.dupacks, u32::from(self.snd_mss));
        self.snd_una + self.snd_wnd.min(cwnd)
    }

    /// FlightSize (RFC 5681 §2): sent and not yet acknowledged.
    fn flight(&self) -> u32 {
        self.snd_nxt.since(self.snd_una)
    }

    /// The ACK field of an acceptable segment in a synchronized state
    /// (RFC 9293 §3.10.7.4 fifth check, RFC 5681 §3.2 for duplicates).
    fn process_ack(&mut self, ctx: &mut Ctx<'_>, seg: &SegmentIn<'_>, ev: &SegmentEvent) {
        let wnd = u32::from(seg.window) << self.snd_wscale;
        let sacked_new = self.sack_update(seg, ev);
        match ev.ack {
            AckClass::New | AckClass::FinAcked => self.new_ack(ctx, seg.ack),
            AckClass::Dup if self.sack_ok => self.sack_dup_ack(ctx, seg, wnd, sacked_new),
            AckClass::Dup => {
                let pure = seg.payload.is_empty() && !seg.flags.syn && !seg.flags.fin;
                // Answers to zero-window probes repeat the ACK too, but
                // say nothing of loss.
                let probing = self.snd_wnd == 0 || self.probe_outstanding;
                if pure && self.snd_una != self.snd_nxt && wnd == self.snd_wnd && !probing {
                    self.dupacks = self.dupacks.saturating_add(1);
                    let (flight, smss) = (self.flight(), u32::from(self.snd_mss));
                    let (n, nxt) = (self.dupacks, self.snd_nxt);
                    let action = self.cc.on_dup_ack(n, seg.ack, flight, nxt, smss);
                    if action == AckAction::Retransmit {
                        ctx.stats.fast_retransmits = ctx.stats.fast_retransmits.saturating_add(1);
                        self.retransmit_oldest(ctx, Cause::FastRetransmit);
                    }
                } else if !pure || wnd != self.snd_wnd {
                    self.dupacks = 0;
                }
            }
            _ => return,
        }
        // Window update (RFC 9293 §3.10.7.4: SND.WL1/SND.WL2 rule).
        if self.snd_wl1.lt(seg.seq) || (self.snd_wl1 == seg.seq && self.snd_wl2.le(seg.ack)) {
            let was_zero = self.snd_wnd == 0;
            self.snd_wnd = wnd;
            self.max_snd_wnd = self.max_snd_wnd.max(wnd);
            self.snd_wl1 = seg.seq;
            self.snd_wl2 = seg.ack;
            if was_zero && wnd > 0 && self.probe_outstanding && self.snd_una != self.snd_nxt {
                // The probe octet lay beyond a zero window and was dropped:
                // send it again as ordinary data.
                self.snd_nxt = self.snd_una;
                self.rtt_probe = None;
                self.probe_outstanding = false;
            }
            if was_zero && wnd > 0 && self.snd_una == self.snd_nxt {
                // The persist timer is no longer needed.
                self.rtx_deadline = None;
            }
            if wnd == 0 {
                // The peer answers our probes: it is alive.
                self.rtx_count = 0;
            }
        }
        self.rack_on_ack(ctx, seg, ev.ack != AckClass::Dup);
    }

    /// Accepts the segment's text (and FIN) as far as the window allows
    /// (RFC 9293 §3.10.7.4 seventh and eighth checks). In-order data goes
    /// to the user's buffer, later data to reassembly; a FIN counts only
    /// when everything before it has arrived (an out-of-order FIN is not
    /// remembered: the peer retransmits it).
    fn accept_text(&mut self, ctx: &mut Ctx<'_>, seg: &SegmentIn<'_>) -> Text {
        let mut t = Text::default();
        let data_seq = seg.seq + u32::from(seg.flags.syn);
        let len = seg.payload.len() as u32;
        let wnd = self.rcv_wnd(ctx.p);
        let wnd_end = self.rcv_nxt + wnd;
        let data_end = data_seq + len;
        // A FIN at or beyond the right edge is trimmed off with the data
        // there (RFC 9293 §3.10.7.4), as `classify` decided.
        let fin =
            seg.flags.fin && SeqClass::fin_in_window(seg.seq.0, seg.seg_len(), self.rcv_nxt.0, wnd);
        if len > 0 && !self.read_shut {
            if data_seq.le(self.rcv_nxt) {
                let skip = self.rcv_nxt.since(data_seq);
                let end = if ctx.p.faults.accept_beyond_window {
                    data_end
                } else {
                    data_end.min(wnd_end)
                };
                let take = end.since(self.rcv_nxt);
                if take > 0 {
                    let a = skip as usize;
                    let b = a.saturating_add(take as usize);
                    if let Some(bytes) = seg.payload.get(a..b) {
                        self.rcv_buf.extend(bytes);
                        self.rcv_nxt += take;
                        t.in_order = true;
                        t.segments = 1;
                    }
                    if fin && data_end == self.rcv_nxt {
                        // The FIN ends the stream: anything held beyond it
                        // is not data of this connection.
                        if !self.reasm.is_empty() {
                            t.filled_gap = true;
                        }
                        self.reasm.clear();
                    }
                    let more = self.reasm.pop_contiguous(self.rcv_nxt);
                    if !more.is_empty() {
                        self.rcv_nxt += more.len() as u32;
                        self.rcv_buf.extend(more);
                        t.filled_gap = true;
                    }
                    if !self.reasm.is_empty() {
                        t.filled_gap = true;
                    }
                }
            } else if data_seq.lt(wnd_end) {
                self.reasm.insert(self.rcv_nxt, wnd, data_seq, seg.payload);
                self.sack_recent.arrived(data_seq.max(self.rcv_nxt));
                t.out_of_order = true;
                self.hold_fin(seg, data_end, wnd_end);
            }
        } else if len > 0 && self.read_shut && data_seq.le(self.rcv_nxt) {
            // Discarded but acknowledged so the peer does not resend it.
            let take = data_end.min(wnd_end).since(self.rcv_nxt);
            self.rcv_nxt += take;
        }
        if fin && !self.fin_received {
            let fin_seq = data_end;
            if fin_seq == self.rcv_nxt {
                self.rcv_nxt += 1;
                self.fin_received = true;
                self.held_fin = None;
                t.fin = true;
            } else if len == 0 && fin_seq.gt(self.rcv_nxt) {
                self.hold_fin(seg, fin_seq, wnd_end);
                t.out_of_order = true;
            }
        }
        t
    }

    /// Remembers the FIN of an out-of-order segment that ends at `fin_seq`
    /// inside the window.
    fn hold_fin(&mut self, seg: &SegmentIn<'_>, fin_seq: SeqNum, wnd_end: SeqNum) {
        if seg.flags.fin && !self.fin_received && fin_seq.lt(wnd_end) {
            self.held_fin = Some(fin_seq);
        }
    }

    /// A held FIN has become the next sequence number to receive.
    pub fn held_fin_ready(&self) -> bool {
        self.held_fin == Some(self.rcv_nxt)
            && !self.fin_received
            && matches!(
                self.state,
                State::Established | State::FinWait1 | State::FinWait2
            )
    }

    /// Processes a held FIN now in order, as an in-order FIN would be
    /// (RFC 9293 §3.10.7.4 eighth check).
    pub fn take_held_fin(&mut self, ctx: &mut Ctx<'_>) {
        if !self.held_fin_ready() {
            return;
        }
        match self.state {
            State::Established => ctx.record("EST.FIN"),
            State::FinWait1 => ctx.record("FW1.FIN"),
            _ => ctx.record("FW2.FIN"),
        }
        self.held_fin = None;
        self.rcv_nxt += 1;
        self.fin_received = true;
        self.ack_now = true;
        match self.state {
            State::Established => self.state = State::CloseWait,
            State::FinWait1 => self.state = State::Closing,
            _ => self.enter_time_wait(ctx.now, ctx.p),
        }
        self.output(ctx);
    }

    /// Delayed or immediate ACK for delivered text (RFC 9293 §3.8.6.3,
    /// RFC 1122 §4.2.3.2, RFC 5681 §4.2): at least every second segment,
    /// otherwise after the delayed-ACK timeout (strictly less than the
    /// profile's `delayed_ack_max_ms`, see
    /// [`ConnParams::delayed_ack_timeout_us`]), immediately for out-of-order
    /// data or a filled gap.
    fn ack_text(&mut self, ctx: &mut Ctx<'_>, t: &Text) {
        if t.out_of_order || t.filled_gap || t.fin {
            self.ack_now = true;
        } else if t.in_order {
            self.delack_segs = self.delack_segs.saturating_add(t.segments);
            let second = self.delack_segs >= 2 && !ctx.p.faults.no_ack_every_second_segment;
            if second || ctx.p.delayed_ack_us == 0 {
                self.ack_now = true;
            } else if self.delack_deadline.is_none() {
                self.delack_deadline = Some(ctx.now.plus_micros(ctx.p.delayed_ack_us));
            }
        } else {
            self.ack_now = true;
        }
    }

    /// RFC 9293 §3.10.7.4 for SYN-RECEIVED and the synchronized states,
    /// with RFC 5961 under the rfc9293 and linux profiles.
    fn synchronized(&mut self, ctx: &mut Ctx<'_>, seg: &SegmentIn<'_>, ev: &SegmentEvent) {
        let st = self.state;
        let profile = ctx.profile();
        let acceptable = !matches!(
            ev.seq,
            SeqClass::Below | SeqClass::Beyond | SeqClass::ZeroWindowOff
        );

        // First check: sequence number.
        if !acceptable {
            self.unacceptable(ctx, seg, ev);
            return;
        }
        // Second check: RST.
        if seg.flags.rst {
            self.sync_rst(ctx, ev);
            return;
        }
        // Fourth check: SYN.
        if seg.flags.syn {
            self.sync_syn(ctx, seg, ev);
            return;
        }
        // Fifth check: ACK.
        if !self.sync_ack(ctx, seg, ev) {
            return;
        }
        // Sixth to eighth checks: text and FIN.
        match st {
            State::Established | State::FinWait1 | State::FinWait2 => self.open_text(ctx, seg, ev),
            _ => {
                // CLOSE-WAIT, CLOSING, LAST-ACK, TIME-WAIT: the peer's FIN
                // is in; text is ignored, a FIN is acknowledged again.
                let at_or_above_nxt = matches!(
                    ev.seq,
                    SeqClass::LeftEdge | SeqClass::Inside | SeqClass::RightEdge
                );
                if ev.fin && profile == Profile::Linux && st != State::TimeWait && at_or_above_nxt {
                    // Linux leaves the text step at once for a segment that
                    // does not start below RCV.NXT (`tcp_rcv_state_process()`
                    // step 7): no ACK, RCV.NXT stays.
                    ctx.record("LX.END.FIN.new");
                } else if ev.fin {
                    ctx.record("END.FIN");
                    if st == State::TimeWait {
                        self.tw_deadline = Some(ctx.now.plus_micros(ctx.p.time_wait_us));
                    }
                    self.send_ack(ctx, Cause::Response);
                } else {
                    ctx.record("END.SEG");
                }
            }
        }
    }

    /// The first check of RFC 9293 §3.10.7.4 failed: the segment is not
    /// acceptable (with the profiles' exceptions for a SYN).
    fn unacceptable(&mut self, ctx: &mut Ctx<'_>, seg: &SegmentIn<'_>, ev: &SegmentEvent) {
        let st = self.state;
        let profile = ctx.profile();
        if seg.flags.rst {
            ctx.record("SYNC.RST.outside");
            return;
        }
        if st == State::SynReceived
            && seg.flags.syn
            && ev.ack == AckClass::New
            && ev.seq == SeqClass::Below
            && !ev.fin
            && !ev.payload
        {
            self.simultaneous_syn_ack(ctx, seg);
            return;
        }
        if profile == Profile::Linux
            && st == State::SynReceived
            && seg.flags.syn
            && ev.ack == AckClass::Absent
            && ev.seq == SeqClass::Below
        {
            ctx.record("LX.SR.SYN.retransmitted");
            self.send_syn(ctx, Cause::Response);
            return;
        }
        if profile == Profile::Linux
            && st == State::TimeWait
            && seg.flags.syn
            && ev.ack == AckClass::Absent
            && ev.seq == SeqClass::Beyond
        {
            ctx.record("LX.TW.SYN.new");
            self.reincarnate(ctx, seg);
            return;
        }
        ctx.record("SYNC.SEQ.unacceptable");
        self.send_ack(ctx, Cause::Response);
    }

    /// The second check of RFC 9293 §3.10.7.4: an acceptable segment with
    /// RST (RFC 5961 §3.2 under rfc9293).
    fn sync_rst(&mut self, ctx: &mut Ctx<'_>, ev: &SegmentEvent) {
        let st = self.state;
        let profile = ctx.profile();
        let exact = matches!(ev.seq, SeqClass::LeftEdge | SeqClass::ZeroWindowAtNext);
        if profile == Profile::Rfc793 {
            self.reset_by_rst(ctx, ["793.SR.RST", "793.OPEN.RST", "793.END.RST"]);
            return;
        }
        if profile == Profile::Linux && st == State::SynReceived {
            ctx.record("LX.SR.RST.in-window");
            self.reset_embryonic();
            return;
        }
        if exact {
            self.reset_by_rst(ctx, ["SR.RST.exact", "OPEN.RST.exact", "END.RST.exact"]);
            return;
        }
        if ev.seq == SeqClass::Overlap {
            if profile == Profile::Linux && st != State::TimeWait {
                ctx.record("LX.RST.overlap");
                self.challenge_ack(ctx);
            } else {
                ctx.record("SYNC.RST.overlap");
            }
            return;
        }
        if profile == Profile::Linux && st == State::TimeWait {
            ctx.record("LX.TW.RST.in-window");
            return;
        }
        ctx.record("SYNC.RST.challenge");
        self.challenge_ack(ctx);
    }

    /// An accepted RST (RFC 9293 §3.10.7.4, second check): in SYN-RECEIVED
    /// the embryonic connection goes, in ESTABLISHED, FIN-WAIT-1/2 and
    /// CLOSE-WAIT the user learns "connection reset", in the closing states
    /// the TCB just goes. `rows` names the row of each of the three.
    fn reset_by_rst(&mut self, ctx: &mut Ctx<'_>, rows: [&'static str; 3]) {
        let [syn_received, open, end] = rows;
        match self.state {
            State::SynReceived => {
                ctx.record(syn_received);
                self.reset_embryonic();
            }
            State::Established | State::FinWait1 | State::FinWait2 | State::CloseWait => {
                ctx.record(open);
                self.enter_closed(Some(Error::ConnectionReset));
            }
            _ => {
                ctx.record(end);
                self.enter_closed(None);
            }
        }
    }

    /// The fourth check of RFC 9293 §3.10.7.4: an acceptable segment with
    /// SYN (RFC 5961 §4.2 under rfc9293).
    fn sync_syn(&mut self, ctx: &mut Ctx<'_>, seg: &SegmentIn<'_>, ev: &SegmentEvent) {
        let st = self.state;
        let profile = ctx.profile();
        if profile == Profile::Rfc793 {
            if ev.ack == AckClass::Absent {
                ctx.record("793.SYNC.SYN.no-ack");
                self.send_rst_ack_for(ctx, seg);
            } else {
                ctx.record("793.SYNC.SYN.ack");
                self.send_rst_for_ack(ctx, seg);
            }
            self.reset_by_syn();
            return;
        }
        if st == State::SynReceived {
            if profile == Profile::Linux {
                if ev.ack == AckClass::Absent {
                    ctx.record("LX.SR.SYN.in-window.no-ack");
                    self.send_rst_ack_for(ctx, seg);
                } else {
                    ctx.record("LX.SR.SYN.in-window.ack");
                    self.send_rst_for_ack(ctx, seg);
                }
            } else {
                ctx.record("SR.SYN");
            }
            self.reset_by_syn();
            return;
        }
        if profile == Profile::Linux
            && st == State::TimeWait
            && ev.ack == AckClass::Absent
            && matches!(ev.seq, SeqClass::Inside | SeqClass::RightEdge)
        {
            ctx.record("LX.TW.SYN.new");
            self.reincarnate(ctx, seg);
            return;
        }
        ctx.record("SYNC.SYN.challenge");
        self.challenge_ack(ctx);
    }

    /// The fifth check of RFC 9293 §3.10.7.4: the ACK field. Returns whether
    /// the segment goes on to the text and FIN checks.
    fn sync_ack(&mut self, ctx: &mut Ctx<'_>, seg: &SegmentIn<'_>, ev: &SegmentEvent) -> bool {
        let st = self.state;
        let profile = ctx.profile();
        if ev.ack == AckClass::Absent {
            ctx.record("SYNC.ACK.absent");
            return false;
        }
        if st == State::SynReceived {
            self.syn_received_ack(ctx, seg, ev);
            return false;
        }
        match ev.ack {
            AckClass::Beyond => {
                if profile == Profile::Linux && st == State::Established {
                    ctx.record("LX.EST.ACK.beyond");
                } else {
                    ctx.record("SYNC.ACK.beyond");
                    self.send_ack(ctx, Cause::Response);
                }
                return false;
            }
            AckClass::TooOld if profile != Profile::Rfc793 => {
                ctx.record("SYNC.ACK.too-old");
                self.send_ack(ctx, Cause::Response);
                return false;
            }
            _ => {}
        }
        self.process_ack(ctx, seg, ev);

        if ev.ack == AckClass::FinAcked {
            self.our_fin_acked(ctx, seg, ev);
            return false;
        }
        true
    }

    /// SYN-RECEIVED after a simultaneous open: the peer's SYN-ACK repeats
    /// its SYN, below RCV.NXT, and acknowledges ours. The figure of a
    /// simultaneous open (RFC 9293 §3.5) has it complete the handshake,
    /// where the sequence check of §3.10.7.4 alone would only ACK it;
    /// supporting simultaneous open is MUST-10. The ACK covers the peer's
    /// SYN alone, RCV.NXT = IRS+1.
    fn simultaneous_syn_ack(&mut self, ctx: &mut Ctx<'_>, seg: &SegmentIn<'_>) {
        ctx.record("SR.SYN-ACK.simultaneous");
        self.ack_of_syn(ctx, seg);
        self.state = State::Established;
        self.ack_now = true;
    }

    /// SYN-RECEIVED, fifth check: only an ACK of exactly our SYN moves on
    /// (RFC 9293 §3.10.7.4).
    fn syn_received_ack(&mut self, ctx: &mut Ctx<'_>, seg: &SegmentIn<'_>, ev: &SegmentEvent) {
        if ev.ack != AckClass::New {
            ctx.record("SR.ACK.bad");
            self.send_rst_for_ack(ctx, seg);
            return;
        }
        self.new_ack(ctx, seg.ack);
        self.snd_wnd = u32::from(seg.window) << self.snd_wscale;
        self.max_snd_wnd = self.max_snd_wnd.max(self.snd_wnd);
        self.snd_wl1 = seg.seq;
        self.snd_wl2 = seg.ack;
        self.state = State::Established;
        self.text_after_ack(
            ctx,
            seg,
            ev,
            [
                "SR.ACK.ok-fin",
                "SR.ACK.ok-fin-queued",
                "SR.ACK.ok-data",
                "SR.ACK.ok",
            ],
        );
    }

    /// After an acknowledgment that changed the state (our SYN or our FIN
    /// acknowledged), records the row for the segment's text and FIN and
    /// delivers them. `rows`: in-order FIN, FIN not yet in order, data, bare
    /// acknowledgment.
    fn text_after_ack(
        &mut self,
        ctx: &mut Ctx<'_>,
        seg: &SegmentIn<'_>,
        ev: &SegmentEvent,
        rows: [&'static str; 4],
    ) {
        let in_order = matches!(ev.seq, SeqClass::LeftEdge | SeqClass::Overlap);
        let [fin, fin_held, data, bare] = rows;
        ctx.record(match (ev.fin, in_order, ev.payload) {
            (true, true, _) => fin,
            (true, false, _) => fin_held,
            (false, _, true) => data,
            (false, _, false) => bare,
        });
        if ev.payload || ev.fin {
            self.deliver(ctx, seg, ev);
        }
    }

    /// Text and FIN of a segment in ESTABLISHED, FIN-WAIT-1 or FIN-WAIT-2.
    fn open_text(&mut self, ctx: &mut Ctx<'_>, seg: &SegmentIn<'_>, ev: &SegmentEvent) {
        let st = self.state;
        let in_order = matches!(ev.seq, SeqClass::LeftEdge | SeqClass::Overlap);
        let zero = ev.seq == SeqClass::ZeroWindowAtNext;
        if ev.fin {
            if zero && !ev.payload {
                if ctx.profile() == Profile::Linux && st == State::Established {
                    ctx.record("LX.EST.FIN.zero-window");
                    self.rcv_nxt += 1;
                    self.fin_received = true;
                    self.state = State::CloseWait;
                } else {
                    ctx.record("OPEN.FIN.zero-window");
                }
                self.send_ack(ctx, Cause::Response);
                return;
            }
            if zero {
                ctx.record("OPEN.DATA.zero-window");
                self.send_ack(ctx, Cause::Response);
                return;
            }
            if !in_order {
                ctx.record("OPEN.FIN.out-of-order");
                self.deliver(ctx, seg, ev);
                return;
            }
            match st {
                State::Established => ctx.record("EST.FIN"),
                State::FinWait1 => ctx.record("FW1.FIN"),
                _ => ctx.record("FW2.FIN"),
            }
            self.deliver(ctx, seg, ev);
            return;
        }
        if !ev.payload {
            ctx.record("OPEN.ACK.pure");
            return;
        }
        if zero {
            ctx.record("OPEN.DATA.zero-window");
            self.send_ack(ctx, Cause::Response);
        } else if in_order {
            ctx.record("OPEN.DATA.in-order");
            self.deliver(ctx, seg, ev);
        } else {
            ctx.record("OPEN.DATA.out-of-order");
            self.deliver(ctx, seg, ev);
        }
    }

    /// Our FIN is acknowledged (RFC 9293 §3.10.7.4, FIN-WAIT-1, CLOSING and
    /// LAST-ACK processing of the fifth check, then text and FIN).
    fn our_fin_acked(&mut self, ctx: &mut Ctx<'_>, seg: &SegmentIn<'_>, ev: &SegmentEvent) {
        match self.state {
            State::FinWait1 => {
                self.state = State::FinWait2;
                self.text_after_ack(
                    ctx,
                    seg,
                    ev,
                    [
                        "FW1.FIN.fin-acked",
                        "FW1.FIN-queued.fin-acked",
                        "FW1.DATA.fin-acked",
                        "FW1.ACK.fin-acked",
                    ],
                );
            }
            State::Closing => {
                ctx.record("CLOSING.ACK.fin-acked");
                self.enter_time_wait(ctx.now, ctx.p);
            }
            State::LastAck => {
                ctx.record("LAST-ACK.ACK.fin-acked");
                self.enter_closed(None);
            }
            _ => {}
        }
    }

    /// Accepts text and FIN in ESTABLISHED / FIN-WAIT-1 / FIN-WAIT-2 and
    /// applies the FIN's state change (RFC 9293 §3.10.7.4 eighth check).
    fn deliver(&mut self, ctx: &mut Ctx<'_>, seg: &SegmentIn<'_>, ev: &SegmentEvent) {
        if ev.seq == SeqClass::ZeroWindowAtNext {
            // The window is closed: the text (and FIN) is not taken, the
            // ACK says so at once (RFC 9293 §3.8.6.1).
            self.ack_now = true;
            return;
        }
        let t = self.accept_text(ctx, seg);
        if !self.held_fin_ready() {
            // (A held FIN now in order is processed next and acknowledged
            // with it.)
            self.ack_text(ctx, &t);
        }
        if t.fin {
            match self.state {
                State::Established => self.state = State::CloseWait,
                State::FinWait1 => self.state = State::Closing,
                State::FinWait2 => self.enter_time_wait(ctx.now, ctx.p),
                _ => {}
            }
        }
    }

    /// An embryonic connection is reset (RFC 9293 §3.10.7.4 second check):
    /// a passive one just ends, an active one reports refusal.
    fn reset_embryonic(&mut self) {
        let err = if self.listener.is_some() {
            None
        } else {
            Some(Error::ConnectionRefused)
        };
        self.enter_closed(err);
    }

    /// The connection ends because of a SYN in the window.
    fn reset_by_syn(&mut self) {
        if self.state == State::SynReceived {
            self.reset_embryonic();
        } else {
            self.enter_closed(Some(Error::ConnectionReset));
        }
    }

    /// A new SYN above RCV.NXT in TIME-WAIT starts a new incarnation of the
    /// connection (RFC 1122 §4.2.2.13, RFC 6191; Linux `TCP_TW_SYN`). The
    /// new ISS lies well above the old SND.NXT.
    fn reincarnate(&mut self, ctx: &mut Ctx<'_>, seg: &SegmentIn<'_>) {
        let iss = self.snd_nxt + 128_000;
        self.iss = iss;
        self.snd_una = iss;
        self.snd_nxt = iss + 1;
        self.snd_buf.clear();
        self.snd_buf_seq = iss + 1;
        self.fin_queued = false;
        self.fin_sent = false;
        self.rcv_buf.clear();
        self.reasm.clear();
        self.fin_received = false;
        self.read_shut = false;
        self.max_snd_wnd = 0;
        self.tw_deadline = None;
        self.rtx_count = 0;
        self.dupacks = 0;
        self.syn_retransmitted = false;
        self.error = None;
        self.rcv_wscale = ctx.p.our_wscale();
        self.rto = RtoEstimator::with_faults(ctx.p.rto, ctx.p.faults);
        self.sack = crate::recovery::SackSender::default();
        self.sack_recent.clear();
        self.take_syn(ctx.p, seg);
        self.state = State::SynReceived;
        self.reincarnated = true;
        self.send_syn(ctx, Cause::Response);
        self.rtt_probe = Some((self.iss + 1, ctx.now));
        self.arm_rtx(ctx.now);
    }
}

/// What happened to a segment's text.
#[derive(Default, Debug)]
struct Text {
    in_order: bool,
    out_of_order: bool,
    filled_gap: bool,
    fin: bool,
    segments: u32,
}

fn ack_flags() -> Flags {
    Flags {
        ack: true,
        ..Flags::default()
    }
}

fn fin_ack_flags() -> Flags {
    Flags {
        ack: true,
        fin: true,
        ..Flags::default()
    }
}
