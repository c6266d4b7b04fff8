//! Delimited text: one vector per line, one number per cell.

use std::io::BufRead;
use std::path::Path;

use super::Dataset;
use crate::error::{Error, Result};

/// Whether the first non-blank line of a delimited text file is a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HeaderMode {
    /// Skip the first non-blank line if and only if none of its cells is number-like (a
    /// number, or text starting with a digit such as `2.O`).
    #[default]
    Auto,
    /// The first non-blank line is a header: always skip it.
    Yes,
    /// There is no header: the first non-blank line is data.
    No,
}

/// Options of [`read_csv`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsvOptions {
    /// The byte between cells (default `b','`). A space means "any run of spaces and tabs".
    pub separator: u8,
    /// Whether there is a header line (default [`HeaderMode::Auto`]).
    pub header: HeaderMode,
}

impl CsvOptions {
    /// Checks the separator: one ASCII byte other than a digit, a double quote or a line
    /// end (a space means any run of blanks). [`read_csv`] calls it first.
    pub fn check(&self) -> Result<()> {
        let s = self.separator;
        if s.is_ascii() && !s.is_ascii_digit() && !matches!(s, b'"' | b'\n' | b'\r' | 0) {
            return Ok(());
        }
        Err(Error::invalid(format!(
            "separator byte {s:#04x} is not allowed: give one ASCII character other than a \
             digit, a double quote, a line end or NUL"
        )))
    }
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            separator: b',',
            header: HeaderMode::Auto,
        }
    }
}

/// Reads delimited text: one vector per line, cells separated by `options.separator`.
///
/// Whitespace around cells and a pair of double quotes around a cell are removed; blank lines
/// are skipped anywhere; `\n`, `\r\n` and `\r` line ends and a UTF-8 byte-order mark are
/// accepted. With [`HeaderMode::Auto`], the first non-blank line is a header only if none of
/// its cells is number-like (parses, or starts with a digit); a first line mixing numbers and
/// text is data, so a malformed cell in it is an error naming its line and column. Every row
/// must have as many cells as the first data row. Cells must be finite `f32` numbers (NaN,
/// infinities and values out of `f32` range are rejected). Errors name the file and the 1-based
/// line and column.
///
/// The file is streamed line by line; only the parsed values are kept.
pub fn read_csv(path: impl AsRef<Path>, options: &CsvOptions) -> Result<Dataset> {
    let path = path.as_ref();
    if let Err(Error::InvalidArgument { message }) = options.check() {
        return Err(Error::invalid(format!("{}: {message}", path.display())));
    }
    let (mut reader, _) = super::open_stream(path)?;
    let mut state = State {
        path,
        options,
        data: Vec::new(),
        dim: 0,
        first_data_line: 0,
        header_seen: false,
        header_line: 0,
    };
    let mut line_no = 0usize;
    let mut bytes: Vec<u8> = Vec::new();

    loop {
        bytes.clear();
        let read = reader
            .read_until(b'\n', &mut bytes)
            .map_err(|e| Error::io(path, e))?;
        if read == 0 {
            break;
        }
        let text = std::str::from_utf8(&bytes).map_err(|e| {
            let before = &bytes[..e.valid_up_to()];
            // Lines ended by a lone `\r` (old Mac files) inside this chunk count too.
            let line = line_no + 1 + before.iter().filter(|&&b| b == b'\r').count();
            let start = before
                .iter()
                .rposition(|&b| b == b'\r')
                .map_or(0, |i| i + 1);
            let column = 1 + String::from_utf8_lossy(&before[start..])
                .split(char::from(options.separator))
                .count()
                .saturating_sub(1);
            Error::Parse {
                path: path.to_path_buf(),
                line,
                column,
                message: format!(
                    "invalid UTF-8 at byte {} of the line",
                    e.valid_up_to() - start + 1
                ),
            }
        })?;
        let text = text.strip_suffix('\n').unwrap_or(text);
        let text = text.strip_suffix('\r').unwrap_or(text);
        // A `\r` left inside ends a line too: files with CR-only line ends are one
        // "line" to `read_until(b'\n')`.
        for part in text.split('\r') {
            line_no += 1;
            let part = if line_no == 1 {
                part.trim_start_matches('\u{feff}')
            } else {
                part
            };
            state.line(line_no, part)?;
        }
    }

    let State {
        mut data,
        dim,
        header_line,
        ..
    } = state;
    if dim == 0 {
        let why = if header_line > 0 {
            format!("no data rows (only the header on line {header_line})")
        } else {
            "no data rows (the file is empty or blank)".to_string()
        };
        return Err(Error::malformed(path, why));
    }
    data.shrink_to_fit();
    let n = data.len() / dim;
    Ok(Dataset { data, n, dim })
}

/// What [`read_csv`] has seen so far.
struct State<'a> {
    path: &'a Path,
    options: &'a CsvOptions,
    data: Vec<f32>,
    dim: usize,
    first_data_line: usize,
    header_seen: bool,
    header_line: usize,
}

