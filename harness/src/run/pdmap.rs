//! packetdrill's per-connection mappings that the runner applies under
//! `--packetdrill` besides ISN-relative numbering: the script's own ISN on
//! SYN lines, which connection a SYN starts, and fast-open cookies
//! translated between the script's addresses and the harness's
//! ([`super::tfo_cookie`]).

use super::target::{SocketCall, Target};
use super::tfo_cookie::CookieMap;
use super::RunOptions;
use crate::script::TcpOpt;
use std::net::{IpAddr, Ipv4Addr};

/// run_all.py's `--local_ip` for IPv4: the kernel's address in packetdrill's
/// corpus (a cookie in a script is computed for it).
pub const PD_LOCAL_V4: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 1);
/// run_all.py's `--remote_ip` for IPv4: the scripted peer's address.
pub const PD_REMOTE_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

/// The mappings of one run.
#[derive(Debug, Clone)]
pub struct PdMap {
    /// packetdrill's `script.local_isn`: the sequence number the script
    /// gave the target's latest SYN line. A live SYN shows as this plus its
    /// offset from the live ISN.
    pub script_isn: u32,
    /// The socket under test is listening: an inbound SYN starts a new
    /// connection (packetdrill's child socket).
    pub listening: bool,
    /// Passive connections started so far: each after the first comes from
    /// its own peer port (packetdrill's next ephemeral port), so an earlier
    /// connection still open does not take its segments.
    passive: u16,
    /// The current connection's peer port offset: 0 for an active one.
    port_offset: u16,
    /// The connection under test: packets of others are not its.
    conn: Conn,
    /// The kernel's and the peer's addresses in the script's terms.
    local: IpAddr,
    remote: IpAddr,
    /// The addresses came from the command line, which overrides a
    /// script's header (as in packetdrill).
    from_cli: (bool, bool),
    /// Computed when first needed; forgotten when a shell line may have
    /// changed the key.
    cookies: Option<CookieMap>,
}

impl PdMap {
    /// The script addresses from `opts`, else run_all.py's.
    pub fn new(opts: &RunOptions) -> PdMap {
        PdMap {
            script_isn: 0,
            listening: false,
            passive: 0,
            port_offset: 0,
            conn: Conn::Unknown,
            local: opts.script_local_ip.unwrap_or(IpAddr::V4(PD_LOCAL_V4)),
            remote: opts.script_remote_ip.unwrap_or(IpAddr::V4(PD_REMOTE_V4)),
            from_cli: (
                opts.script_local_ip.is_some(),
                opts.script_remote_ip.is_some(),
            ),
            cookies: None,
        }
    }

    /// A script header option this map takes (`--local_ip`, `--remote_ip`),
    /// unless the command line gave it; false for any other, or for a value
    /// that is not an address.
    pub fn header_option(&mut self, name: &str, value: Option<&str>) -> bool {
        let Some(addr) = value.and_then(parse_addr) else {
            return false;
        };
        match name {
            "local_ip" if !self.from_cli.0 => self.local = addr,
            "remote_ip" if !self.from_cli.1 => self.remote = addr,
            "local_ip" | "remote_ip" => {}
            _ => return false,
        }
        self.cookies = None;
        true
    }

    /// Follows the socket under test: `listen` makes it a listener, a new
    /// `socket` does not listen.
    pub fn on_call(&mut self, call: &SocketCall, ok: bool) {
        match call {
            SocketCall::Listen { .. } => self.listening = ok,
            SocketCall::Socket => {
                self.listening = false;
                if ok {
                    self.conn = Conn::NewSocket;
                }
            }
            _ => {}
        }
    }

    /// An inbound SYN reached the listening socket under test: a new
    /// connection, from a new peer port after the first.
    /// `local` and `peer` are the target's port and the peer's base port.
    pub fn new_passive(&mut self, local: u16, peer: u16) {
        self.listening = false;
        self.port_offset = self.passive;
        self.passive = self.passive.saturating_add(1);
        self.conn = Conn::Ports(local, self.peer_port(peer));
    }

    /// The target sent a new active SYN from port `local` to the peer's
    /// own port `peer`.
    pub fn new_active(&mut self, local: u16, peer: u16) {
        self.port_offset = 0;
        self.conn = Conn::Ports(local, peer);
    }

    /// Whether a packet the target sent from port `src` to `dst` (a SYN
    /// without ACK when `active_syn`) belongs to another connection than
    /// the one under test.
    pub fn foreign(&self, src: u16, dst: u16, active_syn: bool) -> bool {
        match self.conn {
            Conn::Unknown => false,
            Conn::NewSocket => !active_syn,
            Conn::Ports(a, b) => (a, b) != (src, dst),
        }
    }

