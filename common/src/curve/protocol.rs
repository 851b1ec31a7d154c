//! The bytes of ZMTP-CURVE (RFC 25) and CurveZMQ (RFC 26) shared by both sides: command names,
//! nonce prefixes, box helpers, metadata properties and ZMTP frame encoding.
//!
//! Every box is NaCl's `crypto_box` (X25519 + XSalsa20-Poly1305, the 16-byte tag first), with a
//! 24-byte nonce made of a 16- or 8-byte ASCII prefix and a 8- or 16-byte tail from the wire.

use crypto_box::aead::{Aead, KeyInit};
use crypto_box::{Nonce, SalsaBox};
use crypto_secretbox::XSalsa20Poly1305;

/// Bytes the box adds to its plaintext (the Poly1305 tag).
pub const TAG: usize = 16;
/// A short nonce: 8 bytes, big-endian, strictly increasing per direction.
pub const SHORT_NONCE: usize = 8;
/// A long nonce: 16 random bytes.
pub const LONG_NONCE: usize = 16;
/// The cookie: long nonce + `Box[C' + s'](K)`.
pub const COOKIE_LEN: usize = LONG_NONCE + 64 + TAG;
/// The vouch: long nonce + `Box[C' + S](C → S')`.
pub const VOUCH_LEN: usize = LONG_NONCE + 64 + TAG;

/// `%x05 HELLO`, then version 1.0, 72 bytes of zeros, C', short nonce, signature box.
pub const HELLO: &[u8] = b"\x05HELLO";
/// Body length of a HELLO: the padding makes it as long as the WELCOME, so a spoofed HELLO
/// cannot amplify traffic.
pub const HELLO_LEN: usize = HELLO.len() + 2 + 72 + 32 + SHORT_NONCE + 64 + TAG;
/// `%x07 WELCOME`, then long nonce, `Box[S' + cookie](S → C')`.
pub const WELCOME: &[u8] = b"\x07WELCOME";
/// Body length of a WELCOME.
pub const WELCOME_LEN: usize = WELCOME.len() + LONG_NONCE + 32 + COOKIE_LEN + TAG;
/// `%x08 INITIATE`, then cookie, short nonce, `Box[C + vouch + metadata](C' → S')`.
pub const INITIATE: &[u8] = b"\x08INITIATE";
/// Shortest INITIATE body (no metadata).
pub const INITIATE_MIN: usize = INITIATE.len() + COOKIE_LEN + SHORT_NONCE + 32 + VOUCH_LEN + TAG;
/// `%x05 READY`, then short nonce, `Box[metadata](S' → C')`.
pub const READY: &[u8] = b"\x05READY";
/// `%x07 MESSAGE`, then short nonce, `Box[flags + payload]`.
pub const MESSAGE: &[u8] = b"\x07MESSAGE";
/// Bytes a MESSAGE adds around one frame's payload (name, nonce, tag, flags byte).
pub const MESSAGE_OVERHEAD: usize = MESSAGE.len() + SHORT_NONCE + TAG + 1;
/// `%x05 ERROR`, then a 1-byte length and the reason (sent in clear, before closing).
pub const ERROR: &[u8] = b"\x05ERROR";

/// Nonce prefixes (RFC 26).
pub mod prefix {
    /// HELLO's signature box.
    pub const HELLO: &[u8; 16] = b"CurveZMQHELLO---";
    /// WELCOME's box.
    pub const WELCOME: &[u8; 8] = b"WELCOME-";
    /// The cookie's box.
    pub const COOKIE: &[u8; 8] = b"COOKIE--";
    /// INITIATE's box.
    pub const INITIATE: &[u8; 16] = b"CurveZMQINITIATE";
    /// The vouch's box.
    pub const VOUCH: &[u8; 8] = b"VOUCH---";
    /// READY's box.
    pub const READY: &[u8; 16] = b"CurveZMQREADY---";
    /// MESSAGE boxes from the client.
    pub const MESSAGE_C: &[u8; 16] = b"CurveZMQMESSAGEC";
    /// MESSAGE boxes from the server.
    pub const MESSAGE_S: &[u8; 16] = b"CurveZMQMESSAGES";
}

/// Flags byte inside a MESSAGE box: another frame follows.
pub const MSG_MORE: u8 = 0x01;
/// Flags byte inside a MESSAGE box: the frame is a ZMTP command.
pub const MSG_COMMAND: u8 = 0x02;

