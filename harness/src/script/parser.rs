//! Recursive-descent parser from tokens to the [`Script`] tree.
//!
//! Grammar (packetdrill's, the reference for compatibility):
//!
//! ```text
//! script   := option* item*
//! option   := `--name` | `--name=value`            (only before the first event)
//! item     := time? `` `command` ``                  (shell; time optional)
//!           | time packet | time syscall
//! time     := `*` | point | point `~` point | point `...` point
//! point    := `+`? (INT | DECIMAL)                    (seconds)
//! packet   := (`<` | `>`) flags (INT `:` INT `(` INT `)`)?
//!             (`ack` INT | `win` INT | `urg` INT)* (`<` (`...` | tcpopt (`,` tcpopt)*) `>`)?
//! syscall  := NAME `(` (expr (`,` expr)*)? `)` `=` `-`? INT ERRNO? (`(` free text `)`)?
//! expr     := primary (`|` primary)*
//! primary  := `-`? INT | `...` | NAME | NAME `(` args `)` | STRING
//!           | `[` exprs `]` | `{` (NAME `=` expr),* `}`
//! ```
//!
//! Each event starts on a new line; an event may continue over several lines
//! only inside brackets.

use super::ast::{
    CodeBlock, Direction, Ecn, Event, EventKind, Expr, IcmpSpec, IpVersion, Opt, PacketSpec,
    Script, ScriptOption, ShellCommand, SyscallSpec, TcpFlags, TcpOpt, TimePoint, TimeSpec,
    MICROS_PER_SEC,
};
use super::lexer::{Diag, Lexer, Tok, Token};

/// Deepest nesting of `[`, `{` and calls in system-call arguments.
pub const MAX_NESTING: usize = 32;

type PResult<T> = Result<T, Diag>;

pub(crate) fn parse_script(
    text: &str,
    defines: std::collections::BTreeMap<String, String>,
) -> PResult<Script> {
    Parser {
        lx: Lexer::new(text).with_defines(defines),
        depth: 0,
    }
    .script()
}

struct Parser {
    lx: Lexer,
    depth: usize,
}

fn err<T>(t: &Token, message: impl Into<String>) -> PResult<T> {
    Err(Diag::new(t.line, t.col, message))
}

impl Parser {
    fn peek(&mut self) -> PResult<Token> {
        self.lx.peek().cloned()
    }

    fn next(&mut self) -> PResult<Token> {
        self.lx.next()
    }

    /// The next token if it is on the same line as the previous one.
    fn peek_same_line(&mut self) -> PResult<Option<Token>> {
        let prev = self.lx.last_end_line;
        let t = self.peek()?;
        Ok((t.tok != Tok::Eof && t.line == prev).then_some(t))
    }

    fn expect(&mut self, want: Tok, context: &str) -> PResult<Token> {
        let t = self.next()?;
        if t.tok == want {
            Ok(t)
        } else {
            err(&t, format!("expected {want} {context}, found {}", t.tok))
        }
    }

    fn script(&mut self) -> PResult<Script> {
        let mut script = Script::default();
        let mut prev_was_option = false;
        let mut started = false;
        loop {
            let t = self.peek()?;
            if t.tok == Tok::Eof {
                return Ok(script);
            }
            let is_opt = matches!(t.tok, Tok::Opt { .. });
            if started && t.line <= self.lx.last_end_line && !(prev_was_option && is_opt) {
                return err(
                    &t,
                    format!("unexpected {} after the end of the previous item; each event must start on its own line", t.tok),
                );
            }
            started = true;
            match t.tok {
                Tok::Opt { .. } => {
                    if !script.events.is_empty() {
                        return err(&t, format!("{} must come before the first event", t.tok));
                    }
                    script.options.push(self.option()?);
                    prev_was_option = true;
                    continue;
                }
                Tok::Backtick(_) | Tok::Code(_) => {
                    let kind = self.shell()?;
                    script.events.push(Event {
                        time: TimeSpec::Unspecified,
                        line: t.line,
                        col: t.col,
                        kind,
                    });
                }
                Tok::Plus | Tok::Int(_) | Tok::Decimal(_) | Tok::Star => {
                    script.events.push(self.timed_event()?);
                }
                _ => {
                    return err(
                        &t,
                        format!(
                            "expected a time (such as `0`, `+0.1` or `*`), a `--option` or a `` `command` ``, found {}",
                            t.tok
                        ),
                    );
                }
            }
            prev_was_option = false;
        }
    }