    /// The peer port of the current connection, from the target's `base`.
    pub fn peer_port(&self, base: u16) -> u16 {
        base.wrapping_add(self.port_offset)
    }

    /// The offset to add to an injected ACK number `ack` before the live
    /// ISN: a SYN's ACK counts from the script's ISN, others from zero.
    pub fn inbound_ack_offset(&self, syn: bool, ack: u32) -> u32 {
        if syn {
            ack.wrapping_sub(self.script_isn)
        } else {
            ack
        }
    }

    /// The target may have another fast-open key from now on.
    pub fn forget_cookies(&mut self) {
        self.cookies = None;
    }

    /// The cookie map for the target's current key, when it has one and
    /// the script's addresses are of the live family.
    pub fn cookies(&mut self, target: &mut dyn Target) -> Option<CookieMap> {
        if self.cookies.is_none() {
            let key = target.fastopen_key()?;
            let (local, peer) = target.addresses();
            if local.is_ipv4() != self.local.is_ipv4() || peer.is_ipv4() != self.remote.is_ipv4() {
                return None;
            }
            self.cookies = Some(CookieMap::new(
                &key,
                (self.remote, self.local),
                (peer.ip(), local.ip()),
            ));
        }
        self.cookies.clone()
    }
}

impl CookieMap {
    /// `opts` with a fast-open cookie in live terms replaced by the script's.
    pub fn options_to_script(&self, opts: &[TcpOpt]) -> Vec<TcpOpt> {
        opts.iter()
            .map(|o| match o {
                TcpOpt::FastOpen { exp, cookie } => TcpOpt::FastOpen {
                    exp: *exp,
                    cookie: self.to_script(cookie),
                },
                o => o.clone(),
            })
            .collect()
    }
}

/// Which packets are the connection under test's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Conn {
    /// None started yet: every packet.
    Unknown,
    /// A new socket is under test and has no connection yet: only the SYN
    /// that its `connect` (or fast-open `sendto`) sends.
    NewSocket,
    /// The target's and the peer's ports.
    Ports(u16, u16),
}

/// Whether `opts` carry a fast-open cookie (not just a request).
pub fn has_cookie(opts: &[TcpOpt]) -> bool {
    opts.iter()
        .any(|o| matches!(o, TcpOpt::FastOpen { cookie, .. } if !cookie.is_empty()))
}

/// An address as packetdrill's flags write it: quoted or not, with or
/// without a `/prefix`.
fn parse_addr(v: &str) -> Option<IpAddr> {
    let v = v.trim().trim_matches('"');
    v.split('/').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_addresses_and_listening() {
        let mut m = PdMap::new(&RunOptions::default());
        assert_eq!(m.local, IpAddr::V4(PD_LOCAL_V4));
        assert!(m.header_option("local_ip", Some("\"10.0.0.2/16\"")));
        assert_eq!(m.local, "10.0.0.2".parse::<IpAddr>().unwrap());
        assert!(!m.header_option("remote_ip", Some("nope")));
        assert!(!m.header_option("mss", Some("1000")));
        let cli = RunOptions {
            script_local_ip: Some("198.51.100.7".parse().unwrap()),
            ..RunOptions::default()
        };
        let mut c = PdMap::new(&cli);
        assert!(c.header_option("local_ip", Some("10.0.0.2")));
        assert_eq!(c.local, "198.51.100.7".parse::<IpAddr>().unwrap());
        assert_eq!(m.peer_port(40000), 40000);
        assert!(!m.foreign(8080, 40000, false));
        m.on_call(&SocketCall::Listen { fd: 3, backlog: 1 }, true);
        assert!(m.listening);
        m.new_passive(8080, 40000);
        assert_eq!(m.peer_port(40000), 40000);
        m.new_passive(8080, 40000);
        assert_eq!(m.peer_port(40000), 40001);
        assert!(m.foreign(8080, 40000, false));
        assert!(!m.foreign(8080, 40001, false));
        m.new_active(33000, 40000);
        assert_eq!(m.peer_port(40000), 40000);
        assert!(m.foreign(8080, 40001, false));
        m.on_call(&SocketCall::Listen { fd: 3, backlog: 1 }, true);
        m.on_call(&SocketCall::Socket, true);
        assert!(!m.listening);
        assert!(m.foreign(33000, 40000, false));
        assert!(!m.foreign(33001, 40000, true));
        m.script_isn = 1000;
        assert_eq!(m.inbound_ack_offset(true, 1001), 1);
        assert_eq!(m.inbound_ack_offset(false, 1001), 1001);
    }
}
