//! Tokenizer for the script language.
//!
//! Turns script text into tokens that carry their 1-based line and column
//! (columns count characters, not bytes). The token set follows packetdrill's
//! lexer closely enough that packetdrill scripts tokenize the same way:
//! `//` and `/* */` comments, `--name=value` options, `` `shell` `` commands,
//! `"strings"`, integers (decimal or `0x` hex), decimals for times, words,
//! `...` and single-character punctuation.
//!
//! The lexer is pulled one token at a time by the parser (with one token of
//! look-ahead), so the parser can ask for raw text where packetdrill does too
//! (the free-text note after a system call's errno).

use std::fmt;

/// A problem at a position, before the file path is attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Diag {
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl Diag {
    pub(crate) fn new(line: usize, col: usize, message: impl Into<String>) -> Self {
        Diag {
            line,
            col,
            message: message.into(),
        }
    }
}

/// The raw value of a `--name=value` option and where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OptValue {
    pub text: String,
    pub line: usize,
    pub col: usize,
}

/// What a token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tok {
    /// Unsigned integer literal, decimal or `0x` hex, as written.
    Int(String),
    /// Decimal with a fractional part (`0.100`, `.1`, `2.`), as written.
    Decimal(String),
    /// A word: `[A-Za-z_][A-Za-z0-9_]*`.
    Ident(String),
    /// `--name` or `--name=value` command-line option.
    Opt {
        name: String,
        value: Option<OptValue>,
    },
    /// `` `command` ``: the raw text between the backticks.
    Backtick(String),
    /// `"string"` with escapes decoded (`\xHH` gives the char U+00HH).
    Str(String),
    /// `%{ code }%`: the code, trimmed.
    Code(String),
    /// Digits run into letters, all hex (`3021b9d8`): a cookie or key
    /// written in hex; a malformed number anywhere else.
    HexWord(String),
    Lt,
    Gt,
    LParen,
    RParen,
    LBracket,
    RBracket,
    LBrace,
    RBrace,
    Comma,
    Colon,
    Eq,
    Plus,
    Minus,
    Star,
    Tilde,
    Pipe,
    Dot,
    Ellipsis,
    Eof,
}

impl fmt::Display for Tok {
    /// How a token is named in error messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Int(s) | Tok::Decimal(s) => write!(f, "number `{s}`"),
            Tok::Ident(s) => write!(f, "`{s}`"),
            Tok::Opt { name, .. } => write!(f, "option `--{name}`"),
            Tok::Backtick(_) => write!(f, "backtick command"),
            Tok::Str(_) => write!(f, "string"),
            Tok::Code(_) => write!(f, "`%{{ code }}%` block"),
            Tok::HexWord(s) => write!(f, "malformed number `{s}`"),
            Tok::Eof => write!(f, "end of input"),
            p => write!(f, "`{}`", punct_text(p)),
        }
    }
}

fn punct_text(t: &Tok) -> &'static str {
    match t {
        Tok::Lt => "<",
        Tok::Gt => ">",
        Tok::LParen => "(",
        Tok::RParen => ")",
        Tok::LBracket => "[",
        Tok::RBracket => "]",
        Tok::LBrace => "{",
        Tok::RBrace => "}",
        Tok::Comma => ",",
        Tok::Colon => ":",
        Tok::Eq => "=",
        Tok::Plus => "+",
        Tok::Minus => "-",
        Tok::Star => "*",
        Tok::Tilde => "~",
        Tok::Pipe => "|",
        Tok::Dot => ".",
        Tok::Ellipsis => "...",
        _ => "?",
    }
}

/// A token with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    pub tok: Tok,
    /// Line of the first character.
    pub line: usize,
    /// Column of the first character.
    pub col: usize,
    /// Line of the last character (differs from `line` only for multi-line
    /// backtick commands).
    pub end_line: usize,
    /// Column just after the last character.
    pub end_col: usize,
    /// Whether whitespace or a comment separates this token from the previous one.
    pub space_before: bool,
}

/// Pull-based tokenizer with one token of look-ahead.
pub(crate) struct Lexer {
    chars: Vec<char>,
    pos: usize,
    line: usize,
    col: usize,
    peeked: Option<Token>,
    /// `end_line` of the last token handed out by [`Lexer::next`].
    pub last_end_line: usize,
    /// packetdrill's `-D name=value` definitions: a word that is defined
    /// lexes as its value.
    defines: std::collections::BTreeMap<String, String>,
}

