//! A row of the transition table: (state, event class) → (next state,
//! segments to emit, user-visible effect), with its sources and profiles.

use crate::level::{Level, Mechanism};
use crate::model::{AckClass, Event, SegmentEvent, SeqClass, State, Timeout, UserCall};
use crate::profile::Profile;
use serde::{Deserialize, Serialize};
use std::fmt;

/// What a row's event must look like. Omitted segment fields match anything.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "on", rename_all = "kebab-case", deny_unknown_fields)]
pub enum EventPattern {
    /// An arriving segment; each given field restricts the match.
    Segment {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        /// The SYN bit must be this.
        syn: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        /// The FIN bit must be this.
        fin: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        /// The RST bit must be this.
        rst: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        /// Whether the segment carries data.
        payload: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        /// SEG.SEQ must fall in one of these classes.
        seq: Option<Vec<SeqClass>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        /// SEG.ACK must fall in one of these classes.
        ack: Option<Vec<AckClass>>,
    },
    /// A user call.
    Call {
        /// One of these calls.
        call: Vec<UserCall>,
    },
    /// A timeout.
    Timeout {
        /// One of these timeouts.
        timeout: Vec<Timeout>,
    },
}

impl EventPattern {
    /// Whether `event` is in this pattern's class.
    pub fn matches(&self, event: &Event) -> bool {
        fn bit(want: Option<bool>, have: bool) -> bool {
            want.is_none_or(|w| w == have)
        }
        fn one_of<T: PartialEq>(want: &Option<Vec<T>>, have: &T) -> bool {
            want.as_ref().is_none_or(|w| w.contains(have))
        }
        match (self, event) {
            (
                EventPattern::Segment {
                    syn,
                    fin,
                    rst,
                    payload,
                    seq,
                    ack,
                },
                Event::Segment(SegmentEvent {
                    syn: s,
                    fin: f,
                    rst: r,
                    payload: p,
                    seq: q,
                    ack: a,
                }),
            ) => {
                bit(*syn, *s)
                    && bit(*fin, *f)
                    && bit(*rst, *r)
                    && bit(*payload, *p)
                    && one_of(seq, q)
                    && one_of(ack, a)
            }
            (EventPattern::Call { call }, Event::Call { call: c }) => call.contains(c),
            (EventPattern::Timeout { timeout }, Event::Timeout { timeout: t }) => {
                timeout.contains(t)
            }
            _ => false,
        }
    }
}

impl fmt::Display for EventPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn list<T: Copy>(xs: &[T], name: impl Fn(T) -> &'static str) -> String {
            xs.iter().map(|x| name(*x)).collect::<Vec<_>>().join("|")
        }
        match self {
            EventPattern::Segment {
                syn,
                fin,
                rst,
                payload,
                seq,
                ack,
            } => {
                let mut parts = vec!["seg".to_string()];
                for (name, v) in [("SYN", syn), ("FIN", fin), ("RST", rst), ("data", payload)] {
                    match v {
                        Some(true) => parts.push(name.to_string()),
                        Some(false) => parts.push(format!("!{name}")),
                        None => {}
                    }
                }
                if let Some(s) = seq {
                    let mut sorted = s.clone();
                    sorted.sort();
                    let named = if sorted == SeqClass::ACCEPTABLE {
                        "acceptable".to_string()
                    } else if sorted == SeqClass::UNACCEPTABLE {
                        "unacceptable".to_string()
                    } else {
                        list(s, SeqClass::name)
                    };
                    parts.push(format!("seq={named}"));
                }
                if let Some(a) = ack {
                    parts.push(format!("ack={}", list(a, AckClass::name)));
                }
                f.write_str(&parts.join(" "))
            }
            EventPattern::Call { call } => write!(f, "call {}", list(call, UserCall::name)),
            EventPattern::Timeout { timeout } => {
                write!(f, "timeout {}", list(timeout, Timeout::name))
            }
        }
    }
}

/// The state after the transition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Next {
    /// Stay in the state the event arrived in.
    Same,
    /// Move to this state.
    To(State),
}

impl Next {
    /// The concrete next state when the row fires in `from`.
    pub fn resolve(self, from: State) -> State {
        match self {
            Next::Same => from,
            Next::To(s) => s,
        }
    }
}

impl Serialize for Next {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Next::Same => s.serialize_str("same"),
            Next::To(st) => s.serialize_str(st.name()),
        }
    }
}

