//! The user's command line with its replacement strings, and how a job's inputs are put into it.
//!
//! Replacement strings follow GNU parallel:
//!
//! | string | replaced by |
//! |---|---|
//! | `{}` | the input (all of the job's inputs, space-separated, when it takes several) |
//! | `{.}` | the input without its extension (`a/b.tar.gz` → `a/b.tar`) |
//! | `{/}` | its basename (`a/b.c` → `b.c`) |
//! | `{//}` | its directory (`a/b.c` → `a`; `.` when it has none) |
//! | `{/.}` | its basename without extension (`a/b.c` → `b`) |
//! | `{n}` `{n.}` `{n/}` `{n//}` `{n/.}` | the same for the n-th value: the n-th `:::` source, the n-th `--colsep` column or the n-th input of `-N` |
//! | `{#}` | the job number (1, 2, …) |
//! | `{%}` | the job slot (1 … jobs at once) |
//! | `{+}` | several inputs, the word repeated once per input (GNU parallel's `-X` with `{}`) |
//!
//! A command without an input's replacement string gets the inputs appended as its last
//! arguments (as `xargs` and GNU parallel do).
//!
//! How a command runs:
//! - **several words** (`amorsize run grep -c foo {}`) are executed directly, without a shell:
//!   each word is one argument, a replacement string is replaced inside the word, and inputs
//!   need no quoting at all. When a replacement gives several values (`{}` of a job with several
//!   inputs), they are separate arguments, as the shell would split GNU parallel's quoted ones.
//! - **one word with shell syntax** (`amorsize run 'gzip -9 < {} > {}.gz'`) is a shell script
//!   run by `/bin/sh -c`; each value is quoted as GNU parallel quotes it before it is put in,
//!   so spaces, quotes, `$` and newlines in inputs stay data. GNU parallel sends every command
//!   through a shell: running words directly saves the shell's start (about a millisecond a
//!   job) and gives the same result for every command whose words hold no shell syntax.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use crate::{Error, ErrorKind, Result};

/// The shell that runs one-word scripts: POSIX `sh`, the same on every system, rather than the
/// user's `$SHELL`, so that a script means the same thing everywhere.
pub const SHELL: &str = "/bin/sh";

/// Linux `MAX_ARG_STRLEN`: no single argument may exceed 32 pages (131072 bytes, NUL included);
/// see execve(2), "Limits on size of arguments and environment". A shell script is one argument.
pub const MAX_ARG_STRLEN: usize = 32 * 4096;

/// One input: its values (one per `:::` source or `--colsep` column; one for a plain line).
pub type Record = Vec<OsString>;

/// How the inputs reach the command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Placeholder {
    /// No replacement string for an input: the inputs are appended as the last arguments.
    Append,
    /// Replacement strings for one input (or the fixed inputs of `-N`) per job.
    One,
    /// Several inputs per job, as many as the runner measures to pay (`{+}`, `-X`, `-m`).
    Many,
}

/// How a job that takes several inputs puts them into the command.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Batching {
    /// One input per job, or the fixed count of `-N`: `{}` is all of them, space-separated.
    #[default]
    Single,
    /// GNU parallel's `-X`: as many inputs as pay per job, a word holding `{}` repeated once
    /// per input (context replacement).
    Context,
    /// GNU parallel's `-m`: as many inputs as pay per job, `{}` replaced by all of them.
    Joined,
}

/// What part of a value a replacement string takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Part {
    Whole,
    NoExt,
    Base,
    Dir,
    BaseNoExt,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Seg {
    Lit(Vec<u8>),
    /// An input's replacement string: `pos` 1-based, `None` for all of the job's values.
    Input {
        pos: Option<usize>,
        part: Part,
    },
    Seq,
    Slot,
}

