//! The applications of `serve`, one per connection: echo, discard, HTTP
//! (answered by [`super::http`]) and the own stack as a client. Each moves
//! as much data as the stack takes now and says whether the connection is
//! still open.

use super::event_loop::Server;
use super::http::{http_response, MAX_REQUEST};
use super::{ServeMode, ServeStats};
use std::fs::File;
use std::io::Read;
use std::sync::mpsc::SyncSender;
use tcp_spec::State;
use tcp_stack::{Endpoint, Error as StackError, Handle, Instant, Shutdown};

/// Echo stops reading while this much is waiting to be echoed (the peer's
/// window closes instead: flow control, not memory, absorbs a slow reader).
const ECHO_BACKLOG: usize = 256 * 1024;
/// Chunk read from a served file at a time.
pub(super) const FILE_CHUNK: usize = 64 * 1024;

/// What a connection does.
pub(super) enum App {
    /// Sends back what arrives.
    Echo(Echo),
    /// Reads and drops everything.
    Discard,
    /// Answers one HTTP/1.0 request.
    Http(Http),
    /// The own stack's side of [`super::ServeHandle::connect`].
    Client(Client),
}

impl App {
    /// The application of a server connection in `mode`.
    pub(super) fn server(mode: &ServeMode) -> App {
        match mode {
            ServeMode::Echo => App::Echo(Echo::default()),
            ServeMode::Discard => App::Discard,
            ServeMode::Http(_) => App::Http(Http::default()),
        }
    }
}

/// Echo's state: what waits to be echoed, how much of it is sent, and
/// whether the peer's FIN arrived.
#[derive(Default)]
pub(super) struct Echo {
    pending: Vec<u8>,
    off: usize,
    eof: bool,
}

/// HTTP's state: the request head so far, the response head then the file
/// in chunks, and whether the request was answered.
#[derive(Default)]
pub(super) struct Http {
    request: Vec<u8>,
    pending: Vec<u8>,
    off: usize,
    body: Option<File>,
    responded: bool,
}

/// The client's state: the upload and how much of it is sent, what
/// arrived, the deadline and where to answer.
pub(super) struct Client {
    pub(super) upload: Vec<u8>,
    pub(super) off: usize,
    pub(super) fin_sent: bool,
    pub(super) received: Vec<u8>,
    pub(super) deadline: Instant,
    pub(super) reply: SyncSender<Result<Vec<u8>, String>>,
}

/// One connection: its handle, its number (for the tap) and what it does.
pub(super) struct Conn {
    pub(super) h: Handle,
    pub(super) id: u64,
    pub(super) app: App,
}

/// What became of a connection after some progress.
pub(super) enum Progress {
    /// Still running.
    Open,
    /// Finished: the handle was closed (the stack completes the close).
    Closed,
    /// Failed with this reason: the handle was aborted.
    Failed(String),
}

impl Server {
    /// Lets one connection's application move data.
    pub(super) fn progress_one(&mut self, now: Instant, c: &mut Conn) -> Progress {
        let (h, id) = (c.h, c.id);
        match &mut c.app {
            App::Discard => self.discard(now, h, id),
            App::Echo(e) => self.echo(now, h, id, e),
            App::Http(x) => self.http(now, h, id, x),
            App::Client(x) => self.client(now, h, x),
        }
    }

    /// Closes a finished connection (the stack completes the close).
    fn close(&mut self, now: Instant, h: Handle) -> Progress {
        match self.ep.close(now, h) {
            Ok(()) => Progress::Closed,
            Err(e) => Progress::Failed(format!("close: {e}")),
        }
    }

    /// Discard: reads and drops everything; closes after the peer's FIN.
    fn discard(&mut self, now: Instant, h: Handle, id: u64) -> Progress {
        loop {
            match self.ep.recv(now, h, &mut self.scratch) {
                Ok(0) => return self.close(now, h),
                Ok(n) => {
                    self.stats.bytes_received += n as u64;
                    if let Some(tap) = self.tap.as_mut() {
                        tap(id, &self.scratch[..n]);
                    }
                }
                Err(StackError::WouldBlock) => return Progress::Open,
                Err(e) => return Progress::Failed(e.to_string()),
            }
        }
    }

    /// Echo: sends back what arrives; closes after the peer's FIN once
    /// everything is echoed.
    fn echo(&mut self, now: Instant, h: Handle, id: u64, e: &mut Echo) -> Progress {
        let Echo { pending, off, eof } = e;
        loop {
            if let Err(e) = push(&mut self.ep, now, h, pending, off, &mut self.stats) {
                return Progress::Failed(e);
            }
            if *eof {
                if pending.is_empty() {
                    return self.close(now, h);
                }
                return Progress::Open;
            }
            if pending.len() - *off >= ECHO_BACKLOG {
                return Progress::Open;
            }
            match self.ep.recv(now, h, &mut self.scratch) {
                Ok(0) => *eof = true,
                Ok(n) => {
                    self.stats.bytes_received += n as u64;
                    let data = &self.scratch[..n];
                    if let Some(tap) = self.tap.as_mut() {
                        tap(id, data);
                    }
                    pending.extend_from_slice(data);
                }
                Err(StackError::WouldBlock) => return Progress::Open,
                Err(e) => return Progress::Failed(e.to_string()),
            }
        }
    }