/// ZMTP frame flags.
pub const FLAG_MORE: u8 = 0x01;
/// ZMTP frame flags: 8-byte length.
pub const FLAG_LONG: u8 = 0x02;
/// ZMTP frame flags: a command.
pub const FLAG_COMMAND: u8 = 0x04;

fn nonce(prefix: &[u8], tail: &[u8]) -> Nonce {
    let mut n = [0u8; 24];
    n[..prefix.len()].copy_from_slice(prefix);
    n[prefix.len()..].copy_from_slice(tail);
    Nonce::from(n)
}

/// `Box[plain](our secret → their public)` with nonce `prefix + tail`; the tag comes first.
pub fn seal(boxed: &SalsaBox, prefix: &[u8], tail: &[u8], plain: &[u8]) -> Vec<u8> {
    // Encryption fails only past the cipher's 256 GiB length limit, far above any frame.
    boxed
        .encrypt(&nonce(prefix, tail), plain)
        .unwrap_or_default()
}

/// Opens a box sealed by [`seal`]; `None` if it was forged, tampered or meant for another key.
pub fn open(boxed: &SalsaBox, prefix: &[u8], tail: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
    boxed.decrypt(&nonce(prefix, tail), sealed).ok()
}

/// The cookie's secret box under the server's cookie key `key`.
pub fn cookie_seal(key: &[u8; 32], tail: &[u8], plain: &[u8]) -> Vec<u8> {
    XSalsa20Poly1305::new(key.into())
        .encrypt(&nonce(prefix::COOKIE, tail), plain)
        .unwrap_or_default()
}

/// Opens a cookie box, `None` if it was not sealed under `key`.
pub fn cookie_open(key: &[u8; 32], tail: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
    XSalsa20Poly1305::new(key.into())
        .decrypt(&nonce(prefix::COOKIE, tail), sealed)
        .ok()
}

/// Random bytes from the OS source (long nonces, cookie keys).
pub fn random<const N: usize>() -> [u8; N] {
    use crypto_box::aead::rand_core::RngCore;
    let mut bytes = [0u8; N];
    crypto_box::aead::OsRng.fill_bytes(&mut bytes);
    bytes
}

/// A ZMTP 3.0 greeting with `mechanism` (NUL-padded) and the as-server byte.
pub fn greeting(mechanism: &[u8], as_server: bool) -> [u8; 64] {
    let mut g = [0u8; 64];
    g[0] = 0xFF;
    g[9] = 0x7F;
    g[10] = 3;
    g[12..12 + mechanism.len()].copy_from_slice(mechanism);
    g[32] = u8::from(as_server);
    g
}

/// Appends one ZMTP frame (`flags` without LONG; LONG is added when the body needs it).
pub fn put_frame(out: &mut Vec<u8>, flags: u8, body: &[&[u8]]) {
    let len: usize = body.iter().map(|b| b.len()).sum();
    if len > 255 {
        out.push(flags | FLAG_LONG);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    } else {
        out.push(flags);
        out.push(len as u8);
    }
    for part in body {
        out.extend_from_slice(part);
    }
}

/// A frame header parsed from the front of `buf`: (flags, body length, header length), or
/// `None` if the header has not fully arrived.
pub fn frame_header(buf: &[u8]) -> Option<(u8, u64, usize)> {
    let flags = *buf.first()?;
    if flags & FLAG_LONG != 0 {
        let len = buf.get(1..9)?;
        let len = u64::from_be_bytes(len.try_into().ok()?);
        Some((flags, len, 9))
    } else {
        Some((flags, u64::from(*buf.get(1)?), 2))
    }
}

/// Encodes metadata properties: name length (1), name, value length (4, big-endian), value.
pub fn put_property(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.push(name.len() as u8);
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(&(value.len() as u32).to_be_bytes());
    out.extend_from_slice(value);
}

/// Parses metadata properties; `None` if they run past the end. Names compare
/// case-insensitively (ZMTP says so).
pub fn properties(mut bytes: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    let mut found = Vec::new();
    while !bytes.is_empty() {
        let name_len = usize::from(bytes[0]);
        let name = bytes.get(1..1 + name_len)?;
        let at = 1 + name_len;
        let value_len = u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?) as usize;
        let value = bytes.get(at + 4..(at + 4).checked_add(value_len)?)?;
        found.push((String::from_utf8_lossy(name).into_owned(), value.to_vec()));
        bytes = &bytes[at + 4 + value_len..];
    }
    Some(found)
}

/// The value of property `name` (case-insensitive).
pub fn property<'a>(props: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    props
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_slice())
}
