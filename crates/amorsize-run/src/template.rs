//! The user's command line with its placeholders, and how inputs are put into it.
//!
//! Placeholders follow GNU parallel: `{}` is replaced by one input, `{+}` by several inputs at
//! once (a batch), and a command with neither gets the input appended as its last argument (as
//! `xargs` and GNU parallel do).
//!
//! How a command runs:
//! - **several words** (`amorsize run -- grep -c foo {}`) are executed directly, without a shell:
//!   each word is one argument, a placeholder is replaced inside the word, and inputs need no
//!   quoting at all. A word holding `{+}` is repeated once per input (GNU parallel's context
//!   replacement, `-X`), so `-f{+}` with inputs `a b` gives `-fa -fb`.
//! - **one word with shell syntax** (`amorsize run -- 'gzip -9 < {} > {}.gz'`) is a shell script
//!   run by `/bin/sh -c`; each input is single-quoted before it is put in, so spaces, quotes,
//!   `$` and newlines in inputs stay data. This is where we differ from GNU parallel, which always
//!   goes through a shell: direct execution saves the shell's start (about a millisecond a job)
//!   and cannot misread an input.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use crate::{Error, ErrorKind, Result};

/// The shell that runs one-word scripts: POSIX `sh`, the same on every system, rather than the
/// user's `$SHELL`, so that a script means the same thing everywhere.
pub const SHELL: &str = "/bin/sh";

/// Linux `MAX_ARG_STRLEN`: no single argument may exceed 32 pages (131072 bytes, NUL included);
/// see execve(2), "Limits on size of arguments and environment". A shell script is one argument.
pub const MAX_ARG_STRLEN: usize = 32 * 4096;

/// Which placeholder the command uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Placeholder {
    /// No placeholder: each input is appended as the last argument.
    Append,
    /// `{}`: one input per job.
    One,
    /// `{+}`: several inputs per job.
    Many,
}

/// A parsed command line.
///
/// # Examples
///
/// ```
/// use amorsize_run::Template;
///
/// let t = Template::parse(["echo", "x{}"]).unwrap();
/// assert!(!t.uses_shell());
/// assert_eq!(t.argv(&["a b".into()]), vec!["echo", "xa b"]);
///
/// let t = Template::parse(["echo {} | tr a-z A-Z"]).unwrap();
/// assert!(t.uses_shell());
/// assert_eq!(t.display(&["it's".into()]), "echo 'it'\\''s' | tr a-z A-Z");
/// ```
#[derive(Clone, Debug)]
pub struct Template {
    words: Vec<OsString>,
    shell: bool,
    placeholder: Placeholder,
}

const ONE: &[u8] = b"{}";
const MANY: &[u8] = b"{+}";