/// A parsed command line.
///
/// # Examples
///
/// ```
/// use amorsize_run::{Batching, Job, Template};
///
/// let t = Template::parse(["echo", "x{}", "{/.}"]).unwrap();
/// assert!(!t.uses_shell());
/// let inputs = vec![vec!["d/a b.c".into()]];
/// let job = Job { inputs: &inputs, seq: 1, slot: 1 };
/// assert_eq!(t.argv(&job), vec!["echo", "xd/a b.c", "a b"]);
///
/// let t = Template::parse(["echo {} | tr a-z A-Z"]).unwrap();
/// assert!(t.uses_shell());
/// let inputs = vec![vec!["it's".into()]];
/// let job = Job { inputs: &inputs, seq: 1, slot: 1 };
/// assert_eq!(t.display(&job), "echo 'it'\"'\"'s' | tr a-z A-Z");
/// ```
#[derive(Clone, Debug)]
pub struct Template {
    words: Vec<Vec<Seg>>,
    shell: bool,
    batching: Batching,
    /// Whether any word holds a replacement string (`{#}` and `{%}` included: as in GNU
    /// parallel, a command with one gets nothing appended).
    uses_inputs: bool,
    program: OsString,
}

/// The inputs and numbers of one job, as the template fills them in.
#[derive(Clone, Copy, Debug)]
pub struct Job<'a> {
    /// Its inputs, in order.
    pub inputs: &'a [Record],
    /// Its job number (`{#}`), from 1.
    pub seq: usize,
    /// Its job slot (`{%}`), from 1.
    pub slot: usize,
}