    fn option(&mut self) -> PResult<ScriptOption> {
        let t = self.next()?;
        let (line, col) = (t.line, t.col);
        let Tok::Opt { name, value } = t.tok else {
            return err(&t, "expected an option");
        };
        let opt = match (name.as_str(), value) {
            ("tolerance_usecs", Some(v)) => match v.text.parse::<u64>() {
                Ok(n) => Opt::ToleranceUsecs(n),
                Err(_) => {
                    return Err(Diag::new(
                        v.line,
                        v.col,
                        format!("`--tolerance_usecs` needs a whole number of microseconds, found `{}`", v.text),
                    ))
                }
            },
            ("tolerance_percent", Some(v)) => match v.text.parse::<u64>() {
                Ok(n) if n <= 100 => Opt::TolerancePercent(n),
                _ => {
                    return Err(Diag::new(
                        v.line,
                        v.col,
                        format!("`--tolerance_percent` needs a whole number from 0 to 100, found `{}`", v.text),
                    ))
                }
            },
            ("ip_version", Some(v)) => match v.text.as_str() {
                "ipv4" => Opt::IpVersion(IpVersion::V4),
                "ipv6" => Opt::IpVersion(IpVersion::V6),
                "ipv4-mapped-ipv6" => Opt::IpVersion(IpVersion::V4MappedV6),
                other => {
                    return Err(Diag::new(
                        v.line,
                        v.col,
                        format!("unknown `--ip_version` `{other}` (expected ipv4, ipv6 or ipv4-mapped-ipv6)"),
                    ))
                }
            },
            ("tolerance_usecs" | "ip_version", None) => {
                return Err(Diag::new(
                    line,
                    col,
                    format!("option `--{name}` needs a value (`--{name}=...`)"),
                ));
            }
            (_, value) => Opt::Other {
                name,
                value: value.map(|v| v.text),
            },
        };
        Ok(ScriptOption { line, col, opt })
    }

    fn shell(&mut self) -> PResult<EventKind> {
        let t = self.next()?;
        match t.tok {
            Tok::Backtick(cmd) => Ok(EventKind::Shell(ShellCommand { cmd })),
            Tok::Code(code) => Ok(EventKind::Code(CodeBlock { code })),
            ref other => err(&t, format!("expected a `` `command` ``, found {other}")),
        }
    }

    fn timed_event(&mut self) -> PResult<Event> {
        let first = self.peek()?;
        let time = self.time_spec()?;
        let Some(t) = self.peek_same_line()? else {
            return err(
                &first,
                format!("time `{time}` is not followed by an event on the same line"),
            );
        };
        let kind = match &t.tok {
            Tok::Lt | Tok::Gt => self.packet()?,
            Tok::Ident(_) => EventKind::Syscall(self.syscall()?),
            Tok::Backtick(_) | Tok::Code(_) => self.shell()?,
            other => {
                return err(
                    &t,
                    format!("expected a packet (`<` or `>`), a system call or a `` `command` `` after the time, found {other}"),
                );
            }
        };
        if matches!(time, TimeSpec::Blocking { .. }) && !matches!(kind, EventKind::Syscall(_)) {
            return err(
                &first,
                "a blocking time range `start...end` is only allowed for system calls",
            );
        }
        Ok(Event {
            time,
            line: first.line,
            col: first.col,
            kind,
        })
    }

