//! Errors of the socket-shaped API, shaped like errno values so a script
//! harness can map `= -1 ECONNREFUSED` onto them.

/// Why a socket call failed (RFC 9293 §3.9.1 error reports, named after the
/// POSIX errno each maps to).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Error {
    /// No socket has this handle (EBADF).
    #[error("invalid handle")]
    InvalidHandle,
    /// The peer answered the SYN with a RST (ECONNREFUSED).
    #[error("connection refused")]
    ConnectionRefused,
    /// The connection was reset by the peer (ECONNRESET).
    #[error("connection reset")]
    ConnectionReset,
    /// The connection was aborted locally, e.g. by a user timeout
    /// (ETIMEDOUT).
    #[error("connection timed out")]
    TimedOut,
    /// The call needs a connection that does not exist (ENOTCONN).
    #[error("not connected")]
    NotConnected,
    /// The call would have to wait (EAGAIN / EWOULDBLOCK).
    #[error("operation would block")]
    WouldBlock,
    /// The address, port or 4-tuple is already in use (EADDRINUSE).
    #[error("address already in use")]
    AlreadyExists,
    /// The local address is not one of the endpoint's (EADDRNOTAVAIL).
    #[error("address not available")]
    AddrNotAvailable,
    /// The sending direction is closed (EPIPE).
    #[error("connection closing")]
    ConnectionClosing,
    /// The call is not valid on this socket (EINVAL), e.g. `accept` on a
    /// connection or `send` on a listener.
    #[error("invalid argument")]
    InvalidInput,
    /// A connection is already in progress or established (EISCONN).
    #[error("already connected")]
    AlreadyConnected,
    /// No ephemeral port is free (EADDRNOTAVAIL on connect).
    #[error("no free ephemeral port")]
    NoPortAvailable,
}

impl Error {
    /// The POSIX errno name this error corresponds to.
    pub fn errno_name(self) -> &'static str {
        match self {
            Error::InvalidHandle => "EBADF",
            Error::ConnectionRefused => "ECONNREFUSED",
            Error::ConnectionReset => "ECONNRESET",
            Error::TimedOut => "ETIMEDOUT",
            Error::NotConnected => "ENOTCONN",
            Error::WouldBlock => "EAGAIN",
            Error::AlreadyExists => "EADDRINUSE",
            Error::AddrNotAvailable | Error::NoPortAvailable => "EADDRNOTAVAIL",
            Error::ConnectionClosing => "EPIPE",
            Error::InvalidInput => "EINVAL",
            Error::AlreadyConnected => "EISCONN",
        }
    }
}

/// Result of a socket call.
pub type Result<T> = std::result::Result<T, Error>;