impl Template {
    /// Parses the command's words, one input per job.
    ///
    /// # Errors
    ///
    /// See [`Template::with_batching`].
    pub fn parse<I, S>(words: I) -> Result<Template>
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        Self::with_batching(words, Batching::Single)
    }

    /// Parses the command's words with the given way of putting several inputs in.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] when there are no words, the first word is empty, or both
    /// `{}` and `{+}` appear (a job takes one input or several, not both).
    pub fn with_batching<I, S>(words: I, batching: Batching) -> Result<Template>
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let words: Vec<OsString> = words.into_iter().map(Into::into).collect();
        let Some(first) = words.first() else {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "no command given: write it after the options, e.g. `amorsize run gzip {}`",
            ));
        };
        if first.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "the command is an empty word",
            ));
        }
        let has = |pat: &[u8]| words.iter().any(|w| find(w.as_bytes(), pat).is_some());
        let plus = has(b"{+}");
        let mut batching = batching;
        if plus {
            if has(b"{}") {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    "the command uses both `{}` and `{+}`: use `{}` for one input per job or \
                     `{+}` for several",
                ));
            }
            batching = Batching::Context;
        }
        let shell = words.len() == 1 && needs_shell(first.as_bytes());
        let parsed: Vec<Vec<Seg>> = words.iter().map(|w| segments(w.as_bytes())).collect();
        let uses_inputs = parsed.iter().flatten().any(|s| !matches!(s, Seg::Lit(_)));
        Ok(Template {
            program: if shell { SHELL.into() } else { first.clone() },
            words: parsed,
            shell,
            batching,
            uses_inputs,
        })
    }

    /// Whether the command is a script run by [`SHELL`].
    pub fn uses_shell(&self) -> bool {
        self.shell
    }

    /// How the inputs reach the command.
    pub fn placeholder(&self) -> Placeholder {
        if self.batches() {
            Placeholder::Many
        } else if self.uses_inputs {
            Placeholder::One
        } else {
            Placeholder::Append
        }
    }

    /// Whether one job may take as many inputs as pay (`{+}`, `-X`, `-m`).
    pub fn batches(&self) -> bool {
        self.batching != Batching::Single
    }

    /// The program the command starts (the shell for scripts).
    pub fn program(&self) -> &OsStr {
        &self.program
    }

    /// The argument vector of `job` (program first).
    pub fn argv(&self, job: &Job) -> Vec<OsString> {
        if self.shell {
            let script = self.script(job);
            return vec![SHELL.into(), "-c".into(), OsString::from_vec(script)];
        }
        let mut argv: Vec<OsString> = Vec::with_capacity(self.words.len() + job.inputs.len());
        for word in &self.words {
            if self.repeats(word) {
                for record in job.inputs {
                    let one = Job {
                        inputs: std::slice::from_ref(record),
                        ..*job
                    };
                    argv.extend(expand(word, &one).into_iter().map(OsString::from_vec));
                }
            } else {
                argv.extend(expand(word, job).into_iter().map(OsString::from_vec));
            }
        }
        if !self.uses_inputs {
            argv.extend(job.inputs.iter().flatten().cloned());
        }
        argv
    }

    /// The job's command as one line of shell text, as GNU parallel's `--dry-run` prints it:
    /// the words as written, each value quoted where the shell needs it. Control characters
    /// (newlines, tabs) in words are written as backslash escapes so that the line stays one
    /// line; values keep them, inside quotes.
    pub fn display(&self, job: &Job) -> String {
        let text = if self.shell {
            self.script(job)
        } else {
            let mut line: Vec<u8> = Vec::new();
            let sep = |line: &mut Vec<u8>| {
                if !line.is_empty() {
                    line.push(b' ');
                }
            };
            for word in &self.words {
                if self.repeats(word) {
                    for record in job.inputs {
                        let one = Job {
                            inputs: std::slice::from_ref(record),
                            ..*job
                        };
                        sep(&mut line);
                        line.extend(shown(word, &one));
                    }
                } else {
                    sep(&mut line);
                    line.extend(shown(word, job));
                }
            }
            if !self.uses_inputs {
                for v in job.inputs.iter().flatten() {
                    sep(&mut line);
                    line.extend(quote(v.as_bytes()));
                }
            }
            line
        };
        String::from_utf8_lossy(&text).into_owned()
    }

    /// Bytes one input adds to the argument area of `execve` (strings with their NUL and one
    /// pointer each, as the kernel counts them), at most.
    pub fn input_cost(&self, input: &Record) -> usize {
        let len: usize = input.iter().map(|v| v.len()).sum();
        let values = input.len().max(1);
        if self.shell {
            let quoted: usize = input.iter().map(|v| quote(v.as_bytes()).len() + 1).sum();
            let context: usize = self
                .words
                .iter()
                .flatten()
                .map(|s| match s {
                    Seg::Lit(l) => l.len(),
                    _ => 0,
                })
                .sum();
            let uses = self.uses_of_all().max(1);
            if self.batching == Batching::Context {
                (quoted + context + 1) * uses
            } else {
                quoted * uses
            }
        } else if !self.uses_inputs {
            len + values * (1 + POINTER)
        } else {
            self.words
                .iter()
                .filter(|w| self.repeats(w))
                .map(|w| lit_len(w) + uses_in(w) * len + 1 + POINTER)
                .sum::<usize>()
                + self
                    .words
                    .iter()
                    .filter(|w| !self.repeats(w))
                    .map(|w| uses_in(w) * (len + values * (1 + POINTER)))
                    .sum::<usize>()
        }
    }

    /// Bytes of the argument area with no input at all.
    pub fn base_cost(&self) -> usize {
        let job = Job {
            inputs: &[],
            seq: 1,
            slot: 1,
        };
        self.argv(&job).iter().map(|a| a.len() + 1 + POINTER).sum()
    }

    /// The most bytes a single argument may hold here: a script is one argument, so it is
    /// bound by [`MAX_ARG_STRLEN`]; direct arguments are bound only by the total.
    pub fn single_arg_limit(&self) -> Option<usize> {
        self.shell.then_some(MAX_ARG_STRLEN - 1)
    }

    /// Whether `word` is repeated once per input (context replacement).
    fn repeats(&self, word: &[Seg]) -> bool {
        self.batching == Batching::Context
            && word
                .iter()
                .any(|s| matches!(s, Seg::Input { pos: None, .. }))
    }

    /// Replacement strings of inputs in the whole command.
    fn uses_of_all(&self) -> usize {
        self.words.iter().map(|w| uses_in(w)).sum()
    }

    /// The script with quoted values put in (shell mode). With context replacement, the
    /// whitespace-separated part of the script that holds `{}` is repeated once per input.
    fn script(&self, job: &Job) -> Vec<u8> {
        let word = &self.words[0];
        let mut body = if self.batching == Batching::Context {
            let mut out = Vec::new();
            for token in tokens(word) {
                if self.repeats(&token) {
                    let parts: Vec<Vec<u8>> = job
                        .inputs
                        .iter()
                        .map(|r| {
                            let one = Job {
                                inputs: std::slice::from_ref(r),
                                ..*job
                            };
                            shown(&token, &one)
                        })
                        .collect();
                    out.extend(parts.join(&b' '));
                } else {
                    out.extend(shown_raw(&token, job));
                }
            }
            out
        } else {
            shown_raw(word, job)
        };
        if !self.uses_inputs {
            for v in job.inputs.iter().flatten() {
                body.push(b' ');
                body.extend(quote(v.as_bytes()));
            }
        }
        body
    }
}