    fn time_spec(&mut self) -> PResult<TimeSpec> {
        let t = self.peek()?;
        if t.tok == Tok::Star {
            self.next()?;
            return Ok(TimeSpec::Any);
        }
        let start = self.time_point()?;
        let Some(t) = self.peek_same_line()? else {
            return Ok(TimeSpec::At(start));
        };
        match t.tok {
            Tok::Tilde => {
                self.next()?;
                let end = self.time_point()?;
                if end.relative == start.relative && end.usecs < start.usecs {
                    return err(
                        &t,
                        format!("time range `{start}~{end}` ends before it starts"),
                    );
                }
                Ok(TimeSpec::Range { start, end })
            }
            Tok::Ellipsis => {
                self.next()?;
                let end = self.time_point()?;
                Ok(TimeSpec::Blocking { start, end })
            }
            _ => Ok(TimeSpec::At(start)),
        }
    }

    fn time_point(&mut self) -> PResult<TimePoint> {
        let mut t = self.next()?;
        let relative = t.tok == Tok::Plus;
        if relative {
            t = self.next()?;
        }
        let text = match &t.tok {
            Tok::Int(s) | Tok::Decimal(s) => s.clone(),
            other => {
                return err(
                    &t,
                    format!("expected a time in seconds (such as `0.100`), found {other}"),
                )
            }
        };
        let usecs = seconds_to_usecs(&text).map_err(|m| Diag::new(t.line, t.col, m))?;
        Ok(TimePoint { relative, usecs })
    }

    fn packet(&mut self) -> PResult<EventKind> {
        let d = self.next()?;
        let dir = if d.tok == Tok::Lt {
            Direction::Inbound
        } else {
            Direction::Outbound
        };
        let ecn = self.ecn(dir)?;
        if let Some(t) = self.peek_same_line()? {
            if t.tok == Tok::Ident("icmp".into()) {
                self.next()?;
                return Ok(EventKind::Icmp(self.icmp(dir, &t)?));
            }
        }
        let flags = self.flags(&d)?;
        let mut pkt = PacketSpec {
            dir,
            flags,
            seq: None,
            ack: None,
            win: None,
            urg: None,
            options: Some(Vec::new()),
            ecn,
        };
        if let Some(t) = self.peek_same_line()? {
            if matches!(t.tok, Tok::Int(_)) {
                pkt.seq = Some(self.seq_range()?);
            }
        }
        let mut saw_options = false;
        while let Some(t) = self.peek_same_line()? {
            match &t.tok {
                Tok::Ident(w) if w == "ack" || w == "win" || w == "urg" => {
                    self.next()?;
                    let dup = match w.as_str() {
                        "ack" => pkt
                            .ack
                            .replace(self.uint("ack number", u64::from(u32::MAX))? as u32)
                            .is_some(),
                        "win" => pkt
                            .win
                            .replace(self.uint("window", u64::from(u16::MAX))? as u16)
                            .is_some(),
                        _ => pkt
                            .urg
                            .replace(self.uint("urgent pointer", u64::from(u16::MAX))? as u16)
                            .is_some(),
                    };
                    if dup {
                        return err(&t, format!("duplicate `{w}` in packet"));
                    }
                }
                Tok::Lt if !saw_options => {
                    self.next()?;
                    pkt.options = self.tcp_options(&t)?;
                    saw_options = true;
                }
                Tok::Lt => return err(&t, "duplicate TCP option list `<...>` in packet"),
                Tok::Int(_) if pkt.seq.is_some() => {
                    return err(&t, format!("unexpected {} after the sequence range", t.tok));
                }
                other => {
                    return err(
                        &t,
                        format!("unexpected {other} in packet (expected `ack N`, `win N`, `urg N` or `<options>`)"),
                    );
                }
            }
        }
        if pkt.dir == Direction::Inbound && pkt.ecn == Some(Ecn::Ect01) {
            return err(&d, "`[ect01]` can only be used with outbound packets");
        }
        Ok(EventKind::Packet(pkt))
    }