impl State<'_> {
    /// Handles line `line_no` (without its line end).
    fn line(&mut self, line_no: usize, text: &str) -> Result<()> {
        let (path, options) = (self.path, self.options);
        let text = text.trim();
        if text.is_empty() {
            return Ok(());
        }
        let mut cells = Vec::with_capacity(self.dim);
        split_cells(text, options.separator, &mut cells);

        let mut mixed_first_line = false; // Auto, and the first line was read as data
        if !self.header_seen && self.dim == 0 {
            self.header_seen = true;
            let is_header = match options.header {
                HeaderMode::Yes => true,
                HeaderMode::No => false,
                // Only a line without any number-like cell is a header: `1,,3` or
                // `1,2.O,3` is a broken data row, not a header to drop silently.
                HeaderMode::Auto => {
                    let header = !cells.iter().any(|c| number_like(c));
                    mixed_first_line = !header;
                    header
                }
            };
            if is_header {
                self.header_line = line_no;
                return Ok(());
            }
        }

        if self.dim == 0 {
            self.dim = cells.len();
            self.first_data_line = line_no;
        } else if cells.len() != self.dim {
            return Err(Error::RaggedRow {
                path: path.to_path_buf(),
                line: line_no,
                columns: cells.len(),
                expected: self.dim,
                first_line: self.first_data_line,
            });
        }
        for (j, cell) in cells.iter().enumerate() {
            let x =
                parse_cell(path, line_no, j + 1, cell, options.separator).map_err(|e| match e {
                    Error::Parse {
                        path,
                        line,
                        column,
                        message,
                    } if mixed_first_line => Error::Parse {
                        path,
                        line,
                        column,
                        message: format!(
                            "{message} (the first line has number-like cells, so it is read as \
                             data; if it is a header, say so: header yes)"
                        ),
                    },
                    other => other,
                })?;
            self.data.push(x);
        }
        Ok(())
    }
}

/// Whether a cell is, or looks like an attempt at, a number: it parses, or it starts
/// with a digit (after an optional sign or decimal point), like `2.O` or `1e`.
fn number_like(cell: &str) -> bool {
    let text = unquote(cell);
    if text.parse::<f32>().is_ok() {
        return true;
    }
    let rest = text.trim_start_matches(['+', '-']);
    let rest = rest.strip_prefix('.').unwrap_or(rest);
    rest.starts_with(|c: char| c.is_ascii_digit())
}

/// Splits a trimmed, non-empty line into cells (each trimmed).
fn split_cells<'a>(text: &'a str, separator: u8, cells: &mut Vec<&'a str>) {
    if separator == b' ' {
        cells.extend(text.split_ascii_whitespace());
    } else {
        cells.extend(text.split(char::from(separator)).map(str::trim));
    }
}

/// Removes one pair of surrounding double quotes (and whitespace inside them).
fn unquote(cell: &str) -> &str {
    match cell.strip_prefix('"').and_then(|c| c.strip_suffix('"')) {
        Some(inner) => inner.trim(),
        None => cell,
    }
}

/// Parses one cell as a finite `f32`.
fn parse_cell(path: &Path, line: usize, column: usize, cell: &str, separator: u8) -> Result<f32> {
    let text = unquote(cell);
    let error = |message: String| Error::Parse {
        path: path.to_path_buf(),
        line,
        column,
        message,
    };
    match text.parse::<f32>() {
        Ok(x) if x.is_finite() => Ok(x),
        Ok(_) => {
            let what = if text.to_ascii_lowercase().contains("nan") {
                "NaN"
            } else if text.to_ascii_lowercase().contains("inf") {
                "infinite"
            } else {
                "out of f32 range"
            };
            Err(error(format!(
                "cell '{cell}' is {what}; only finite values are accepted"
            )))
        }
        Err(_) if text.is_empty() => Err(error("empty cell".to_string())),
        Err(_) => {
            let hint = [b',', b';', b'\t', b' ']
                .iter()
                .find(|&&s| s != separator && text.contains(char::from(s)))
                .map(|&s| {
                    let name = match s {
                        b'\t' => "a tab".to_string(),
                        b' ' => "a space".to_string(),
                        other => format!("'{}'", char::from(other)),
                    };
                    format!(" (is the separator {name}?)")
                })
                .unwrap_or_default();
            Err(error(format!("cell '{cell}' is not a number{hint}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitting_trims_and_handles_space_runs() {
        let mut cells = Vec::new();
        split_cells("1 ,  2,3", b',', &mut cells);
        assert_eq!(cells, ["1", "2", "3"]);
        cells.clear();
        split_cells("1  \t 2 3", b' ', &mut cells);
        assert_eq!(cells, ["1", "2", "3"]);
        cells.clear();
        split_cells("1,,3", b',', &mut cells);
        assert_eq!(cells, ["1", "", "3"]);
    }

    #[test]
    fn unquote_removes_one_pair() {
        assert_eq!(unquote("\" 1.5 \""), "1.5");
        assert_eq!(unquote("\"x"), "\"x");
        assert_eq!(unquote("2"), "2");
    }

    #[test]
    fn cell_errors_say_what_is_wrong() {
        let p = Path::new("f.csv");
        assert_eq!(parse_cell(p, 1, 1, "-2.5e1", b',').ok(), Some(-25.0));
        let e = parse_cell(p, 3, 2, "nan", b',').unwrap_err().to_string();
        assert!(
            e.contains("f.csv: line 3, column 2") && e.contains("'nan' is NaN"),
            "{e}"
        );
        let e = parse_cell(p, 1, 1, "-inf", b',').unwrap_err().to_string();
        assert!(e.contains("infinite"), "{e}");
        let e = parse_cell(p, 1, 1, "1e39", b',').unwrap_err().to_string();
        assert!(e.contains("out of f32 range"), "{e}");
        let e = parse_cell(p, 1, 1, "1;2", b',').unwrap_err().to_string();
        assert!(e.contains("not a number (is the separator ';'?)"), "{e}");
        let e = parse_cell(p, 1, 4, "", b',').unwrap_err().to_string();
        assert!(e.contains("column 4: empty cell"), "{e}");
    }
}
