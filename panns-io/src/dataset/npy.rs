//! NumPy `.npy` files, format versions 1.0, 2.0 and 3.0, 2-D float32/float64 arrays in C order.
//!
//! The header is a Python dict literal such as
//! `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }`; it is parsed by hand with a
//! small recursive-descent parser (strings, booleans, `None`, integers, tuples and lists).

use std::io::Read;
use std::path::Path;

use super::{Dataset, F64ToF32, check_finite, open, read_elements};
use crate::error::{Error, Result};

const MAGIC: &[u8; 6] = b"\x93NUMPY";
/// Headers larger than this are refused (NumPy itself refuses more than 10 000 bytes by default).
const MAX_HEADER_BYTES: u64 = 1 << 20;

/// The element types this reader converts to `f32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dtype {
    F32 { big_endian: bool },
    F64 { big_endian: bool },
}

impl Dtype {
    fn size(self) -> u64 {
        match self {
            Dtype::F32 { .. } => 4,
            Dtype::F64 { .. } => 8,
        }
    }
}

/// Reads a NumPy `.npy` file holding a 2-D `float32` or `float64` array (`<f4`, `<f8`, or the
/// big-endian `>f4`, `>f8`) in C order; `float64` is converted to `f32`.
///
/// Errors: another dtype (named), `fortran_order: True` (unless one side of the shape is 1, where
/// both orders coincide), a shape that is not 2-D or has no values, a data section whose length
/// differs from what the shape needs (expected and actual bytes), NaN/infinite values or `f64`
/// values out of `f32` range (row and dimension).
pub fn read_npy(path: impl AsRef<Path>) -> Result<Dataset> {
    let path = path.as_ref();
    let (mut reader, len) = open(path)?;
    let io = |e| Error::io(path, e);
    if len < 10 {
        return Err(Error::malformed(
            path,
            format!("{len} bytes is too short for a .npy file (at least 10 for the preamble)"),
        ));
    }
    let mut preamble = [0u8; 8];
    reader.read_exact(&mut preamble).map_err(io)?;
    if &preamble[..6] != MAGIC {
        return Err(Error::malformed(
            path,
            "not a .npy file: the magic string \\x93NUMPY is missing",
        ));
    }
    let (major, minor) = (preamble[6], preamble[7]);
    let header_len = match major {
        1 => {
            let mut b = [0u8; 2];
            reader.read_exact(&mut b).map_err(io)?;
            u64::from(u16::from_le_bytes(b))
        }
        2 | 3 => {
            let mut b = [0u8; 4];
            reader.read_exact(&mut b).map_err(io)?;
            u64::from(u32::from_le_bytes(b))
        }
        _ => {
            return Err(Error::unsupported(
                path,
                format!(".npy format version {major}.{minor} (1.0, 2.0 and 3.0 are supported)"),
            ));
        }
    };
    let prelude = if major == 1 { 10 } else { 12 };
    let header_end = prelude + header_len;
    if header_len > MAX_HEADER_BYTES || header_end > len {
        return Err(Error::malformed(
            path,
            format!(
                "the header declares {header_len} bytes, but the file has {} bytes after the \
                 preamble (truncated or not a .npy file)",
                len.saturating_sub(prelude)
            ),
        ));
    }
    let mut header = vec![0u8; header_len as usize];
    reader.read_exact(&mut header).map_err(io)?;
    let header =
        parse_header(&header).map_err(|m| Error::malformed(path, format!("header: {m}")))?;

    let dtype = match header.descr.as_str() {
        "<f4" => Dtype::F32 { big_endian: false },
        ">f4" => Dtype::F32 { big_endian: true },
        "<f8" => Dtype::F64 { big_endian: false },
        ">f8" => Dtype::F64 { big_endian: true },
        other => {
            return Err(Error::unsupported(
                path,
                format!(
                    "dtype '{other}' (only float32 '<f4' and float64 '<f8' are read; convert with \
                     arr.astype(np.float32))"
                ),
            ));
        }
    };
    let shape_text = format_shape(&header.shape);
    let &[n, dim] = header.shape.as_slice() else {
        return Err(Error::unsupported(
            path,
            format!(
                "shape {shape_text} is {}-D; a 2-D array (rows, dim) is expected",
                header.shape.len()
            ),
        ));
    };
    if header.fortran_order && n > 1 && dim > 1 {
        return Err(Error::unsupported(
            path,
            "fortran_order: True (column-major); save a C-ordered array (np.ascontiguousarray)",
        ));
    }
    if n == 0 || dim == 0 {
        return Err(Error::malformed(
            path,
            format!("shape {shape_text} holds no values"),
        ));
    }
    let expected = n
        .checked_mul(dim)
        .and_then(|c| c.checked_mul(dtype.size()))
        .ok_or_else(|| Error::malformed(path, format!("shape {shape_text} is absurdly large")))?;
    let actual = len - header_end;
    if actual != expected {
        let what = if actual < expected {
            "truncated"
        } else {
            "trailing bytes"
        };
        return Err(Error::malformed(
            path,
            format!(
                "{what}: shape {shape_text} of {} needs {expected} data bytes, the file has {actual}",
                header.descr
            ),
        ));
    }
    // Both fit: their product times the element size is at most the file length.
    let (n, dim) = (n as usize, dim as usize);
    let count = n * dim;
    let mut data = Vec::new();
    data.try_reserve_exact(count)
        .map_err(|_| Error::malformed(path, format!("cannot allocate {n} x {dim} f32 values")))?;
    match dtype {
        Dtype::F32 { big_endian } => {
            let from = if big_endian {
                f32::from_be_bytes
            } else {
                f32::from_le_bytes
            };
            read_elements(&mut reader, count, &mut data, from).map_err(io)?;
            check_finite(path, &data, dim)?;
        }
        Dtype::F64 { big_endian } => {
            let from = if big_endian {
                f64::from_be_bytes
            } else {
                f64::from_le_bytes
            };
            let mut conv = F64ToF32::new(0);
            read_elements(&mut reader, count, &mut data, |b| conv.convert(from(b))).map_err(io)?;
            conv.check(path, dim)?;
        }
    }
    Ok(Dataset { data, n, dim })
}