    /// `[noecn]`, `[ect0]`, `[ect1]`, `[ce]` or `[ect01]` after the direction.
    fn ecn(&mut self, dir: Direction) -> PResult<Option<Ecn>> {
        let Some(open) = self.peek_same_line()? else {
            return Ok(None);
        };
        if open.tok != Tok::LBracket {
            return Ok(None);
        }
        self.next()?;
        let w = self.next()?;
        let ecn = match &w.tok {
            Tok::Ident(word) => Ecn::by_name(word),
            _ => None,
        };
        let Some(ecn) = ecn else {
            return err(
                &w,
                format!(
                    "expected an ECN annotation (noecn, ect0, ect1, ce, ect01), found {}",
                    w.tok
                ),
            );
        };
        self.expect(Tok::RBracket, "to close the ECN annotation")?;
        if dir == Direction::Inbound && ecn == Ecn::Ect01 {
            return err(&open, "`[ect01]` can only be used with outbound packets");
        }
        Ok(Some(ecn))
    }

    /// After `icmp`: type, optional code, `mtu N`, `[start:end(len)]`.
    fn icmp(&mut self, dir: Direction, at: &Token) -> PResult<IcmpSpec> {
        let word = |p: &mut Self, what: &str| -> PResult<String> {
            let t = p.next()?;
            match t.tok {
                Tok::Ident(w) => Ok(w),
                ref other => err(&t, format!("expected {what}, found {other}")),
            }
        };
        if self.peek_same_line()?.is_none() {
            return err(
                at,
                "expected an ICMP type (such as `unreachable`) after `icmp`",
            );
        }
        let icmp_type = word(self, "an ICMP type (such as `unreachable`)")?;
        let mut spec = IcmpSpec {
            dir,
            icmp_type,
            code: None,
            mtu: None,
            seq: None,
        };
        while let Some(t) = self.peek_same_line()? {
            match &t.tok {
                Tok::Ident(w) if w == "mtu" && spec.mtu.is_none() => {
                    self.next()?;
                    spec.mtu = Some(self.uint("MTU", u64::from(u32::MAX))? as u32);
                }
                Tok::Ident(_) if spec.code.is_none() && spec.mtu.is_none() => {
                    spec.code = Some(word(self, "an ICMP code")?);
                }
                Tok::LBracket if spec.seq.is_none() => {
                    self.next()?;
                    spec.seq = Some(self.seq_range()?);
                    self.expect(Tok::RBracket, "after the quoted segment's range")?;
                }
                other => {
                    return err(
                        &t,
                        format!("unexpected {other} in ICMP packet (expected a code, `mtu N` or `[start:end(len)]`)"),
                    )
                }
            }
        }
        Ok(spec)
    }