impl<'de> Deserialize<'de> for Next {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s == "same" {
            return Ok(Next::Same);
        }
        State::from_name(&s)
            .map(Next::To)
            .ok_or_else(|| serde::de::Error::custom(format!("`{s}` is neither `same` nor a state")))
    }
}

/// A control bit in an emitted segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Ctl {
    #[serde(rename = "SYN")]
    /// SYN.
    Syn,
    #[serde(rename = "ACK")]
    /// ACK.
    Ack,
    #[serde(rename = "FIN")]
    /// FIN.
    Fin,
    #[serde(rename = "RST")]
    /// RST.
    Rst,
}

impl Ctl {
    /// The bit's name as the RFC writes it.
    pub fn name(self) -> &'static str {
        match self {
            Ctl::Syn => "SYN",
            Ctl::Ack => "ACK",
            Ctl::Fin => "FIN",
            Ctl::Rst => "RST",
        }
    }
}

/// A segment to emit, in the RFC's notation `<SEQ=x><ACK=y><CTL=a,b>`
/// (RFC 9293 §3.10). SEQ and ACK are symbolic expressions over the TCB
/// (`SND.NXT`, `RCV.NXT`, `ISS`, `SEG.ACK`, `SEG.SEQ+SEG.LEN`, `0`, …).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Template {
    /// The SEQ expression.
    pub seq: String,
    /// The ACK expression, when the segment carries an ACK.
    pub ack: Option<String>,
    /// The control bits.
    pub ctl: Vec<Ctl>,
    /// Which unacknowledged data or control the segment carries, when it
    /// retransmits (`DATA=oldest` etc.); otherwise none.
    pub carries: Option<String>,
}

/// A malformed segment template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad segment template `{text}`: {reason}")]
pub struct TemplateError {
    /// The template as written.
    pub text: String,
    /// What is wrong with it.
    pub reason: String,
}

impl Template {
    /// Parses `<SEQ=x><ACK=y><CTL=a,b>` (RFC 9293 §3.10 notation).
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let err = |reason: &str| TemplateError {
            text: text.to_string(),
            reason: reason.to_string(),
        };
        let mut rest = text.trim();
        let (mut seq, mut ack, mut ctl, mut carries) = (None, None, None, None);
        while !rest.is_empty() {
            let inner = rest
                .strip_prefix('<')
                .and_then(|r| r.split_once('>'))
                .ok_or_else(|| err("expected `<KEY=VALUE>`"))?;
            let (field, after) = inner;
            rest = after.trim_start();
            let (key, value) = field
                .split_once('=')
                .ok_or_else(|| err("a field lacks `=`"))?;
            let value = value.trim().to_string();
            let slot = match key.trim() {
                "SEQ" => &mut seq,
                "ACK" => &mut ack,
                "CTL" => &mut ctl,
                "DATA" => &mut carries,
                _ => return Err(err("unknown field (SEQ, ACK, CTL, DATA)")),
            };
            if slot.replace(value).is_some() {
                return Err(err("a field appears twice"));
            }
        }
        let ctl: Vec<Ctl> = ctl
            .ok_or_else(|| err("CTL is missing"))?
            .split(',')
            .map(|c| match c.trim() {
                "SYN" => Ok(Ctl::Syn),
                "ACK" => Ok(Ctl::Ack),
                "FIN" => Ok(Ctl::Fin),
                "RST" => Ok(Ctl::Rst),
                _ => Err(err("CTL takes SYN, ACK, FIN, RST")),
            })
            .collect::<Result<_, _>>()?;
        if ctl.contains(&Ctl::Ack) != ack.is_some() {
            return Err(err("ACK= must be given exactly when CTL has ACK"));
        }
        Ok(Template {
            seq: seq.ok_or_else(|| err("SEQ is missing"))?,
            ack,
            ctl,
            carries,
        })
    }

    /// Whether the template sets control bit `c`.
    pub fn has(&self, c: Ctl) -> bool {
        self.ctl.contains(&c)
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<SEQ={}>", self.seq)?;
        if let Some(a) = &self.ack {
            write!(f, "<ACK={a}>")?;
        }
        let ctl: Vec<_> = self.ctl.iter().map(|c| c.name()).collect();
        write!(f, "<CTL={}>", ctl.join(","))?;
        if let Some(d) = &self.carries {
            write!(f, "<DATA={d}>")?;
        }
        Ok(())
    }
}

