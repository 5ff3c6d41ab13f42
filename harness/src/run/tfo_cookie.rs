//! TCP Fast Open server cookies as Linux computes them, so that a script's
//! cookie can be translated between packetdrill's addresses and the
//! harness's (RFC 7413 4.1.2: the server derives the cookie from the
//! client's address with a secret key; 4.1.3: it validates a cookie the
//! same way).
//!
//! Linux's cookie is SipHash-2-4, keyed with the 16-octet fast-open key
//! (`net.ipv4.tcp_fastopen_key` or the listener's `TCP_FASTOPEN_KEY`),
//! over the SYN's source then destination address; the 64-bit result is
//! the cookie in little-endian order. packetdrill's corpus carries cookies
//! computed for its addresses (192.0.2.1 → 192.168.0.1 with run_all.py's
//! flags); the harness uses documentation addresses only, so under
//! `--packetdrill` a script cookie that is the kernel's cookie for the
//! script's addresses stands for the kernel's cookie for the live ones,
//! both ways, as packetdrill maps sequence numbers.

use std::net::IpAddr;

/// The fast-open key as the sysctl prints it: four 32-bit hex words
/// `xxxxxxxx-xxxxxxxx-xxxxxxxx-xxxxxxxx` (a `,backup` key after the
/// primary is ignored). Each word is stored little-endian, as the kernel
/// stores it. `None` when `text` is not of that form.
pub fn parse_key(text: &str) -> Option<[u8; 16]> {
    let primary = text.trim().split(',').next()?;
    let words: Vec<&str> = primary.split('-').collect();
    if words.len() != 4 {
        return None;
    }
    let mut key = [0u8; 16];
    for (i, w) in words.iter().enumerate() {
        let v = u32::from_str_radix(w, 16).ok()?;
        key[i * 4..i * 4 + 4].copy_from_slice(&v.to_le_bytes());
    }
    Some(key)
}

/// The cookie a Linux server with `key` gives the client `client`
/// connecting to `server`. Both addresses must be of one family.
pub fn server_cookie(key: &[u8; 16], client: IpAddr, server: IpAddr) -> Vec<u8> {
    let mut data = Vec::with_capacity(32);
    for a in [client, server] {
        match a {
            IpAddr::V4(a) => data.extend_from_slice(&a.octets()),
            IpAddr::V6(a) => data.extend_from_slice(&a.octets()),
        }
    }
    let k0 = u64::from_le_bytes(key[..8].try_into().unwrap_or_default());
    let k1 = u64::from_le_bytes(key[8..].try_into().unwrap_or_default());
    tcp_stack::siphash24(k0, k1, &data).to_le_bytes().to_vec()
}

/// A script cookie and the live cookie it stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieMap {
    /// The kernel's cookie for the script's addresses.
    pub script: Vec<u8>,
    /// The kernel's cookie for the harness's addresses.
    pub live: Vec<u8>,
}

impl CookieMap {
    /// The map for `key`: the client is the peer, the server the kernel,
    /// in the script's addresses and in the live ones.
    pub fn new(key: &[u8; 16], script: (IpAddr, IpAddr), live: (IpAddr, IpAddr)) -> CookieMap {
        CookieMap {
            script: server_cookie(key, script.0, script.1),
            live: server_cookie(key, live.0, live.1),
        }
    }

    /// `cookie` in live terms (an injected option).
    pub fn to_live(&self, cookie: &[u8]) -> Vec<u8> {
        if cookie == self.script.as_slice() {
            self.live.clone()
        } else {
            cookie.to_vec()
        }
    }

    /// `cookie` in script terms (a sent option).
    pub fn to_script(&self, cookie: &[u8]) -> Vec<u8> {
        if cookie == self.live.as_slice() {
            self.script.clone()
        } else {
            cookie.to_vec()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_text_parses_as_the_kernel_stores_it() {
        let k = parse_key("a1a1a1a1-b2b2b2b2-c3c3c3c3-d4d4d4d4\n").unwrap();
        assert_eq!(&k[..4], &[0xa1; 4]);
        assert_eq!(&k[12..], &[0xd4; 4]);
        let k = parse_key("00000001-00000000-00000000-00000000,1-2-3-4").unwrap();
        assert_eq!(k[0], 1);
        assert!(parse_key("a1a1a1a1-b2b2b2b2").is_none());
        assert!(parse_key("zz-0-0-0").is_none());
    }

    #[test]
    fn map_translates_only_the_mapped_cookie() {
        let key = parse_key("a1a1a1a1-b2b2b2b2-c3c3c3c3-d4d4d4d4").unwrap();
        let m = CookieMap::new(
            &key,
            (
                "192.0.2.1".parse().unwrap(),
                "198.51.100.1".parse().unwrap(),
            ),
            ("192.0.2.2".parse().unwrap(), "192.0.2.1".parse().unwrap()),
        );
        assert_ne!(m.script, m.live);
        assert_eq!(m.to_live(&m.script), m.live);
        assert_eq!(m.to_script(&m.live), m.script);
        assert_eq!(m.to_live(&[1, 2, 3, 4]), vec![1, 2, 3, 4]);
    }
}