    /// Flags right after the direction: adjacent letters, `.` and `-`.
    fn flags(&mut self, dir: &Token) -> PResult<TcpFlags> {
        let first = match self.peek_same_line()? {
            Some(t) => t,
            None => {
                return err(
                    dir,
                    format!(
                        "expected TCP flags after `{}`",
                        if dir.tok == Tok::Lt { "<" } else { ">" }
                    ),
                )
            }
        };
        match &first.tok {
            Tok::Ident(w)
                if matches!(
                    w.as_str(),
                    "udp" | "icmp" | "gre" | "mpls" | "tos" | "flowlabel" | "ipv4" | "ipv6"
                ) =>
            {
                return err(
                    &first,
                    format!("unsupported packet type `{w}`: only TCP packets are supported"),
                );
            }
            Tok::LBracket | Tok::LParen => {
                return err(
                    &first,
                    "IP-level annotations other than the ECN field (`[ect0]`, `[noecn]`, ...) are not supported",
                );
            }
            Tok::Ident(_) | Tok::Dot | Tok::Minus => {}
            other => {
                return err(
                    &first,
                    format!("expected TCP flags (such as `S`, `S.`, `.`, `P.`, `F.`, `R` or `-`), found {other}"),
                );
            }
        }
        let mut flags = TcpFlags::default();
        let mut dash: Option<Token> = None;
        let mut any_flag = false;
        let mut is_first = true;
        loop {
            let t = self.peek()?;
            let flag_like = matches!(t.tok, Tok::Ident(_) | Tok::Dot | Tok::Minus);
            if !flag_like || (!is_first && t.space_before) {
                break;
            }
            is_first = false;
            self.next()?;
            let chars: Vec<char> = match &t.tok {
                Tok::Ident(w) => w.chars().collect(),
                Tok::Dot => vec!['.'],
                _ => vec!['-'],
            };
            for (i, c) in chars.into_iter().enumerate() {
                let col = t.col + i;
                let slot = match c {
                    'F' => &mut flags.fin,
                    'S' => &mut flags.syn,
                    'R' => &mut flags.rst,
                    'P' => &mut flags.psh,
                    '.' => &mut flags.ack,
                    'U' => &mut flags.urg,
                    'E' => &mut flags.ece,
                    'W' => &mut flags.cwr,
                    '-' => {
                        if dash.is_some() {
                            return Err(Diag::new(t.line, col, "duplicate TCP flag `-`"));
                        }
                        dash = Some(Token { col, ..t.clone() });
                        continue;
                    }
                    other => {
                        return Err(Diag::new(
                            t.line,
                            col,
                            format!("unknown TCP flag `{other}` (expected F, S, R, P, `.`, U, E, W or `-`)"),
                        ));
                    }
                };
                if *slot {
                    return Err(Diag::new(t.line, col, format!("duplicate TCP flag `{c}`")));
                }
                *slot = true;
                any_flag = true;
            }
        }
        if let (Some(d), true) = (&dash, any_flag) {
            return err(d, "`-` (no flags) cannot be combined with other flags");
        }
        Ok(flags)
    }

    fn seq_range(&mut self) -> PResult<(u32, u32, u32)> {
        let first = self.peek()?;
        let max = u64::from(u32::MAX);
        let start = self.uint("sequence number", max)? as u32;
        self.expect(Tok::Colon, "in sequence range `start:end(len)`")?;
        let end = self.uint("sequence number", max)? as u32;
        self.expect(Tok::LParen, "in sequence range `start:end(len)`")?;
        let len = self.uint("payload length", max)? as u32;
        self.expect(Tok::RParen, "in sequence range `start:end(len)`")?;
        if end.wrapping_sub(start) != len {
            return err(
                &first,
                format!(
                    "inconsistent sequence range `{start}:{end}({len})`: end minus start is {}, not {len}",
                    end.wrapping_sub(start)
                ),
            );
        }
        Ok((start, end, len))
    }

    /// An unsigned integer token no larger than `max`.
    fn uint(&mut self, what: &str, max: u64) -> PResult<u64> {
        let t = self.next()?;
        let Tok::Int(text) = &t.tok else {
            return err(&t, format!("expected {what}, found {}", t.tok));
        };
        match parse_uint(text) {
            Some(n) if n <= max => Ok(n),
            _ => err(&t, format!("{what} `{text}` is out of range (0..={max})")),
        }
    }

    /// After `<`: `...>` (wildcard) or a comma-separated option list and `>`.
    fn tcp_options(&mut self, open: &Token) -> PResult<Option<Vec<TcpOpt>>> {
        let t = self.peek()?;
        if t.tok == Tok::Ellipsis {
            self.next()?;
            self.expect(Tok::Gt, "to close the `<...>` option wildcard")?;
            return Ok(None);
        }
        if t.tok == Tok::Gt {
            return err(
                open,
                "empty TCP option list `<>` (omit it, or write `<...>` for any options)",
            );
        }
        let mut opts = Vec::new();
        loop {
            opts.push(self.tcp_option()?);
            let t = self.next()?;
            match t.tok {
                Tok::Comma => continue,
                Tok::Gt => return Ok(Some(opts)),
                ref other => {
                    return err(
                        &t,
                        format!("expected `,` or `>` in TCP option list, found {other}"),
                    )
                }
            }
        }
    }

