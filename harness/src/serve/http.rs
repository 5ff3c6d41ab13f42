//! Minimal HTTP/1.0 for `serve --http DIR`: `GET` of the regular files of
//! one directory, never a path outside it (`..`, a symlink out of it) and
//! never a FIFO, device or socket (which could block the event loop).

use super::ServeError;
use std::fs::File;
use std::path::{Component, Path, PathBuf};

/// Longest HTTP request head accepted.
pub(super) const MAX_REQUEST: usize = 8 * 1024;

/// The answer to an HTTP/1.0 request once its head is complete: the
/// response head (with a small body for errors) and the file to send after
/// it. `None` while the head is incomplete.
pub(super) fn http_response(dir: &Path, request: &[u8]) -> Option<(Vec<u8>, Option<File>)> {
    let end = request.windows(4).position(|w| w == b"\r\n\r\n");
    let head = match end {
        Some(e) => &request[..e],
        None if request.len() > MAX_REQUEST => {
            return Some(error_response(431, "Request Header Fields Too Large"))
        }
        None => return None,
    };
    let line = head.split(|b| *b == b'\n').next().unwrap_or(&[]);
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (method, target, version) = (parts.next(), parts.next(), parts.next());
    let (Some(method), Some(target)) = (method, target) else {
        return Some(error_response(400, "Bad Request"));
    };
    if !version.is_some_and(|v| v.starts_with("HTTP/1.")) {
        return Some(error_response(400, "Bad Request"));
    }
    if method != "GET" {
        return Some(error_response(405, "Method Not Allowed"));
    }
    let Some(path) = resolve(dir, target) else {
        return Some(error_response(404, "Not Found"));
    };
    let (file, len) = match open_regular(dir, &path) {
        Ok(f) => f,
        Err(Refusal::Missing) => return Some(error_response(404, "Not Found")),
        Err(Refusal::NotRegular) => return Some(error_response(403, "Forbidden")),
    };
    let head = format!(
        "HTTP/1.0 200 OK\r\nContent-Length: {len}\r\nContent-Type: {}\r\nConnection: close\r\nServer: tcpconform-own-stack\r\n\r\n",
        content_type(&path)
    );
    Some((head.into_bytes(), Some(file)))
}

/// Why a path is not served.
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    /// Missing, unreadable, or (after resolving symlinks) outside the
    /// served directory: answered as if it did not exist.
    Missing,
    /// A FIFO, device, socket or directory: never opened for reading
    /// (a FIFO would block the event loop until a writer appears).
    NotRegular,
}

/// The served directory as the containment check sees it: canonical, and
/// a directory.
pub(super) fn http_root(dir: &Path) -> Result<PathBuf, ServeError> {
    let root = std::fs::canonicalize(dir)
        .map_err(|e| ServeError::Options(format!("{}: {e}", dir.display())))?;
    if !root.is_dir() {
        return Err(ServeError::Options(format!(
            "{} is not a directory",
            dir.display()
        )));
    }
    Ok(root)
}