impl Serialize for Template {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Template {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Template::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// One row of the table.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Row {
    /// Stable identifier, e.g. `EST.RST.exact`.
    pub id: String,
    /// The states the row applies in.
    pub from: Vec<State>,
    /// The event class.
    #[serde(flatten)]
    pub event: EventPattern,
    /// The state after.
    pub next: Next,
    /// Segments sent in response, in order.
    pub emit: Vec<Template>,
    /// The ACK in `emit` may be delayed (RFC 1122 §4.2.3.2, RFC 9293 §3.8.6.3).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub delayable: bool,
    /// The segment in `emit` is a challenge ACK that may be suppressed by
    /// the rate limit of RFC 5961 §7.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub rate_limited: bool,
    /// What the user sees (e.g. "connection reset").
    pub effect: String,
    /// Sources, e.g. `RFC9293 3.10.7.4`.
    pub rfc: Vec<String>,
    /// The keyword level of the rule the row implements (RFC profiles), or
    /// of the rule it departs from (a stack's profile; `none`: a permitted
    /// choice). `None` while a row has not been graded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<Level>,
    /// The RFC 9293 requirement id (appendix B), e.g. `MUST-23`, when the
    /// rule has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requirement: Option<String>,
    /// A stack's profile: the code that behaves so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mechanism: Option<Mechanism>,
    /// The profiles the row belongs to.
    pub profiles: Vec<Profile>,
    /// Rows this one replaces for the events both cover (a profile's
    /// deviation from a shared row).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<String>,
    /// The other side of `overrides`: rows that replace this one for some
    /// events. Both sides are declared so that deleting either is noticed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub overridden_by: Vec<String>,
    /// Further explanation, paraphrased.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A row as written in the TOML files: flat, every field named.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRow {
    pub(crate) id: String,
    from: Vec<State>,
    on: String,
    syn: Option<bool>,
    fin: Option<bool>,
    rst: Option<bool>,
    payload: Option<bool>,
    seq: Option<Vec<SeqClass>>,
    ack: Option<Vec<AckClass>>,
    call: Option<Vec<UserCall>>,
    timeout: Option<Vec<Timeout>>,
    next: Next,
    #[serde(default)]
    emit: Vec<Template>,
    #[serde(default)]
    delayable: bool,
    #[serde(default)]
    rate_limited: bool,
    effect: String,
    rfc: Vec<String>,
    level: Option<Level>,
    requirement: Option<String>,
    mechanism: Option<Mechanism>,
    profiles: Vec<Profile>,
    #[serde(default)]
    overrides: Vec<String>,
    #[serde(default)]
    overridden_by: Vec<String>,
    note: Option<String>,
}

impl RawRow {
    /// Checks that the fields fit the event kind named by `on`.
    pub(crate) fn into_row(self) -> Result<Row, String> {
        let seg_fields = self.syn.is_some()
            || self.fin.is_some()
            || self.rst.is_some()
            || self.payload.is_some()
            || self.seq.is_some()
            || self.ack.is_some();
        let event = match self.on.as_str() {
            "segment" if self.call.is_none() && self.timeout.is_none() => EventPattern::Segment {
                syn: self.syn,
                fin: self.fin,
                rst: self.rst,
                payload: self.payload,
                seq: self.seq,
                ack: self.ack,
            },
            "call" if !seg_fields && self.timeout.is_none() => EventPattern::Call {
                call: self.call.ok_or("`on = \"call\"` needs `call = [...]`")?,
            },
            "timeout" if !seg_fields && self.call.is_none() => EventPattern::Timeout {
                timeout: self
                    .timeout
                    .ok_or("`on = \"timeout\"` needs `timeout = [...]`")?,
            },
            "segment" | "call" | "timeout" => {
                return Err(format!(
                    "fields of another event kind given with `on = \"{}\"`",
                    self.on
                ))
            }
            other => {
                return Err(format!(
                    "`on = \"{other}\"`: expected segment, call or timeout"
                ))
            }
        };
        Ok(Row {
            id: self.id,
            from: self.from,
            event,
            next: self.next,
            emit: self.emit,
            delayable: self.delayable,
            rate_limited: self.rate_limited,
            effect: self.effect,
            rfc: self.rfc,
            level: self.level,
            requirement: self.requirement,
            mechanism: self.mechanism,
            profiles: self.profiles,
            overrides: self.overrides,
            overridden_by: self.overridden_by,
            note: self.note,
        })
    }
}

impl Row {
    /// Whether the row applies to `event` in `state` under `profile`.
    pub fn applies(&self, profile: Profile, state: State, event: &Event) -> bool {
        self.profiles.contains(&profile) && self.from.contains(&state) && self.event.matches(event)
    }
}