    fn tcp_option(&mut self) -> PResult<TcpOpt> {
        let t = self.next()?;
        let Tok::Ident(name) = &t.tok else {
            return err(
                &t,
                format!(
                    "expected a TCP option (mss, wscale, sackOK, sack, TS, nop, eol), found {}",
                    t.tok
                ),
            );
        };
        Ok(match name.as_str() {
            "nop" => TcpOpt::Nop,
            "eol" => TcpOpt::Eol,
            "sackOK" => TcpOpt::SackPermitted,
            "mss" => TcpOpt::Mss(self.uint("MSS", u64::from(u16::MAX))? as u16),
            "wscale" => TcpOpt::WScale(self.uint("window scale", u64::from(u8::MAX))? as u8),
            "sack" => {
                let mut blocks = Vec::new();
                while matches!(self.peek()?.tok, Tok::Int(_)) {
                    let l = self.uint("SACK block edge", u64::from(u32::MAX))? as u32;
                    self.expect(Tok::Colon, "in SACK block `left:right`")?;
                    let r = self.uint("SACK block edge", u64::from(u32::MAX))? as u32;
                    blocks.push((l, r));
                }
                if blocks.is_empty() {
                    return err(&t, "`sack` needs at least one block `left:right`");
                }
                TcpOpt::Sack(blocks)
            }
            "TS" => {
                self.keyword("val", "after `TS`")?;
                let val = self.uint("TS val", u64::from(u32::MAX))? as u32;
                self.keyword("ecr", "after `TS val N`")?;
                let ecr = self.uint("TS ecr", u64::from(u32::MAX))? as u32;
                TcpOpt::Timestamp { val, ecr }
            }
            "FO" | "FOEXP" => TcpOpt::FastOpen {
                exp: name == "FOEXP",
                cookie: self.hex_blob(false)?,
            },
            "md5" => {
                let sig = self.hex_blob(true)?;
                if sig.len() != 16 {
                    return err(
                        &t,
                        format!("`md5` needs 16 octets (32 hex digits), found {}", sig.len()),
                    );
                }
                TcpOpt::Md5(sig)
            }
            other => {
                return err(
                    &t,
                    format!("unsupported TCP option `{other}` (supported: mss, wscale, sackOK, sack, TS, nop, eol)"),
                );
            }
        })
    }

    /// Hex digits written as one word (`abcd1234`, `3021b9d8`, `12345678`):
    /// a cookie or signature. Optional unless `required`.
    fn hex_blob(&mut self, required: bool) -> PResult<Vec<u8>> {
        let t = self.peek()?;
        let text = match &t.tok {
            Tok::Int(s) | Tok::HexWord(s) | Tok::Ident(s) if !s.starts_with("0x") => s.clone(),
            _ if !required => return Ok(Vec::new()),
            other => return err(&t, format!("expected hex digits, found {other}")),
        };
        if matches!(t.tok, Tok::Ident(_)) && !text.chars().all(|c| c.is_ascii_hexdigit()) {
            if required {
                return err(&t, format!("expected hex digits, found `{text}`"));
            }
            return Ok(Vec::new());
        }
        self.next()?;
        if text.len() % 2 != 0 {
            return err(&t, format!("hex `{text}` has an odd number of digits"));
        }
        Ok((0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap_or(0))
            .collect())
    }

    fn keyword(&mut self, word: &str, context: &str) -> PResult<()> {
        let t = self.next()?;
        match &t.tok {
            Tok::Ident(w) if w == word => Ok(()),
            other => err(&t, format!("expected `{word}` {context}, found {other}")),
        }
    }