/// Opens `path` for serving when it is a regular file inside `root`
/// (canonical): symlinks are resolved first and the result must stay
/// under `root`; the open itself neither follows a symlink swapped in
/// since (`O_NOFOLLOW`) nor waits for a FIFO's writer (`O_NONBLOCK`), and
/// anything but a regular file is refused after `fstat`. A directory
/// component swapped for a symlink between the check and the open is
/// caught after it: the opened file's own path must still be under `root`
/// ([`opened_inside`]).
fn open_regular(root: &Path, path: &Path) -> Result<(File, u64), Refusal> {
    use std::os::unix::fs::OpenOptionsExt;
    let real = std::fs::canonicalize(path).map_err(|_| Refusal::Missing)?;
    if !real.starts_with(root) {
        return Err(Refusal::Missing);
    }
    let meta = std::fs::symlink_metadata(&real).map_err(|_| Refusal::Missing)?;
    if !meta.file_type().is_file() {
        return Err(Refusal::NotRegular);
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(&real)
        .map_err(|_| Refusal::Missing)?;
    if !opened_inside(&file, root) {
        return Err(Refusal::Missing);
    }
    match file.metadata() {
        Ok(m) if m.file_type().is_file() => Ok((file, m.len())),
        Ok(_) => Err(Refusal::NotRegular),
        Err(_) => Err(Refusal::Missing),
    }
}

/// Whether the file behind an open descriptor is under `root`, by the path
/// the kernel keeps for it (`/proc/self/fd/N`): the answer is about the
/// file actually opened, whatever happened to the path since.
fn opened_inside(file: &File, root: &Path) -> bool {
    use std::os::fd::AsRawFd;
    std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
        .is_ok_and(|p| p.starts_with(root))
}

fn error_response(code: u16, reason: &str) -> (Vec<u8>, Option<File>) {
    let body = format!("{code} {reason}\n");
    let head = format!(
        "HTTP/1.0 {code} {reason}\r\nContent-Length: {}\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    (head.into_bytes(), None)
}

/// The file a request target names under `dir`: `/` is `index.html`; query
/// strings are ignored; `%XX` escapes are decoded; anything that could leave
/// `dir` (`..`, absolute components, NUL) is refused.
fn resolve(dir: &Path, target: &str) -> Option<PathBuf> {
    let path = target.split(['?', '#']).next()?;
    let rel = path.strip_prefix('/')?;
    let decoded = percent_decode(rel)?;
    let mut out = dir.to_path_buf();
    for comp in Path::new(&decoded).components() {
        match comp {
            Component::Normal(c) => out.push(c),
            Component::CurDir => {}
            _ => return None,
        }
    }
    if out.is_dir() {
        out.push("index.html");
    }
    Some(out)
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    if out.contains(&0) {
        return None;
    }
    String::from_utf8(out).ok()
}

fn content_type(p: &Path) -> &'static str {
    match p.extension().and_then(|e| e.to_str()) {
        Some("html" | "htm") => "text/html",
        Some("txt") => "text/plain",
        Some("json") => "application/json",
        Some("css") => "text/css",
        Some("js") => "text/javascript",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    fn dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("tcpconform-serve-unit-{}", std::process::id()));
        let _ = std::fs::create_dir_all(d.join("sub"));
        let _ = std::fs::write(d.join("index.html"), b"<p>hi</p>");
        let _ = std::fs::write(d.join("sub/a b.txt"), b"x");
        d
    }

    fn status(r: &(Vec<u8>, Option<File>)) -> String {
        let s = String::from_utf8_lossy(&r.0);
        s.lines().next().unwrap_or("").to_string()
    }

    #[test]
    fn http_requests() {
        let d = http_root(&dir()).unwrap();
        assert!(
            http_response(&d, b"GET / HTTP/1.0\r\n").is_none(),
            "incomplete"
        );
        let ok = http_response(&d, b"GET / HTTP/1.0\r\n\r\n").unwrap();
        assert_eq!(status(&ok), "HTTP/1.0 200 OK");
        assert!(String::from_utf8_lossy(&ok.0).contains("Content-Length: 9\r\n"));
        assert!(ok.1.is_some());
        let sub = http_response(&d, b"GET /sub/a%20b.txt?x=1 HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        assert_eq!(status(&sub), "HTTP/1.0 200 OK");
        for (req, code) in [
            (&b"GET /../etc/passwd HTTP/1.0\r\n\r\n"[..], "404"),
            (b"GET /sub/../../x HTTP/1.0\r\n\r\n", "404"),
            (b"GET /%2e%2e/x HTTP/1.0\r\n\r\n", "404"),
            (b"GET /missing HTTP/1.0\r\n\r\n", "404"),
            (b"GET /a%00 HTTP/1.0\r\n\r\n", "404"),
            (b"POST / HTTP/1.0\r\n\r\n", "405"),
            (b"GET\r\n\r\n", "400"),
            (b"GET / SPDY\r\n\r\n", "400"),
            (b"\r\n\r\n", "400"),
        ] {
            let r = http_response(&d, req).unwrap();
            assert!(
                status(&r).contains(code),
                "{:?}: {}",
                String::from_utf8_lossy(req),
                status(&r)
            );
            assert!(r.1.is_none());
        }
        let huge = vec![b'a'; MAX_REQUEST + 1];
        assert!(status(&http_response(&d, &huge).unwrap()).contains("431"));
    }

    /// A directory with a symlink out of it, a symlink inside it, a FIFO
    /// and a symlink to a device.
    fn hostile_dir() -> (PathBuf, PathBuf) {
        let base =
            std::env::temp_dir().join(format!("tcpconform-serve-hostile-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let (d, outside) = (base.join("www"), base.join("secret.txt"));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(&outside, b"not for clients").unwrap();
        std::fs::write(d.join("ok.txt"), b"fine").unwrap();
        std::os::unix::fs::symlink(&outside, d.join("secret")).unwrap();
        std::os::unix::fs::symlink("ok.txt", d.join("alias.txt")).unwrap();
        std::os::unix::fs::symlink(&base, d.join("up")).unwrap();
        std::os::unix::fs::symlink("/dev/zero", d.join("zero")).unwrap();
        let fifo =
            std::ffi::CString::new(d.join("pipe").into_os_string().into_encoded_bytes()).unwrap();
        // SAFETY: `fifo` is a NUL-terminated path that outlives the call.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        (http_root(&d).unwrap(), base)
    }

    #[test]
    fn an_opened_file_is_placed_by_its_descriptor() {
        let base = std::env::temp_dir().join(format!("tcpconform-serve-fd-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(base.join("www")).unwrap();
        std::fs::write(base.join("www/ok.txt"), b"fine").unwrap();
        std::fs::write(base.join("secret.txt"), b"not for clients").unwrap();
        let root = http_root(&base.join("www")).unwrap();
        let inside = File::open(root.join("ok.txt")).unwrap();
        assert!(opened_inside(&inside, &root));
        // Reached through a path that was inside when checked: the
        // descriptor still says where the file really is.
        std::os::unix::fs::symlink(&base, root.join("up")).unwrap();
        let outside = File::open(root.join("up/secret.txt")).unwrap();
        assert!(!opened_inside(&outside, &root));
        let _ = std::fs::remove_dir_all(&base);
    }

    #[test]
    fn http_never_leaves_the_directory_nor_blocks_on_a_fifo() {
        let (d, base) = hostile_dir();
        // Answered on another thread: opening the FIFO for reading would
        // block until a writer appears, which must not happen.
        let (tx, rx) = mpsc::channel();
        let root = d.clone();
        std::thread::spawn(move || {
            for (req, code) in [
                ("/ok.txt", "200"),
                ("/alias.txt", "200"),
                ("/secret", "404"),
                ("/up/secret.txt", "404"),
                ("/zero", "404"),
                ("/pipe", "403"),
            ] {
                let head = format!("GET {req} HTTP/1.0\r\n\r\n");
                let r = http_response(&root, head.as_bytes()).unwrap();
                let _ = tx.send((req, code, status(&r), r.1.is_some()));
            }
        });
        for _ in 0..6 {
            let (req, code, got, body) = rx
                .recv_timeout(Duration::from_secs(10))
                .expect("a request blocked the server");
            assert!(got.contains(code), "{req}: {got}");
            assert_eq!(body, code == "200", "{req}");
        }
        let _ = std::fs::remove_dir_all(base);
    }
}