/// The three keys of a `.npy` header.
#[derive(Debug, PartialEq)]
struct Header {
    descr: String,
    fortran_order: bool,
    shape: Vec<u64>,
}

/// A Python literal of the kinds a `.npy` header holds.
#[derive(Debug, PartialEq)]
enum Value {
    Str(String),
    Bool(bool),
    Int(u64),
    None,
    Seq(Vec<Value>),
}

/// Formats a shape like Python does: `(5,)`, `(3, 4)`.
fn format_shape(shape: &[u64]) -> String {
    match shape {
        [one] => format!("({one},)"),
        _ => {
            let parts: Vec<String> = shape.iter().map(u64::to_string).collect();
            format!("({})", parts.join(", "))
        }
    }
}

/// Parses the header dict and extracts `descr`, `fortran_order` and `shape`.
fn parse_header(bytes: &[u8]) -> std::result::Result<Header, String> {
    let mut p = Parser { s: bytes, pos: 0 };
    let mut descr = None;
    let mut fortran_order = None;
    let mut shape = None;
    p.expect(b'{')?;
    loop {
        p.skip_ws();
        if p.eat(b'}') {
            break;
        }
        let key = match p.value(0)? {
            (Value::Str(k), _) => k,
            (_, raw) => return Err(format!("expected a string key, found {raw}")),
        };
        p.expect(b':')?;
        let (value, raw) = p.value(0)?;
        match (key.as_str(), value) {
            ("descr", Value::Str(s)) => descr = Some(s),
            ("descr", _) => descr = Some(raw),
            ("fortran_order", Value::Bool(b)) => fortran_order = Some(b),
            ("shape", Value::Seq(items)) => {
                let dims: Option<Vec<u64>> = items
                    .iter()
                    .map(|v| {
                        if let Value::Int(i) = v {
                            Some(*i)
                        } else {
                            None
                        }
                    })
                    .collect();
                shape =
                    Some(dims.ok_or_else(|| format!("shape {raw} is not a tuple of integers"))?);
            }
            ("fortran_order" | "shape", _) => return Err(format!("bad value {raw} for '{key}'")),
            _ => {} // unknown keys are ignored
        }
        p.skip_ws();
        if !p.eat(b',') {
            p.expect(b'}')?;
            break;
        }
    }
    Ok(Header {
        descr: descr.ok_or("the key 'descr' is missing")?,
        fortran_order: fortran_order.ok_or("the key 'fortran_order' is missing")?,
        shape: shape.ok_or("the key 'shape' is missing")?,
    })
}