    fn syscall(&mut self) -> PResult<SyscallSpec> {
        let t = self.next()?;
        let Tok::Ident(name) = t.tok else {
            return err(&t, "expected a system call name");
        };
        let open = self.next()?;
        if open.tok != Tok::LParen {
            return err(
                &open,
                format!(
                    "expected `(` after system call name `{name}`, found {}",
                    open.tok
                ),
            );
        }
        let (args, close) = self.args_until(Tok::RParen, "system call arguments")?;
        let eq = self.peek()?;
        if eq.tok != Tok::Eq {
            let (line, col) = if eq.tok == Tok::Eof || eq.line != close.line {
                (close.line, close.end_col)
            } else {
                (eq.line, eq.col)
            };
            return Err(Diag::new(
                line,
                col,
                format!("missing `= result` after system call `{name}(...)`"),
            ));
        }
        let eq = self.next()?;
        if self.peek_same_line()?.is_none() {
            return Err(Diag::new(
                eq.line,
                eq.end_col,
                format!("expected an integer result after `=` of system call `{name}(...)`"),
            ));
        }
        let result = self.result()?;
        let mut spec = SyscallSpec {
            name,
            args,
            result,
            errno: None,
            note: None,
        };
        if let Some(t) = self.peek_same_line()? {
            if let Tok::Ident(e) = &t.tok {
                let looks_like_errno = e.len() >= 2
                    && e.starts_with('E')
                    && e.chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
                if !looks_like_errno {
                    return err(&t, format!("expected an errno name (such as `EAGAIN`) after the result, found `{e}`"));
                }
                self.next()?;
                spec.errno = Some(e.clone());
            }
        }
        if let Some(t) = self.peek_same_line()? {
            if t.tok == Tok::LParen {
                self.next()?;
                spec.note = Some(self.lx.raw_paren_body(t.line, t.col)?);
            } else {
                return err(&t, format!("unexpected {} after system call result", t.tok));
            }
        }
        Ok(spec)
    }

    fn result(&mut self) -> PResult<i64> {
        let t = self.peek()?;
        let negative = t.tok == Tok::Minus;
        if negative {
            self.next()?;
        }
        let n = self.next()?;
        match &n.tok {
            Tok::Int(text) => signed(text, negative).ok_or_else(|| {
                Diag::new(
                    n.line,
                    n.col,
                    format!("result `{text}` is out of range for a 64-bit integer"),
                )
            }),
            other => err(
                &n,
                format!("expected an integer result after `=`, found {other}"),
            ),
        }
    }

    /// Comma-separated expressions up to `close`; returns them and the closing token.
    fn args_until(&mut self, close: Tok, what: &str) -> PResult<(Vec<Expr>, Token)> {
        let mut items = Vec::new();
        let t = self.peek()?;
        if t.tok == close {
            return Ok((items, self.next()?));
        }
        loop {
            items.push(self.expr()?);
            let t = self.next()?;
            if t.tok == close {
                return Ok((items, t));
            }
            if t.tok != Tok::Comma {
                return err(
                    &t,
                    format!("expected `,` or {close} in {what}, found {}", t.tok),
                );
            }
        }
    }