impl Lexer {
    /// A leading byte-order mark is ignored (columns start after it).
    pub(crate) fn new(text: &str) -> Self {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        Lexer {
            chars: text.chars().collect(),
            pos: 0,
            line: 1,
            col: 1,
            peeked: None,
            last_end_line: 0,
            defines: Default::default(),
        }
    }

    /// Substitute `defines` for words, as packetdrill's `-D name=value`.
    pub(crate) fn with_defines(
        mut self,
        defines: std::collections::BTreeMap<String, String>,
    ) -> Self {
        self.defines = defines;
        self
    }

    /// A defined word's value as a token: `"..."` a string, `` `...` `` a
    /// command, a number (decimal or `0x`) an integer, hex digits a hex
    /// word, anything else a word.
    fn defined(&self, value: &str) -> Tok {
        let inner = |d: char| {
            value
                .strip_prefix(d)
                .and_then(|v| v.strip_suffix(d))
                .map(str::to_string)
        };
        if let Some(v) = inner('"') {
            return Tok::Str(v);
        }
        if let Some(v) = inner('`') {
            return Tok::Backtick(v);
        }
        let is_int = value.chars().all(|c| c.is_ascii_digit())
            || value
                .strip_prefix("0x")
                .is_some_and(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit()));
        if is_int && !value.is_empty() {
            return Tok::Int(value.to_string());
        }
        if !value.is_empty() && value.chars().all(|c| c.is_ascii_hexdigit()) {
            return Tok::HexWord(value.to_string());
        }
        Tok::Ident(value.to_string())
    }

    /// The next token, without consuming it.
    pub(crate) fn peek(&mut self) -> Result<&Token, Diag> {
        let t = match self.peeked.take() {
            Some(t) => t,
            None => self.lex()?,
        };
        Ok(self.peeked.insert(t))
    }

    /// Consume and return the next token.
    pub(crate) fn next(&mut self) -> Result<Token, Diag> {
        let t = match self.peeked.take() {
            Some(t) => t,
            None => self.lex()?,
        };
        self.last_end_line = t.end_line;
        Ok(t)
    }

    /// Raw text up to the `)` matching an already consumed `(`, on the same
    /// line; nested parentheses are kept. Used for the free-text note after a
    /// system call's errno, e.g. `(Operation now in progress)`. Must be called
    /// with no token peeked.
    pub(crate) fn raw_paren_body(
        &mut self,
        open_line: usize,
        open_col: usize,
    ) -> Result<String, Diag> {
        if self.peeked.is_some() {
            return Err(Diag::new(
                open_line,
                open_col,
                "internal: raw text after look-ahead",
            ));
        }
        let mut depth = 0usize;
        let mut out = String::new();
        loop {
            match self.cur() {
                None | Some('\n') => {
                    return Err(Diag::new(
                        open_line,
                        open_col,
                        "unterminated `(` note: missing `)` on this line",
                    ));
                }
                Some('(') => depth += 1,
                Some(')') if depth == 0 => {
                    self.bump();
                    self.last_end_line = self.line;
                    return Ok(out.trim().to_string());
                }
                Some(')') => depth -= 1,
                Some(_) => {}
            }
            if let Some(c) = self.bump() {
                out.push(c);
            }
        }
    }

    fn cur(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn at(&self, k: usize) -> Option<char> {
        self.chars.get(self.pos.saturating_add(k)).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.cur()?;
        self.pos += 1;
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    /// Skip whitespace and comments; report whether anything was skipped.
    fn skip_trivia(&mut self) -> Result<bool, Diag> {
        let mut skipped = false;
        loop {
            match (self.cur(), self.at(1)) {
                (Some(' ' | '\t' | '\r' | '\n' | '\u{c}'), _) => {
                    self.bump();
                }
                (Some('/'), Some('/')) => {
                    while let Some(c) = self.cur() {
                        if c == '\n' {
                            break;
                        }
                        self.bump();
                    }
                }
                (Some('/'), Some('*')) => {
                    let (line, col) = (self.line, self.col);
                    self.bump();
                    self.bump();
                    self.through("*/", line, col, "unterminated `/*` comment: missing `*/`")?;
                }
                _ => return Ok(skipped),
            }
            skipped = true;
        }
    }

    fn lex(&mut self) -> Result<Token, Diag> {
        let space_before = self.skip_trivia()? || self.pos == 0;
        let (line, col) = (self.line, self.col);
        let tok = self.lex_tok(line, col)?;
        Ok(Token {
            tok,
            line,
            col,
            end_line: self.line,
            end_col: self.col,
            space_before,
        })
    }

    fn lex_tok(&mut self, line: usize, col: usize) -> Result<Tok, Diag> {
        let Some(c) = self.cur() else {
            return Ok(Tok::Eof);
        };
        if c.is_ascii_digit() {
            return self.number(line, col);
        }
        if c.is_ascii_alphabetic() || c == '_' {
            let w = self.take_while(|c| c.is_ascii_alphanumeric() || c == '_');
            return Ok(match self.defines.get(&w) {
                Some(v) => self.defined(v),
                None => Tok::Ident(w),
            });
        }
        if c == '%' && self.at(1) == Some('{') {
            return self.code(line, col);
        }
        let punct = match c {
            '.' => {
                if self.at(1) == Some('.') {
                    if self.at(2) == Some('.') {
                        self.bump();
                        self.bump();
                        self.bump();
                        return Ok(Tok::Ellipsis);
                    }
                    return Err(Diag::new(
                        line,
                        col,
                        "unexpected `..` (did you mean `...`?)",
                    ));
                }
                if self.at(1).is_some_and(|c| c.is_ascii_digit()) {
                    return self.number(line, col);
                }
                Tok::Dot
            }
            '-' => {
                if self.at(1) == Some('-') && self.at(2).is_some_and(|c| c.is_ascii_alphabetic()) {
                    return self.option(line, col);
                }
                Tok::Minus
            }
            '`' => return self.backtick(line, col),
            '"' => return self.string(line, col),
            '<' => Tok::Lt,
            '>' => Tok::Gt,
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            '[' => Tok::LBracket,
            ']' => Tok::RBracket,
            '{' => Tok::LBrace,
            '}' => Tok::RBrace,
            ',' => Tok::Comma,
            ':' => Tok::Colon,
            '=' => Tok::Eq,
            '+' => Tok::Plus,
            '*' => Tok::Star,
            '~' => Tok::Tilde,
            '|' => Tok::Pipe,
            other => {
                return Err(Diag::new(
                    line,
                    col,
                    format!("unexpected character {other:?}"),
                ));
            }
        };
        self.bump();
        Ok(punct)
    }

    fn take_while(&mut self, f: impl Fn(char) -> bool) -> String {
        let mut s = String::new();
        while let Some(c) = self.cur() {
            if !f(c) {
                break;
            }
            s.push(c);
            self.bump();
        }
        s
    }

    fn number(&mut self, line: usize, col: usize) -> Result<Tok, Diag> {
        let tok = if self.cur() == Some('0') && matches!(self.at(1), Some('x' | 'X')) {
            self.bump();
            self.bump();
            let digits = self.take_while(|c| c.is_ascii_hexdigit());
            if digits.is_empty() {
                return Err(Diag::new(
                    line,
                    col,
                    "malformed hex number: no digits after `0x`",
                ));
            }
            Tok::Int(format!("0x{digits}"))
        } else {
            let mut text = self.take_while(|c| c.is_ascii_digit());
            if self.cur() == Some('.') && self.at(1) != Some('.') {
                self.bump();
                text.push('.');
                text.push_str(&self.take_while(|c| c.is_ascii_digit()));
                Tok::Decimal(text)
            } else {
                Tok::Int(text)
            }
        };
        if self
            .cur()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            let rest = self.take_while(|c| c.is_ascii_alphanumeric() || c == '_');
            if let Tok::Int(digits) = &tok {
                if !digits.starts_with("0x") && rest.chars().all(|c| c.is_ascii_hexdigit()) {
                    return Ok(Tok::HexWord(format!("{digits}{rest}")));
                }
            }
            return Err(Diag::new(
                line,
                col,
                format!("malformed number (unexpected `{rest}` right after the digits)"),
            ));
        }
        Ok(tok)
    }

    fn option(&mut self, line: usize, col: usize) -> Result<Tok, Diag> {
        self.bump();
        self.bump();
        let name = self.take_while(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if self.cur() != Some('=') {
            return Ok(Tok::Opt { name, value: None });
        }
        self.bump();
        let (vline, vcol) = (self.line, self.col);
        let mut text = String::new();
        if self.cur() == Some('"') {
            text.push('"');
            self.bump();
            loop {
                match self.cur() {
                    None | Some('\n') => {
                        return Err(Diag::new(
                            vline,
                            vcol,
                            format!("unterminated quoted value of option `--{name}`"),
                        ));
                    }
                    Some('"') => {
                        text.push('"');
                        self.bump();
                        break;
                    }
                    Some(c) => {
                        text.push(c);
                        self.bump();
                    }
                }
            }
        } else {
            while let Some(c) = self.cur() {
                if c.is_whitespace() || (c == '/' && matches!(self.at(1), Some('/' | '*'))) {
                    break;
                }
                text.push(c);
                self.bump();
            }
        }
        if text.is_empty() {
            return Err(Diag::new(
                line,
                col,
                format!("missing value after `--{name}=`"),
            ));
        }
        Ok(Tok::Opt {
            name,
            value: Some(OptValue {
                text,
                line: vline,
                col: vcol,
            }),
        })
    }

    fn backtick(&mut self, line: usize, col: usize) -> Result<Tok, Diag> {
        self.bump();
        let mut s = String::new();
        loop {
            match self.cur() {
                None => {
                    return Err(Diag::new(
                        line,
                        col,
                        "unterminated backtick command: missing closing '`'",
                    ));
                }
                Some('`') => {
                    self.bump();
                    return Ok(Tok::Backtick(s));
                }
                Some('\\') => {
                    s.push('\\');
                    self.bump();
                    if let Some(c) = self.bump() {
                        s.push(c);
                    }
                }
                Some(c) => {
                    s.push(c);
                    self.bump();
                }
            }
        }
    }

    /// `%{ ... }%`: everything up to the first `}%` (packetdrill's rule).
    fn code(&mut self, line: usize, col: usize) -> Result<Tok, Diag> {
        self.bump();
        self.bump();
        let code = self.through(
            "}%",
            line,
            col,
            "unterminated `%{` code block: missing `}%`",
        )?;
        Ok(Tok::Code(code.trim().to_string()))
    }

    /// The text up to the first `end` (two characters), consuming `end`
    /// too; `unterminated`, located at the opening `line:col`, if the input
    /// ends first.
    fn through(
        &mut self,
        end: &str,
        line: usize,
        col: usize,
        unterminated: &str,
    ) -> Result<String, Diag> {
        let mut close = end.chars();
        let (a, b) = (close.next(), close.next());
        let mut s = String::new();
        loop {
            match (self.cur(), self.at(1)) {
                (None, _) => return Err(Diag::new(line, col, unterminated)),
                (x, y) if x == a && y == b => {
                    self.bump();
                    self.bump();
                    return Ok(s);
                }
                (Some(c), _) => {
                    s.push(c);
                    self.bump();
                }
            }
        }
    }

    fn string(&mut self, line: usize, col: usize) -> Result<Tok, Diag> {
        self.bump();
        let mut s = String::new();
        loop {
            let (eline, ecol) = (self.line, self.col);
            match self.bump() {
                None | Some('\n') => {
                    return Err(Diag::new(
                        line,
                        col,
                        "unterminated string: missing closing `\"` on this line",
                    ));
                }
                Some('"') => return Ok(Tok::Str(s)),
                Some('\\') => {
                    let c = match self.cur() {
                        Some('n') => '\n',
                        Some('t') => '\t',
                        Some('r') => '\r',
                        Some('0') => '\0',
                        Some('\\') => '\\',
                        Some('"') => '"',
                        Some('x') => {
                            self.bump();
                            let hex: String = (0..2)
                                .map_while(|k| self.at(k).filter(char::is_ascii_hexdigit))
                                .collect();
                            if hex.len() != 2 {
                                return Err(Diag::new(
                                    eline,
                                    ecol,
                                    "`\\x` in a string needs two hex digits",
                                ));
                            }
                            self.bump();
                            let v = u32::from_str_radix(&hex, 16).unwrap_or(0);
                            char::from_u32(v).unwrap_or('\0')
                        }
                        Some(other) => {
                            return Err(Diag::new(
                                eline,
                                ecol,
                                format!("unknown escape `\\{other}` in string"),
                            ));
                        }
                        None => {
                            return Err(Diag::new(
                                line,
                                col,
                                "unterminated string: missing closing `\"`",
                            ));
                        }
                    };
                    self.bump();
                    s.push(c);
                }
                Some(c) => s.push(c),
            }
        }
    }
}