/// A cursor over the header bytes.
struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while self.s.get(self.pos).is_some_and(u8::is_ascii_whitespace) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.s.get(self.pos) == Some(&c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: u8) -> std::result::Result<(), String> {
        self.skip_ws();
        if self.eat(c) {
            Ok(())
        } else {
            let found = match self.s.get(self.pos) {
                Some(&b) => format!("'{}'", b.escape_ascii()),
                None => "the end".to_string(),
            };
            Err(format!(
                "expected '{}' at byte {}, found {found}",
                char::from(c),
                self.pos
            ))
        }
    }

    /// Parses one value; returns it and its source text.
    fn value(&mut self, depth: usize) -> std::result::Result<(Value, String), String> {
        if depth > 16 {
            return Err("values nested too deeply".to_string());
        }
        self.skip_ws();
        let start = self.pos;
        let value = match self.s.get(self.pos) {
            None => return Err("unexpected end of the header".to_string()),
            Some(&q @ (b'\'' | b'"')) => {
                self.pos += 1;
                let body = self.pos;
                while self.s.get(self.pos).is_some_and(|&b| b != q) {
                    self.pos += 1;
                }
                if self.pos >= self.s.len() {
                    return Err(format!("unterminated string starting at byte {start}"));
                }
                let text = String::from_utf8_lossy(&self.s[body..self.pos]).into_owned();
                self.pos += 1;
                Value::Str(text)
            }
            Some(&open @ (b'(' | b'[')) => {
                let close = if open == b'(' { b')' } else { b']' };
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_ws();
                    if self.eat(close) {
                        break;
                    }
                    items.push(self.value(depth + 1)?.0);
                    self.skip_ws();
                    if !self.eat(b',') {
                        self.expect(close)?;
                        break;
                    }
                }
                Value::Seq(items)
            }
            Some(b) if b.is_ascii_digit() => {
                let digits = self.pos;
                while self.s.get(self.pos).is_some_and(u8::is_ascii_digit) {
                    self.pos += 1;
                }
                let text = String::from_utf8_lossy(&self.s[digits..self.pos]).into_owned();
                self.eat(b'L'); // Python 2 long literal
                Value::Int(
                    text.parse()
                        .map_err(|_| format!("integer {text} is too large"))?,
                )
            }
            Some(_) => {
                let word = self.pos;
                while self
                    .s
                    .get(self.pos)
                    .is_some_and(|b| b.is_ascii_alphabetic())
                {
                    self.pos += 1;
                }
                match &self.s[word..self.pos] {
                    b"True" => Value::Bool(true),
                    b"False" => Value::Bool(false),
                    b"None" => Value::None,
                    _ => {
                        let end = (word + 20).min(self.s.len());
                        return Err(format!(
                            "unexpected '{}' at byte {word}",
                            self.s[word..end].escape_ascii()
                        ));
                    }
                }
            }
        };
        let raw = String::from_utf8_lossy(&self.s[start..self.pos]).into_owned();
        Ok((value, raw))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_headers_numpy_writes() {
        let h = parse_header(b"{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }    \n")
            .unwrap();
        assert_eq!(
            h,
            Header {
                descr: "<f4".into(),
                fortran_order: false,
                shape: vec![3, 4]
            }
        );
        let h =
            parse_header(b"{\"shape\":(7L,),\"fortran_order\":True,\"descr\":\"<f8\"}").unwrap();
        assert_eq!(
            h,
            Header {
                descr: "<f8".into(),
                fortran_order: true,
                shape: vec![7]
            }
        );
        let h = parse_header(b"{'descr': '<f4', 'fortran_order': False, 'shape': ()}").unwrap();
        assert!(h.shape.is_empty());
    }

    #[test]
    fn structured_descr_is_kept_as_text() {
        let h = parse_header(
            b"{'descr': [('x', '<f4'), ('y', '<i4')], 'fortran_order': False, 'shape': (2,)}",
        )
        .unwrap();
        assert_eq!(h.descr, "[('x', '<f4'), ('y', '<i4')]");
    }

    #[test]
    fn bad_headers_are_errors_not_panics() {
        for bad in [
            &b""[..],
            b"{",
            b"{'descr': '<f4'",
            b"{'descr': '<f4', 'shape': (3, 4)}",
            b"{'descr': '<f4', 'fortran_order': 0, 'shape': (3, 4)}",
            b"{'descr': '<f4', 'fortran_order': False, 'shape': (3, 'a')}",
            b"{'descr': '<f4, 'fortran_order': False}",
            b"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,)}",
            b"{'descr': '<f4', 'fortran_order': Fals, 'shape': (1,)}",
            b"{1: 2}",
            b"{'a': ((((((((((((((((((((1))))))))))))))))))))}",
        ] {
            assert!(parse_header(bad).is_err(), "{}", bad.escape_ascii());
        }
    }

    #[test]
    fn shapes_print_like_python() {
        assert_eq!(format_shape(&[5]), "(5,)");
        assert_eq!(format_shape(&[3, 4]), "(3, 4)");
        assert_eq!(format_shape(&[]), "()");
    }
}