impl Template {
    /// Parses the command's words.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] when there are no words, the first word is empty, or both
    /// `{}` and `{+}` appear (a job takes one input or several, not both).
    pub fn parse<I, S>(words: I) -> Result<Template>
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let words: Vec<OsString> = words.into_iter().map(Into::into).collect();
        let Some(first) = words.first() else {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "no command given: write it after `--`, e.g. `amorsize run -- gzip {}`",
            ));
        };
        if first.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "the command is an empty word",
            ));
        }
        let has = |pat: &[u8]| words.iter().any(|w| find(w.as_bytes(), pat).is_some());
        let placeholder = match (has(ONE), has(MANY)) {
            (true, true) => {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    "the command uses both `{}` and `{+}`: use `{}` for one input per job or \
                     `{+}` for several",
                ))
            }
            (true, false) => Placeholder::One,
            (false, true) => Placeholder::Many,
            (false, false) => Placeholder::Append,
        };
        let shell = words.len() == 1 && needs_shell(first.as_bytes());
        Ok(Template {
            words,
            shell,
            placeholder,
        })
    }

    /// Whether the command is a script run by [`SHELL`].
    pub fn uses_shell(&self) -> bool {
        self.shell
    }

    /// The placeholder the command uses.
    pub fn placeholder(&self) -> Placeholder {
        self.placeholder
    }

    /// Whether one job may take several inputs (`{+}`).
    pub fn batches(&self) -> bool {
        self.placeholder == Placeholder::Many
    }

    /// The program the command starts (the shell for scripts).
    pub fn program(&self) -> &OsStr {
        if self.shell {
            OsStr::new(SHELL)
        } else {
            &self.words[0]
        }
    }

    /// The argument vector of the job over `inputs` (program first).
    pub fn argv(&self, inputs: &[OsString]) -> Vec<OsString> {
        if self.shell {
            let quoted: Vec<Vec<u8>> = inputs.iter().map(|i| quote(i.as_bytes())).collect();
            let script = self.script(&quoted);
            return vec![SHELL.into(), "-c".into(), OsString::from_vec(script)];
        }
        let mut argv = Vec::with_capacity(self.words.len() + inputs.len());
        for word in &self.words {
            let w = word.as_bytes();
            match self.placeholder {
                Placeholder::Append => argv.push(word.clone()),
                Placeholder::One => argv.push(OsString::from_vec(replace(
                    w,
                    ONE,
                    inputs.first().map_or(&[][..], |i| i.as_bytes()),
                ))),
                Placeholder::Many if find(w, MANY).is_some() => {
                    argv.extend(
                        inputs
                            .iter()
                            .map(|i| OsString::from_vec(replace(w, MANY, i.as_bytes()))),
                    );
                }
                Placeholder::Many => argv.push(word.clone()),
            }
        }
        if self.placeholder == Placeholder::Append {
            argv.extend(inputs.iter().cloned());
        }
        argv
    }

    /// The job's command as one line of shell text, for people and the job log: the script
    /// itself, or the words quoted where needed. Control characters (newlines, tabs) are
    /// written as backslash escapes so that the line stays one line.
    pub fn display(&self, inputs: &[OsString]) -> String {
        let text = if self.shell {
            let quoted: Vec<Vec<u8>> = inputs.iter().map(|i| quote(i.as_bytes())).collect();
            self.script(&quoted)
        } else {
            let argv = self.argv(inputs);
            let mut line = Vec::new();
            for (k, a) in argv.iter().enumerate() {
                if k > 0 {
                    line.push(b' ');
                }
                line.extend(quote(a.as_bytes()));
            }
            line
        };
        escape_controls(&String::from_utf8_lossy(&text))
    }

    /// Bytes one input adds to the argument area of `execve` (strings with their NUL and one
    /// pointer each, as the kernel counts them).
    pub fn input_cost(&self, input: &OsStr) -> usize {
        let len = input.as_bytes().len();
        let uses = self.uses_per_job();
        if self.shell {
            // Quoted, plus the separating space.
            (quote(input.as_bytes()).len() + 1) * uses
        } else if self.placeholder == Placeholder::Many {
            // Each `{+}` word is repeated per input: a new string and a new pointer.
            self.words
                .iter()
                .filter(|w| find(w.as_bytes(), MANY).is_some())
                .map(|w| w.as_bytes().len() - MANY.len() + len + 1 + POINTER)
                .sum()
        } else if self.placeholder == Placeholder::Append {
            len + 1 + POINTER
        } else {
            len * uses
        }
    }

    /// Bytes of the argument area with no input at all.
    pub fn base_cost(&self) -> usize {
        if self.shell {
            let script = self.script(&[]);
            SHELL.len() + 1 + 3 + script.len() + 1 + 3 * POINTER
        } else {
            self.words
                .iter()
                .filter(|w| {
                    self.placeholder != Placeholder::Many || find(w.as_bytes(), MANY).is_none()
                })
                .map(|w| w.as_bytes().len() + 1 + POINTER)
                .sum()
        }
    }

    /// The most bytes a single argument may hold here: a script is one argument, so it is
    /// bound by [`MAX_ARG_STRLEN`]; direct arguments are bound only by the total.
    pub fn single_arg_limit(&self) -> Option<usize> {
        self.shell.then_some(MAX_ARG_STRLEN - 1)
    }

    /// How many placeholders a job fills (1 for appended inputs).
    fn uses_per_job(&self) -> usize {
        let pat = match self.placeholder {
            Placeholder::Append => return 1,
            Placeholder::One => ONE,
            Placeholder::Many => MANY,
        };
        self.words
            .iter()
            .map(|w| count(w.as_bytes(), pat))
            .sum::<usize>()
            .max(1)
    }

    /// The script with quoted inputs put in (shell mode).
    fn script(&self, quoted: &[Vec<u8>]) -> Vec<u8> {
        let word = self.words[0].as_bytes();
        let joined = quoted.join(&b' ');
        match self.placeholder {
            Placeholder::One => replace(word, ONE, quoted.first().map_or(&[][..], |q| q)),
            Placeholder::Many => replace(word, MANY, &joined),
            Placeholder::Append if quoted.is_empty() => word.to_vec(),
            Placeholder::Append => [word, b" ", &joined].concat(),
        }
    }
}

