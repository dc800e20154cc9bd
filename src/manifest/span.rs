//! Where each value of a JSON document starts: a map from JSON path to line and column.
//!
//! `serde_json::Value` forgets positions, so validation (which works on typed values) asks
//! this index for the line:column of the path it reports. The scanner only runs on text
//! that already parsed as JSON, but it never panics on anything: on malformed input it
//! stops and keeps what it has indexed.

use std::collections::HashMap;
use std::fmt::Write as _;

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

/// JSON path (as written by [`Path`]) to the position of the value, and of the key that
/// names it (for object members).
#[derive(Debug, Default)]
pub struct SpanIndex {
    values: HashMap<String, Pos>,
    keys: HashMap<String, Pos>,
    duplicates: Vec<String>,
}

impl SpanIndex {
    pub fn build(text: &str) -> SpanIndex {
        let mut scanner = Scanner {
            bytes: text.as_bytes(),
            at: 0,
            line: 1,
            column: 1,
            index: SpanIndex::default(),
        };
        let mut path = Path::root();
        // Depth is bounded by the parser that accepted the text first (serde_json stops at 128).
        let _ = scanner.value(&mut path, 0);
        scanner.index
    }

    /// Paths of object members written more than once (JSON parsers keep the last silently).
    pub fn duplicates(&self) -> &[String] {
        &self.duplicates
    }

    /// Position of the value at `path`.
    pub fn value(&self, path: &str) -> Option<Pos> {
        self.values.get(path).copied()
    }

    /// Position of the key naming the member at `path`, or of the value when it has none.
    pub fn key_or_value(&self, path: &str) -> Option<Pos> {
        self.keys
            .get(path)
            .or_else(|| self.values.get(path))
            .copied()
    }

    /// Position of `path`, or of its nearest ancestor that exists (e.g. for a missing field).
    pub fn nearest(&self, path: &str) -> Option<Pos> {
        let mut p = path;
        loop {
            if let Some(pos) = self.key_or_value(p) {
                return Some(pos);
            }
            if p.is_empty() {
                return None;
            }
            p = &p[..p.rfind(['.', '[']).unwrap_or(0)];
        }
    }
}

/// A JSON path in the form users read: `load_balancer.listeners[1].certificate`.
/// Keys that are not plain identifiers are quoted: `tags["team.name"]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Path(String);

impl Path {
    pub fn root() -> Path {
        Path(String::new())
    }

    pub fn key(&self, key: &str) -> Path {
        let mut s = self.0.clone();
        let plain = !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '$');
        if plain {
            if !s.is_empty() {
                s.push('.');
            }
            s.push_str(key);
        } else {
            let _ = write!(s, "[\"{}\"]", visible(key).replace('"', "\\\""));
        }
        Path(s)
    }

    pub fn index(&self, i: usize) -> Path {
        Path(format!("{}[{i}]", self.0))
    }

    /// A path already in this form (as stored in a [`SpanIndex`]).
    pub fn from_raw(path: &str) -> Path {
        Path(path.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn push_key(&mut self, key: &str) -> usize {
        let len = self.0.len();
        *self = self.key(key);
        len
    }

    fn push_index(&mut self, i: usize) -> usize {
        let len = self.0.len();
        let _ = write!(self.0, "[{i}]");
        len
    }

    fn truncate(&mut self, len: usize) {
        self.0.truncate(len);
    }
}

impl std::fmt::Display for Path {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            f.write_str("(document)")
        } else {
            f.write_str(&self.0)
        }
    }
}

/// `s` with the characters a reader cannot see written as `\uXXXX`.
pub fn visible(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if is_invisible(c) {
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
}

/// Characters a reader cannot see: controls, zero-width and direction marks, BOM. They are
/// written as `\uXXXX` in paths so that a key that looks right but is not can be told apart.
fn is_invisible(c: char) -> bool {
    c.is_control()
        || matches!(u32::from(c), 0x00AD | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x2064 | 0xFEFF)
}

const MAX_DEPTH: usize = 256;

struct Scanner<'a> {
    bytes: &'a [u8],
    at: usize,
    line: usize,
    column: usize,
    index: SpanIndex,
}

impl Scanner<'_> {
    fn pos(&self) -> Pos {
        Pos {
            line: self.line,
            column: self.column,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.at += 1;
        if b == b'\n' {
            self.line += 1;
            self.column = 1;
        } else if b & 0xC0 != 0x80 {
            // Count characters, not the continuation bytes of UTF-8 sequences.
            self.column += 1;
        }
        Some(b)
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.bump();
        }
    }

    fn value(&mut self, path: &mut Path, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.skip_ws();
        self.index.values.insert(path.0.clone(), self.pos());
        match self.peek()? {
            b'{' => {
                self.bump();
                self.skip_ws();
                if self.peek()? == b'}' {
                    self.bump();
                    return Some(());
                }
                loop {
                    self.skip_ws();
                    let key_pos = self.pos();
                    let key = self.string()?;
                    let len = path.push_key(&key);
                    if self.index.keys.insert(path.0.clone(), key_pos).is_some() {
                        self.index.duplicates.push(path.0.clone());
                    }
                    self.skip_ws();
                    if self.bump()? != b':' {
                        return None;
                    }
                    self.value(path, depth + 1)?;
                    path.truncate(len);
                    self.skip_ws();
                    match self.bump()? {
                        b',' => continue,
                        b'}' => return Some(()),
                        _ => return None,
                    }
                }
            }
            b'[' => {
                self.bump();
                self.skip_ws();
                if self.peek()? == b']' {
                    self.bump();
                    return Some(());
                }
                let mut i = 0;
                loop {
                    let len = path.push_index(i);
                    self.value(path, depth + 1)?;
                    path.truncate(len);
                    i += 1;
                    self.skip_ws();
                    match self.bump()? {
                        b',' => continue,
                        b']' => return Some(()),
                        _ => return None,
                    }
                }
            }
            b'"' => self.string().map(|_| ()),
            _ => {
                // Number, true, false or null: runs until a delimiter.
                while let Some(b) = self.peek() {
                    if matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') {
                        break;
                    }
                    self.bump();
                }
                Some(())
            }
        }
    }

    /// Reads a string token and returns its decoded text.
    fn string(&mut self) -> Option<String> {
        let start = self.at;
        if self.bump()? != b'"' {
            return None;
        }
        loop {
            match self.bump()? {
                b'\\' => {
                    self.bump()?;
                }
                b'"' => break,
                _ => {}
            }
        }
        let raw = std::str::from_utf8(self.bytes.get(start..self.at)?).ok()?;
        serde_json::from_str(raw).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_nested_values_and_keys() {
        let text = "{\n  \"a\": [1, {\"b\": \"x\"}],\n  \"odd.key\": true\n}";
        let idx = SpanIndex::build(text);
        assert_eq!(idx.value("a"), Some(Pos { line: 2, column: 8 }));
        assert_eq!(
            idx.value("a[1].b"),
            Some(Pos {
                line: 2,
                column: 18
            })
        );
        assert_eq!(
            idx.key_or_value("[\"odd.key\"]"),
            Some(Pos { line: 3, column: 3 })
        );
        assert_eq!(idx.nearest("a[1].missing"), idx.value("a[1]"));
    }

    #[test]
    fn never_panics_on_truncated_input() {
        for text in [
            "{", "{\"a\"", "[1,", "\"abc", "{\"a\":}", "\u{feff}", "{\"\\",
        ] {
            let _ = SpanIndex::build(text);
        }
    }
}
