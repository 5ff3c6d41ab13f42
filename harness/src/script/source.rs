//! Reading a script file, refusing what is not a script before it can
//! hang or exhaust the harness: a FIFO or device (opening a FIFO for
//! reading waits for a writer; `/dev/zero` never ends), a file over
//! [`MAX_SCRIPT_BYTES`], bytes that are not UTF-8. Every refusal names the
//! path (and, for bad bytes, `line:col`) and the reason.

use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// The largest script accepted: packetdrill's longest corpus scripts are
/// a few KiB, the suite's a few hundred bytes.
pub const MAX_SCRIPT_BYTES: u64 = 4 << 20;

/// The text of the script at `path` (symlinks followed), or
/// `path[:line:col]: reason`.
pub fn read_script(path: &Path) -> Result<String, String> {
    let shown = path.display();
    // O_NONBLOCK: opening a FIFO returns at once instead of waiting for a
    // writer; reads of a regular file are unaffected.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| format!("{shown}: cannot read: {e}"))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("{shown}: cannot read: {e}"))?;
    let kind = meta.file_type();
    if !kind.is_file() {
        let what = if kind.is_fifo() {
            "a FIFO"
        } else if kind.is_char_device() {
            "a character device"
        } else if kind.is_block_device() {
            "a block device"
        } else if kind.is_socket() {
            "a socket"
        } else if kind.is_dir() {
            "a directory"
        } else {
            "not a regular file"
        };
        return Err(format!(
            "{shown}: is {what}: scripts are read from regular files only"
        ));
    }
    let too_big = |n: u64| {
        format!(
            "{shown}: {n} bytes or more: a script may have at most {} MiB",
            MAX_SCRIPT_BYTES >> 20
        )
    };
    if meta.len() > MAX_SCRIPT_BYTES {
        return Err(too_big(meta.len()));
    }
    // The size can change after the check (or be 0 for a /proc file):
    // read one byte past the cap at most.
    let mut bytes = Vec::new();
    file.take(MAX_SCRIPT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{shown}: cannot read: {e}"))?;
    if bytes.len() as u64 > MAX_SCRIPT_BYTES {
        return Err(too_big(bytes.len() as u64));
    }
    String::from_utf8(bytes).map_err(|e| {
        let bytes = e.as_bytes();
        let at = e.utf8_error().valid_up_to();
        let valid = String::from_utf8_lossy(&bytes[..at]);
        let line = valid.matches('\n').count() + 1;
        let col = valid.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        format!(
            "{shown}:{line}:{col}: not UTF-8 (byte 0x{:02x}): scripts are UTF-8 text",
            bytes[at]
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn scratch(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("tcpconform-source-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        if let Err(e) = std::fs::create_dir_all(&d) {
            panic!("{}: {e}", d.display());
        }
        d
    }

    /// Without O_NONBLOCK and the file-type check, the open blocks forever.
    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let d = scratch("fifo");
        let p = d.join("x.pkt");
        let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap_or_default();
        // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = read_script(&p).err().unwrap_or_default();
        assert_eq!(
            e,
            format!(
                "{}: is a FIFO: scripts are read from regular files only",
                p.display()
            )
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_symlink_to_dev_zero_is_refused() {
        let d = scratch("zero");
        let p = d.join("zero.pkt");
        if let Err(e) = std::os::unix::fs::symlink("/dev/zero", &p) {
            panic!("{e}");
        }
        let e = read_script(&p).err().unwrap_or_default();
        assert!(
            e.ends_with("is a character device: scripts are read from regular files only"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    /// A sparse file over the cap: refused by its size, nothing read.
    #[test]
    fn an_oversized_file_is_refused() {
        let d = scratch("big");
        let p = d.join("big.pkt");
        let f = std::fs::File::create(&p).and_then(|f| f.set_len(100 << 20));
        if let Err(e) = f {
            panic!("{e}");
        }
        let e = read_script(&p).err().unwrap_or_default();
        assert!(e.contains("a script may have at most 4 MiB"), "{e}");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn bad_bytes_are_located() {
        let d = scratch("utf8");
        let p = d.join("u.pkt");
        if let Err(e) = std::fs::write(&p, b"0 close(3) = 0\n+0 \xc3\xa9 \xff\n") {
            panic!("{e}");
        }
        let e = read_script(&p).err().unwrap_or_default();
        assert_eq!(
            e,
            format!(
                "{}:2:6: not UTF-8 (byte 0xff): scripts are UTF-8 text",
                p.display()
            )
        );
        let _ = std::fs::remove_dir_all(&d);
    }
}