    fn enter(&mut self, t: &Token) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return err(t, format!("nesting deeper than {MAX_NESTING} levels"));
        }
        Ok(())
    }

    fn expr(&mut self) -> PResult<Expr> {
        let first = self.primary()?;
        if self.peek()?.tok != Tok::Pipe {
            return Ok(first);
        }
        let mut parts = vec![first];
        while self.peek()?.tok == Tok::Pipe {
            self.next()?;
            parts.push(self.primary()?);
        }
        Ok(Expr::BitOr(parts))
    }

    fn primary(&mut self) -> PResult<Expr> {
        let t = self.next()?;
        match t.tok {
            Tok::Int(ref text) => signed(text, false)
                .map(Expr::Int)
                .ok_or_else(|| Diag::new(t.line, t.col, format!("integer `{text}` is out of range for a 64-bit integer"))),
            Tok::Minus => {
                let n = self.next()?;
                match &n.tok {
                    Tok::Int(text) => signed(text, true).map(Expr::Int).ok_or_else(|| {
                        Diag::new(n.line, n.col, format!("integer `-{text}` is out of range for a 64-bit integer"))
                    }),
                    other => err(&n, format!("expected a number after `-`, found {other}")),
                }
            }
            Tok::Ellipsis => Ok(Expr::Ellipsis),
            Tok::Str(s) => Ok(Expr::Str(s)),
            Tok::Ident(ref name) => {
                let name = name.clone();
                if self.peek()?.tok == Tok::LParen {
                    self.enter(&t)?;
                    self.next()?;
                    let (args, _) = self.args_until(Tok::RParen, "function arguments")?;
                    self.depth -= 1;
                    Ok(Expr::Call { name, args })
                } else {
                    Ok(Expr::Ident(name))
                }
            }
            Tok::LBracket => {
                self.enter(&t)?;
                let (items, _) = self.args_until(Tok::RBracket, "list")?;
                self.depth -= 1;
                Ok(Expr::List(items))
            }
            Tok::LBrace => {
                self.enter(&t)?;
                let fields = self.struct_fields()?;
                self.depth -= 1;
                Ok(Expr::Struct(fields))
            }
            Tok::Decimal(ref s) => err(&t, format!("unexpected decimal number `{s}` in arguments")),
            ref other => err(&t, format!("expected an argument (number, `...`, name, string, `[...]` or `{{...}}`), found {other}")),
        }
    }

    /// Fields up to `}`: `name=expr`, `name(len)=expr` (packetdrill's
    /// length suffix, `msg_iov(1)=...`) or a bare `expr` (`{..., 0}`).
    fn struct_fields(&mut self) -> PResult<Vec<(String, Expr)>> {
        let mut fields = Vec::new();
        if self.peek()?.tok == Tok::RBrace {
            self.next()?;
            return Ok(fields);
        }
        loop {
            let first = self.expr()?;
            let keyed = matches!(first, Expr::Ident(_) | Expr::Call { .. });
            if keyed && self.peek()?.tok == Tok::Eq {
                self.next()?;
                fields.push((first.to_string(), self.expr()?));
            } else {
                fields.push((String::new(), first));
            }
            let t = self.next()?;
            match t.tok {
                Tok::Comma => continue,
                Tok::RBrace => return Ok(fields),
                ref other => {
                    return err(&t, format!("expected `,` or `}}` in struct, found {other}"))
                }
            }
        }
    }
}

/// Parse a decimal or `0x` hex integer without overflow.
fn parse_uint(text: &str) -> Option<u64> {
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

/// An integer literal with an optional minus sign, as an `i64`.
fn signed(text: &str, negative: bool) -> Option<i64> {
    let magnitude = i128::from(parse_uint(text)?);
    i64::try_from(if negative { -magnitude } else { magnitude }).ok()
}

/// Seconds as written (`0`, `0.1`, `.25`, `2.`) to microseconds, exactly.
fn seconds_to_usecs(text: &str) -> Result<u64, String> {
    if text.starts_with("0x") || text.starts_with("0X") {
        return Err(format!("time `{text}` must be written in decimal seconds"));
    }
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole
            .parse()
            .map_err(|_| format!("time `{text}` is too large"))?
    };
    let mut micros: u64 = 0;
    let mut scale: u64 = MICROS_PER_SEC;
    for c in frac.chars() {
        let d = u64::from(
            c.to_digit(10)
                .ok_or_else(|| format!("malformed time `{text}`"))?,
        );
        scale /= 10;
        if scale == 0 {
            if d != 0 {
                return Err(format!("time `{text}` is finer than one microsecond"));
            }
        } else {
            micros += d * scale;
        }
    }
    whole
        .checked_mul(MICROS_PER_SEC)
        .and_then(|w| w.checked_add(micros))
        .ok_or_else(|| format!("time `{text}` is too large"))
}