/// Size of one pointer in the `argv` array.
const POINTER: usize = std::mem::size_of::<usize>();

/// Whether a one-word command needs a shell: it holds whitespace or a character that is shell
/// syntax (POSIX XCU 2.2 quoting, 2.6 expansions, 2.9 operators, 2.13 patterns).
fn needs_shell(word: &[u8]) -> bool {
    word.iter()
        .any(|b| b.is_ascii_whitespace() || b"|&;<>()$`\\\"'*?[]#~=%!".contains(b))
}

/// Quotes `s` for a POSIX shell: bare when it holds only characters no shell treats specially,
/// otherwise in single quotes, with each `'` written as `'\''` (XCU 2.2.2: nothing inside single
/// quotes is special, newlines included).
pub(crate) fn quote(s: &[u8]) -> Vec<u8> {
    let safe = |b: &u8| b.is_ascii_alphanumeric() || b"-_./,:@+%^".contains(b);
    if !s.is_empty() && s.iter().all(safe) {
        return s.to_vec();
    }
    let mut out = Vec::with_capacity(s.len() + 2);
    out.push(b'\'');
    for &b in s {
        if b == b'\'' {
            out.extend_from_slice(b"'\\''");
        } else {
            out.push(b);
        }
    }
    out.push(b'\'');
    out
}

fn escape_controls(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

fn find(hay: &[u8], pat: &[u8]) -> Option<usize> {
    hay.windows(pat.len()).position(|w| w == pat)
}

fn count(hay: &[u8], pat: &[u8]) -> usize {
    let mut n = 0;
    let mut rest = hay;
    while let Some(i) = find(rest, pat) {
        n += 1;
        rest = &rest[i + pat.len()..];
    }
    n
}

fn replace(hay: &[u8], pat: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hay.len() + with.len());
    let mut rest = hay;
    while let Some(i) = find(rest, pat) {
        out.extend_from_slice(&rest[..i]);
        out.extend_from_slice(with);
        rest = &rest[i + pat.len()..];
    }
    out.extend_from_slice(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn direct_words_take_inputs_verbatim() {
        let t = Template::parse(["printf", "%s\\n", "{}"]).unwrap();
        assert!(!t.uses_shell());
        assert_eq!(
            t.argv(&os(&["a 'b' \"c\"\n"])),
            os(&["printf", "%s\\n", "a 'b' \"c\"\n"])
        );
    }

    #[test]
    fn no_placeholder_appends_the_inputs() {
        let t = Template::parse(["echo", "-n"]).unwrap();
        assert_eq!(t.placeholder(), Placeholder::Append);
        assert_eq!(t.argv(&os(&["x y"])), os(&["echo", "-n", "x y"]));
        let t = Template::parse(["echo $0 hi"]).unwrap();
        assert!(t.uses_shell());
        assert_eq!(t.argv(&os(&["it's"]))[2], "echo $0 hi 'it'\\''s'");
    }

    #[test]
    fn many_repeats_the_word_per_input() {
        let t = Template::parse(["cmd", "-f{+}", "end"]).unwrap();
        assert!(t.batches());
        assert_eq!(t.argv(&os(&["a", "b"])), os(&["cmd", "-fa", "-fb", "end"]));
    }

    #[test]
    fn shell_scripts_quote_every_input() {
        let t = Template::parse(["echo {+} > /dev/null"]).unwrap();
        assert_eq!(
            t.argv(&os(&["a b", "$HOME", "ok"]))[2],
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
    fn display_is_one_line() {
        let t = Template::parse(["echo", "{}"]).unwrap();
        assert_eq!(t.display(&os(&["a\nb"])), "echo 'a\\nb'");
    }

    #[test]
    fn costs_add_up_to_the_argv_size() {
        let size = |argv: &[OsString]| -> usize {
            argv.iter().map(|a| a.as_bytes().len() + 1 + POINTER).sum()
        };
        for words in [
            vec!["cmd", "-x", "{+}"],
            vec!["cmd", "a{+}b", "{+}"],
            vec!["cmd"],
        ] {
            let t = Template::parse(words).unwrap();
            let inputs = os(&["one", "two 2", ""]);
            let cost: usize = t.base_cost() + inputs.iter().map(|i| t.input_cost(i)).sum::<usize>();
            assert_eq!(cost, size(&t.argv(&inputs)));
        }
    }

    #[test]
    fn quoting_round_trips_through_sh() {
        let nasty = "a 'b' \"c\" $d `e` \\f\ng";
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