    /// HTTP/1.0: reads the request head, answers it (a file of the
    /// served directory, or an error), then closes.
    fn http(&mut self, now: Instant, h: Handle, id: u64, x: &mut Http) -> Progress {
        let Http {
            request,
            pending,
            off,
            body,
            responded,
        } = x;
        // Read (and after the head, drop) whatever the client sends.
        loop {
            match self.ep.recv(now, h, &mut self.scratch) {
                Ok(0) => {
                    if !*responded {
                        // The client closed before a whole request.
                        return self.close(now, h);
                    }
                    break;
                }
                Ok(n) => {
                    self.stats.bytes_received += n as u64;
                    let data = &self.scratch[..n];
                    if let Some(tap) = self.tap.as_mut() {
                        tap(id, data);
                    }
                    if !*responded && request.len() < MAX_REQUEST + 4 {
                        request.extend_from_slice(data);
                    }
                }
                Err(StackError::WouldBlock) => break,
                Err(e) => return Progress::Failed(e.to_string()),
            }
        }
        if !*responded {
            match http_response(&self.root, request) {
                Some((head, file)) => {
                    *pending = head;
                    *off = 0;
                    *body = file;
                    *responded = true;
                }
                None => return Progress::Open,
            }
        }
        loop {
            if let Err(e) = push(&mut self.ep, now, h, pending, off, &mut self.stats) {
                return Progress::Failed(e);
            }
            if !pending.is_empty() {
                return Progress::Open;
            }
            let Some(file) = body.as_mut() else {
                return self.close(now, h);
            };
            self.scratch.resize(FILE_CHUNK, 0);
            match file.read(&mut self.scratch) {
                Ok(0) => *body = None,
                Ok(n) => pending.extend_from_slice(&self.scratch[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Progress::Failed(format!("reading the file: {e}")),
            }
        }
    }

    /// The own stack as a client: sends the upload, half-closes, reads
    /// until the peer's FIN, and answers the caller of
    /// [`super::ServeHandle::connect`].
    fn client(&mut self, now: Instant, h: Handle, x: &mut Client) -> Progress {
        let Client {
            upload,
            off,
            fin_sent,
            received,
            deadline,
            reply,
        } = x;
        if now >= *deadline {
            return Progress::Failed("timed out".into());
        }
        let st = match self.ep.status(h) {
            Ok(s) => s,
            Err(e) => return Progress::Failed(e.to_string()),
        };
        if let Some(e) = st.error {
            return Progress::Failed(e.to_string());
        }
        if matches!(st.state, State::SynSent | State::SynReceived) {
            return Progress::Open;
        }
        while *off < upload.len() {
            match self.ep.send(now, h, &upload[*off..]) {
                Ok(0) | Err(StackError::WouldBlock) => break,
                Ok(n) => {
                    *off += n;
                    self.stats.bytes_sent += n as u64;
                }
                Err(e) => return Progress::Failed(e.to_string()),
            }
        }
        if *off == upload.len() && !*fin_sent {
            if let Err(e) = self.ep.shutdown(now, h, Shutdown::Write) {
                return Progress::Failed(e.to_string());
            }
            *fin_sent = true;
        }
        loop {
            match self.ep.recv(now, h, &mut self.scratch) {
                Ok(0) => {
                    if !*fin_sent {
                        // The peer finished first: keep sending.
                        break;
                    }
                    let _ = reply.try_send(Ok(std::mem::take(received)));
                    return self.close(now, h);
                }
                Ok(n) => {
                    self.stats.bytes_received += n as u64;
                    received.extend_from_slice(&self.scratch[..n]);
                }
                Err(StackError::WouldBlock) => break,
                Err(e) => return Progress::Failed(e.to_string()),
            }
        }
        Progress::Open
    }
}

/// Sends as much of `pending[*off..]` as the stack takes; clears the buffer
/// once all of it is taken.
fn push(
    ep: &mut Endpoint,
    now: Instant,
    h: Handle,
    pending: &mut Vec<u8>,
    off: &mut usize,
    stats: &mut ServeStats,
) -> Result<(), String> {
    while *off < pending.len() {
        match ep.send(now, h, &pending[*off..]) {
            Ok(0) | Err(StackError::WouldBlock) => break,
            Ok(n) => {
                *off += n;
                stats.bytes_sent += n as u64;
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    if *off >= pending.len() {
        pending.clear();
        *off = 0;
    }
    Ok(())
}