/// Size of one pointer in the `argv` array.
const POINTER: usize = std::mem::size_of::<usize>();

fn lit_len(word: &[Seg]) -> usize {
    word.iter()
        .map(|s| match s {
            Seg::Lit(l) => l.len(),
            Seg::Seq | Seg::Slot => 20,
            Seg::Input { .. } => 0,
        })
        .sum()
}

/// Replacement strings of inputs in `word` (an input's bytes reach the command once per use,
/// at most).
fn uses_in(word: &[Seg]) -> usize {
    word.iter()
        .filter(|s| matches!(s, Seg::Input { .. }))
        .count()
}

/// Splits a word into literal text and replacement strings.
fn segments(word: &[u8]) -> Vec<Seg> {
    let mut out = Vec::new();
    let mut lit = Vec::new();
    let mut i = 0;
    while i < word.len() {
        if word[i] == b'{' {
            if let Some(end) = word[i + 1..].iter().position(|&b| b == b'}') {
                if let Some(seg) = replacement(&word[i + 1..i + 1 + end]) {
                    if !lit.is_empty() {
                        out.push(Seg::Lit(std::mem::take(&mut lit)));
                    }
                    out.push(seg);
                    i += end + 2;
                    continue;
                }
            }
        }
        lit.push(word[i]);
        i += 1;
    }
    if !lit.is_empty() || out.is_empty() {
        out.push(Seg::Lit(lit));
    }
    out
}

/// The replacement string between `{` and `}`, if `inner` is one.
fn replacement(inner: &[u8]) -> Option<Seg> {
    match inner {
        b"#" => return Some(Seg::Seq),
        b"%" => return Some(Seg::Slot),
        b"+" => {
            return Some(Seg::Input {
                pos: None,
                part: Part::Whole,
            })
        }
        _ => {}
    }
    let digits = inner.iter().take_while(|b| b.is_ascii_digit()).count();
    let pos = if digits == 0 {
        None
    } else {
        let n: usize = std::str::from_utf8(&inner[..digits]).ok()?.parse().ok()?;
        Some(n).filter(|&n| n > 0)?.into()
    };
    let part = match &inner[digits..] {
        b"" => Part::Whole,
        b"." => Part::NoExt,
        b"/" => Part::Base,
        b"//" => Part::Dir,
        b"/." => Part::BaseNoExt,
        _ => return None,
    };
    Some(Seg::Input { pos, part })
}

/// Splits a shell word's segments at whitespace in its literal text, the whitespace kept as
/// tokens of its own.
fn tokens(word: &[Seg]) -> Vec<Vec<Seg>> {
    let mut out: Vec<Vec<Seg>> = Vec::new();
    let mut cur: Vec<Seg> = Vec::new();
    for seg in word {
        match seg {
            Seg::Lit(l) => {
                let mut run = Vec::new();
                let mut space = None;
                for &b in l {
                    let is_space = b.is_ascii_whitespace();
                    if space.is_some_and(|s| s != is_space) {
                        if space == Some(true) {
                            out.push(std::mem::take(&mut cur));
                            out.push(vec![Seg::Lit(std::mem::take(&mut run))]);
                        } else {
                            cur.push(Seg::Lit(std::mem::take(&mut run)));
                        }
                    }
                    space = Some(is_space);
                    run.push(b);
                }
                if space == Some(true) {
                    out.push(std::mem::take(&mut cur));
                    out.push(vec![Seg::Lit(run)]);
                } else if !run.is_empty() {
                    cur.push(Seg::Lit(run));
                }
            }
            other => cur.push(other.clone()),
        }
    }
    out.push(cur);
    out.retain(|t| !t.is_empty());
    out
}

/// The values a replacement string stands for in `job`.
fn values<'a>(job: &Job<'a>, pos: Option<usize>) -> Vec<&'a [u8]> {
    let mut all = job.inputs.iter().flatten().map(|v| v.as_bytes());
    match pos {
        None => all.collect(),
        Some(n) => vec![all.nth(n - 1).unwrap_or(b"")],
    }
}

fn number(n: usize) -> Vec<u8> {
    n.to_string().into_bytes()
}

/// A word's arguments (direct mode): several values of one replacement string are separate
/// arguments, the first joined to the text before it and the last to the text after it.
fn expand(word: &[Seg], job: &Job) -> Vec<Vec<u8>> {
    let mut args: Vec<Vec<u8>> = vec![Vec::new()];
    for seg in word {
        let last = args.len() - 1;
        match seg {
            Seg::Lit(l) => args[last].extend_from_slice(l),
            Seg::Seq => args[last].extend(number(job.seq)),
            Seg::Slot => args[last].extend(number(job.slot)),
            Seg::Input { pos, part } => {
                for (k, v) in values(job, *pos).into_iter().enumerate() {
                    if k > 0 {
                        args.push(Vec::new());
                    }
                    let last = args.len() - 1;
                    args[last].extend_from_slice(&apply(v, *part));
                }
            }
        }
    }
    args
}

/// A word as shell text: literal text as written (quoted when it holds shell syntax, so that
/// the line runs as the words did), values quoted.
fn shown(word: &[Seg], job: &Job) -> Vec<u8> {
    let mut out = Vec::new();
    for seg in word {
        match seg {
            Seg::Lit(l) if needs_shell(l) || l.is_empty() && word.len() == 1 => {
                out.extend(quote(l))
            }
            _ => out.extend(shown_seg(seg, job)),
        }
    }
    out
}

/// Shell text with the literal parts as written (they are shell text already).
fn shown_raw(word: &[Seg], job: &Job) -> Vec<u8> {
    word.iter().flat_map(|s| shown_seg(s, job)).collect()
}

fn shown_seg(seg: &Seg, job: &Job) -> Vec<u8> {
    match seg {
        Seg::Lit(l) => l.clone(),
        Seg::Seq => number(job.seq),
        Seg::Slot => number(job.slot),
        Seg::Input { pos, part } => values(job, *pos)
            .into_iter()
            .map(|v| quote(&apply(v, *part)))
            .collect::<Vec<_>>()
            .join(&b' '),
    }
}

/// The part of a value a replacement string asks for, as GNU parallel computes it: `{/}` is
/// `s:.*/::`, `{.}` is `s:\.[^/.]*$::`, `{//}` is Perl's `dirname`.
fn apply(v: &[u8], part: Part) -> Vec<u8> {
    let slash = v.iter().rposition(|&b| b == b'/');
    let base = slash.map_or(v, |i| &v[i + 1..]);
    let no_ext = |s: &[u8]| -> Vec<u8> {
        match s.iter().rposition(|&b| b == b'.') {
            Some(i) if !s[i..].contains(&b'/') => s[..i].to_vec(),
            _ => s.to_vec(),
        }
    };
    match part {
        Part::Whole => v.to_vec(),
        Part::NoExt => no_ext(v),
        Part::Base => base.to_vec(),
        Part::BaseNoExt => no_ext(base),
        Part::Dir => {
            let trimmed = match v.iter().rposition(|&b| b != b'/') {
                Some(i) => &v[..=i],
                None if v.is_empty() => return b".".to_vec(),
                None => return b"/".to_vec(),
            };
            match trimmed.iter().rposition(|&b| b == b'/') {
                None => b".".to_vec(),
                Some(i) => match trimmed[..i].iter().rposition(|&b| b != b'/') {
                    Some(j) => trimmed[..=j].to_vec(),
                    None => b"/".to_vec(),
                },
            }
        }
    }
}

/// Whether a word needs a shell: it holds whitespace or a character that is shell syntax
/// (POSIX XCU 2.2 quoting, 2.6 expansions, 2.9 operators, 2.13 patterns).
fn needs_shell(word: &[u8]) -> bool {
    word.iter()
        .any(|b| b.is_ascii_whitespace() || b"|&;<>()$`\\\"'*?[]#~=%!".contains(b))
}

/// Quotes `s` for a POSIX shell exactly as GNU parallel does (its `shell_quote_scalar`): bare
/// when it holds only `-_.+/`, letters and digits; otherwise in single quotes, each `'` written
/// as `'"'"'` (XCU 2.2.2: nothing inside single quotes is special, newlines included), with
/// the empty `''` at either end dropped; the empty string is `''`.
pub fn quote(s: &[u8]) -> Vec<u8> {
    let safe = |b: &u8| b.is_ascii_alphanumeric() || b"-_.+/".contains(b);
    if s.is_empty() {
        return b"''".to_vec();
    }
    if s.iter().all(safe) {
        return s.to_vec();
    }
    let mut out = Vec::with_capacity(s.len() + 2);
    out.push(b'\'');
    for &b in s {
        if b == b'\'' {
            out.extend_from_slice(b"'\"'\"'");
        } else {
            out.push(b);
        }
    }
    out.push(b'\'');
    let mut out: &[u8] = &out;
    if out.starts_with(b"''") {
        out = &out[2..];
    }
    if out.ends_with(b"''") && out.len() >= 2 {
        out = &out[..out.len() - 2];
    }
    out.to_vec()
}

fn find(hay: &[u8], pat: &[u8]) -> Option<usize> {
    hay.windows(pat.len()).position(|w| w == pat)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recs(v: &[&str]) -> Vec<Record> {
        v.iter().map(|s| vec![OsString::from(s)]).collect()
    }

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    fn job(inputs: &[Record]) -> Job<'_> {
        Job {
            inputs,
            seq: 3,
            slot: 2,
        }
    }

    #[test]
    fn direct_words_take_inputs_verbatim() {
        let t = Template::parse(["printf", "%s\\n", "{}"]).unwrap();
        assert!(!t.uses_shell());
        let r = recs(&["a 'b' \"c\"\n"]);
        assert_eq!(t.argv(&job(&r)), os(&["printf", "%s\\n", "a 'b' \"c\"\n"]));
    }

    #[test]
    fn no_placeholder_appends_the_inputs() {
        let t = Template::parse(["echo", "-n"]).unwrap();
        assert_eq!(t.placeholder(), Placeholder::Append);
        assert_eq!(t.argv(&job(&recs(&["x y"]))), os(&["echo", "-n", "x y"]));
        let t = Template::parse(["echo $0 hi"]).unwrap();
        assert!(t.uses_shell());
        assert_eq!(t.argv(&job(&recs(&["it's"])))[2], "echo $0 hi 'it'\"'\"'s'");
        // `{#}` and `{%}` are not inputs: nothing is appended.
        let t = Template::parse(["echo", "{#}", "{%}"]).unwrap();
        assert_eq!(t.argv(&job(&recs(&["x"]))), os(&["echo", "3", "2"]));
    }

    #[test]
    fn many_repeats_the_word_per_input() {
        let t = Template::parse(["cmd", "-f{+}", "end"]).unwrap();
        assert!(t.batches());
        assert_eq!(
            t.argv(&job(&recs(&["a", "b"]))),
            os(&["cmd", "-fa", "-fb", "end"])
        );
        let t = Template::with_batching(["cmd", "-f{}", "end"], Batching::Context).unwrap();
        assert_eq!(
            t.argv(&job(&recs(&["a", "b"]))),
            os(&["cmd", "-fa", "-fb", "end"])
        );
        let t = Template::with_batching(["cmd", "-f{}x", "end"], Batching::Joined).unwrap();
        assert_eq!(
            t.argv(&job(&recs(&["a", "b"]))),
            os(&["cmd", "-fa", "bx", "end"])
        );
        let t = Template::with_batching(["echo pre{}post"], Batching::Context).unwrap();
        assert_eq!(
            t.display(&job(&recs(&["a", "b c"]))),
            "echo preapost pre'b c'post"
        );
    }

    #[test]
    fn replacement_strings_follow_gnu_parallel() {
        let t = Template::parse(["echo", "{//}", "{/}", "{.}", "{/.}", "{#}", "{%}"]).unwrap();
        let r = recs(&["a/b.c/d.e.f"]);
        assert_eq!(
            t.argv(&job(&r)),
            os(&["echo", "a/b.c", "d.e.f", "a/b.c/d.e", "d.e", "3", "2"])
        );
        let r = recs(&["x.y"]);
        assert_eq!(
            t.argv(&job(&r)),
            os(&["echo", ".", "x.y", "x", "x", "3", "2"])
        );
        let r = recs(&["a.b/c"]);
        assert_eq!(t.argv(&job(&r))[3], "a.b/c");
        let t = Template::parse(["echo", "{2}-{1}", "{3}", "{1/}", "{x}", "{0}"]).unwrap();
        let r = vec![os(&["d/a", "b"])];
        assert_eq!(
            t.argv(&job(&r)),
            os(&["echo", "b-d/a", "", "a", "{x}", "{0}"])
        );
        // `{}` of several values: separate arguments, as the shell splits GNU parallel's.
        let t = Template::parse(["printf", "[%s]", "x{}y"]).unwrap();
        assert_eq!(t.argv(&job(&r)), os(&["printf", "[%s]", "xd/a", "by"]));
    }

    #[test]
    fn shell_scripts_quote_every_input() {
        let t = Template::parse(["echo {+} > /dev/null"]).unwrap();
        assert_eq!(
            t.argv(&job(&recs(&["a b", "$HOME", "ok"])))[2],
            "echo 'a b' '$HOME' ok > /dev/null"
        );
    }

    #[test]
    fn both_placeholders_are_refused() {
        let err = Template::parse(["cp", "{}", "{+}"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(Template::parse(Vec::<String>::new()).is_err());
    }

    #[test]
    fn display_quotes_as_gnu_parallel() {
        let t = Template::parse(["echo", "{}"]).unwrap();
        assert_eq!(t.display(&job(&recs(&["a\nb"]))), "echo 'a\nb'");
        assert_eq!(t.display(&job(&recs(&[""]))), "echo ''");
        assert_eq!(t.display(&job(&recs(&["x,y"]))), "echo 'x,y'");
        let t = Template::parse(["printf", "%s\\n", "a,b"]).unwrap();
        assert_eq!(t.display(&job(&recs(&["z"]))), "printf '%s\\n' a,b z");
        assert_eq!(quote(b"'a"), b"\"'\"'a'");
        assert_eq!(quote(b"a'"), b"'a'\"'\"");
    }

    #[test]
    fn costs_bound_the_argv_size() {
        let size = |argv: &[OsString]| -> usize {
            argv.iter().map(|a| a.as_bytes().len() + 1 + POINTER).sum()
        };
        for (words, batching) in [
            (vec!["cmd", "-x", "{+}"], Batching::Single),
            (vec!["cmd", "a{+}b", "{+}"], Batching::Single),
            (vec!["cmd"], Batching::Single),
            (vec!["cmd", "{}"], Batching::Joined),
            (vec!["echo {} | wc"], Batching::Context),
            (vec!["echo {} | wc"], Batching::Joined),
        ] {
            let t = Template::with_batching(words.clone(), batching).unwrap();
            let inputs = recs(&["one", "two 2", ""]);
            let cost: usize = t.base_cost() + inputs.iter().map(|i| t.input_cost(i)).sum::<usize>();
            let real = size(&t.argv(&job(&inputs)));
            assert!(cost >= real, "{words:?}: {cost} < {real}");
            if !t.uses_shell() && batching == Batching::Single {
                assert_eq!(cost, real, "{words:?}");
            }
        }
    }

    #[test]
    fn quoting_round_trips_through_sh() {
        for nasty in ["a 'b' \"c\" $d `e` \\f\ng", "'", "''x'", ""] {
            let out = std::process::Command::new(SHELL)
                .arg("-c")
                .arg(format!(
                    "printf %s {}",
                    String::from_utf8(quote(nasty.as_bytes())).unwrap()
                ))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8(out.stdout).unwrap(), nasty);
        }
    }
}
