//! The append-only log beside a live index's base file (`NAME.log`): its header, its
//! records, scanning them back (torn tails ignored, damage named) and appending.
//! The byte layout is specified in `docs/format.md` ("Live indexes").

use std::cell::Cell;
use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::path::Path;

use panns_core::{BuildParams, Metric, SplitRule};

use crate::error::{Error, Result};
use crate::format::checksum::Hasher;

/// First 8 bytes of a log file.
pub(crate) const LOG_MAGIC: [u8; 8] = *b"PANNSLOG";
/// The log format version written and read.
pub(crate) const LOG_VERSION: u32 = 1;
/// Bytes of the log header; records start right after it.
pub(crate) const LOG_HEADER_SIZE: usize = 128;
/// Bytes of a record's header (`len: u32, kind: u32, checksum: u64`).
pub(crate) const RECORD_HEADER: usize = 16;

const KIND_ADD: u32 = 1;
const KIND_REMOVE: u32 = 2;
const KIND_COMMIT: u32 = 3;

thread_local! {
    /// Test hook (see [`super::testing::fail_log_writes_after`]): bytes log appends on
    /// this thread may still write before failing.
    pub(crate) static LOG_FAIL_AFTER: Cell<Option<u64>> = const { Cell::new(None) };
}

/// What a log applies to, and how its base is (re)built.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct LogHeader {
    pub(crate) dim: usize,
    pub(crate) metric: Metric,
    /// The base generation the records apply to (0: there is no base file yet).
    pub(crate) base_generation: u64,
    /// The stored checksum (header field) of that base file, 0 without one.
    pub(crate) base_checksum: u64,
    /// A random number telling this log apart from any other of the same generation.
    pub(crate) log_id: u64,
    /// Build parameters of the next base (compaction).
    pub(crate) params: BuildParams,
    /// Graph degree of the next base (0: no graph).
    pub(crate) graph_degree: usize,
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn xxh64(parts: &[&[u8]]) -> u64 {
    let mut h = Hasher::default();
    for p in parts {
        h.update(p);
    }
    h.finish()
}

impl LogHeader {
    /// The 128 header bytes.
    pub(crate) fn encode(&self) -> [u8; LOG_HEADER_SIZE] {
        let clamp = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
        let mut b = [0u8; LOG_HEADER_SIZE];
        b[..8].copy_from_slice(&LOG_MAGIC);
        put_u32(&mut b, 8, LOG_VERSION);
        put_u32(&mut b, 12, LOG_HEADER_SIZE as u32);
        put_u32(&mut b, 16, clamp(self.dim));
        put_u32(&mut b, 20, self.metric.code());
        put_u64(&mut b, 24, self.base_generation);
        put_u64(&mut b, 32, self.base_checksum);
        put_u64(&mut b, 40, self.log_id);
        put_u32(&mut b, 48, clamp(self.params.n_trees));
        put_u32(&mut b, 52, clamp(self.params.leaf_size));
        put_u32(&mut b, 56, clamp(self.params.pool_size));
        put_u32(&mut b, 60, clamp(self.params.candidates));
        put_u32(
            &mut b,
            64,
            match self.params.split {
                SplitRule::Mean => 0,
                SplitRule::Median => 1,
            },
        );
        put_u32(&mut b, 68, clamp(self.graph_degree));
        put_u64(&mut b, 72, self.params.seed);
        put_u32(&mut b, 80, self.params.dtype.code());
        let sum = xxh64(&[&b[..120]]);
        put_u64(&mut b, 120, sum);
        b
    }

    /// Reads and checks a log header.
    pub(crate) fn decode(b: &[u8], path: &Path) -> Result<LogHeader> {
        let bad = |d: String| crate::format::corrupt(path, format!("log header: {d}"));
        if b.len() < LOG_HEADER_SIZE {
            if b.len() >= 8 && b[..8] != LOG_MAGIC {
                return Err(bad("not a panns log file (wrong magic)".into()));
            }
            return Err(bad(format!(
                "the file is {} bytes, shorter than the {LOG_HEADER_SIZE}-byte header",
                b.len()
            )));
        }
        if b[..8] != LOG_MAGIC {
            return Err(bad("not a panns log file (wrong magic)".into()));
        }
        if u32_at(b, 8) != LOG_VERSION {
            return Err(bad(format!(
                "log version {} is not supported (this library reads {LOG_VERSION})",
                u32_at(b, 8)
            )));
        }
        let (stored, computed) = (u64_at(b, 120), xxh64(&[&b[..120]]));
        if stored != computed {
            return Err(bad(format!(
                "checksum mismatch: stored {stored:#018x}, computed {computed:#018x}"
            )));
        }
        if u32_at(b, 12) as usize != LOG_HEADER_SIZE {
            return Err(bad(format!("header size {} is not 128", u32_at(b, 12))));
        }
        let dim = u32_at(b, 16) as usize;
        if dim == 0 || dim > panns_core::MAX_DIM {
            return Err(bad(format!("dimension {dim} out of range")));
        }
        let metric = Metric::from_code(u32_at(b, 20))
            .ok_or_else(|| bad(format!("unknown metric code {}", u32_at(b, 20))))?;
        let params = BuildParams {
            n_trees: u32_at(b, 48) as usize,
            leaf_size: u32_at(b, 52) as usize,
            pool_size: u32_at(b, 56) as usize,
            candidates: u32_at(b, 60) as usize,
            split: if u32_at(b, 64) == 1 {
                SplitRule::Median
            } else {
                SplitRule::Mean
            },
            seed: u64_at(b, 72),
            threads: 0,
            dtype: panns_core::Dtype::from_code(u32_at(b, 80))
                .ok_or_else(|| bad(format!("unknown dtype code {}", u32_at(b, 80))))?,
        };
        Ok(LogHeader {
            dim,
            metric,
            base_generation: u64_at(b, 24),
            base_checksum: u64_at(b, 32),
            log_id: u64_at(b, 40),
            params,
            graph_degree: u32_at(b, 68) as usize,
        })
    }
}

/// One committed change.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Op {
    /// Add or replace `label` with the vector (as the caller gave it).
    Add(u64, Vec<f32>),
    /// Remove `label` (a tombstone).
    Remove(u64),
}

fn record(out: &mut Vec<u8>, kind: u32, payload: &[&[u8]]) {
    let len: usize = payload.iter().map(|p| p.len()).sum();
    let mut head = [0u8; 8];
    put_u32(&mut head, 0, len as u32);
    put_u32(&mut head, 4, kind);
    let mut parts: Vec<&[u8]> = vec![&head];
    parts.extend_from_slice(payload);
    let sum = xxh64(&parts);
    out.extend_from_slice(&head);
    out.extend_from_slice(&sum.to_le_bytes());
    for p in payload {
        out.extend_from_slice(p);
    }
}

/// Appends an add record to `out`.
pub(crate) fn encode_add(out: &mut Vec<u8>, label: u64, row: &[f32]) {
    let mut values = Vec::with_capacity(row.len() * 4);
    for x in row {
        values.extend_from_slice(&x.to_le_bytes());
    }
    record(out, KIND_ADD, &[&label.to_le_bytes(), &values]);
}

/// Appends a remove record to `out`.
pub(crate) fn encode_remove(out: &mut Vec<u8>, label: u64) {
    record(out, KIND_REMOVE, &[&label.to_le_bytes()]);
}

/// Appends the commit record number `seq` to `out`.
pub(crate) fn encode_commit(out: &mut Vec<u8>, seq: u64) {
    record(out, KIND_COMMIT, &[&seq.to_le_bytes()]);
}

/// What [`scan`] found.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    /// The changes of every complete commit, in order.
    pub(crate) ops: Vec<Op>,
    /// Absolute byte offset just after the last commit record.
    pub(crate) end: u64,
    /// Records up to `end` (the next record's number).
    pub(crate) records: u64,
    /// Number of the last commit (0: none yet in this log).
    pub(crate) commits: u64,
    /// Bytes after `end` that were ignored (an uncommitted or torn tail).
    pub(crate) ignored: u64,
}

/// Scans log records in `bytes`, which start at absolute offset `start` with record
/// number `first_record`, after `last_commit` commits. Returns the operations of every
/// complete commit. A record cut short by the end of the file, a damaged record
/// followed only by zero bytes, and records after the last commit record are a torn or
/// uncommitted tail: ignored. Any other damaged record is a [`Error::CorruptLog`].
pub(crate) fn scan(
    bytes: &[u8],
    start: u64,
    first_record: u64,
    last_commit: u64,
    dim: usize,
    path: &Path,
) -> Result<Scan> {
    let mut out = Scan {
        end: start,
        records: first_record,
        commits: last_commit,
        ..Scan::default()
    };
    let mut pending: Vec<Op> = Vec::new();
    let mut pos = 0usize;
    let mut record_no = first_record;
    let add_len = 8 + 4 * dim;
    while pos < bytes.len() {
        let rest = &bytes[pos..];
        let offset = start + pos as u64;
        let corrupt = |detail: String| Error::CorruptLog {
            path: path.to_path_buf(),
            record: record_no,
            offset,
            detail,
        };
        // Torn: the record header or payload runs past the end of the file.
        if rest.len() < RECORD_HEADER {
            break;
        }
        let (len, kind, stored) = (u32_at(rest, 0) as usize, u32_at(rest, 4), u64_at(rest, 8));
        let want = match kind {
            KIND_ADD => Some(add_len),
            KIND_REMOVE | KIND_COMMIT => Some(8),
            _ => None,
        };
        let zeros = |b: &[u8]| b.iter().all(|&x| x == 0);
        // A damaged record is a torn tail when nothing but zero bytes follows it (space
        // the file system allocated but the crashed writer never filled).
        let (problem, torn) = match want {
            None => (Some(format!("unknown record kind {kind}")), zeros(rest)),
            Some(w) if w != len => (
                Some(format!(
                    "record kind {kind} has a {len}-byte payload, expected {w}"
                )),
                zeros(rest),
            ),
            Some(_) if rest.len() < RECORD_HEADER + len => break, // cut short: torn
            Some(_) => {
                let payload = &rest[RECORD_HEADER..RECORD_HEADER + len];
                let computed = xxh64(&[&rest[..8], payload]);
                let p = (computed != stored).then(|| {
                    format!("checksum mismatch: stored {stored:#018x}, computed {computed:#018x}")
                });
                (p, zeros(&rest[RECORD_HEADER + len..]))
            }
        };
        if let Some(p) = problem {
            if torn {
                break;
            }
            return Err(corrupt(p));
        }
        let payload = &rest[RECORD_HEADER..RECORD_HEADER + len];
        let label = u64_at(payload, 0);
        match kind {
            KIND_ADD => {
                let row: Vec<f32> = payload[8..]
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
                    .collect();
                if let Some(i) = row
                    .iter()
                    .position(|x| !x.is_finite() || x.abs() > panns_core::MAX_COMPONENT)
                {
                    return Err(corrupt(format!(
                        "label {label}: component {i} is {} (not a finite value in range)",
                        row[i]
                    )));
                }
                pending.push(Op::Add(label, row));
            }
            KIND_REMOVE => pending.push(Op::Remove(label)),
            _ => {
                // A commit record's payload is its number, one more than the last.
                if label != out.commits + 1 {
                    return Err(corrupt(format!(
                        "commit number {label} follows commit {}",
                        out.commits
                    )));
                }
                out.commits = label;
                out.ops.append(&mut pending);
                out.end = offset + (RECORD_HEADER + len) as u64;
                out.records = record_no + 1;
            }
        }
        pos += RECORD_HEADER + len;
        record_no += 1;
    }
    out.ignored = start + bytes.len() as u64 - out.end;
    Ok(out)
}

/// Writes `bytes` at `offset` of the log `file`, honouring the test hook (which
/// writes only the allowed prefix, then fails like a full disk).
pub(crate) fn write_at(file: &mut File, offset: u64, bytes: &[u8]) -> io::Result<()> {
    file.seek(SeekFrom::Start(offset))?;
    let allowed = LOG_FAIL_AFTER.with(Cell::get);
    match allowed {
        Some(left) if (bytes.len() as u64) > left => {
            file.write_all(&bytes[..left as usize])?;
            LOG_FAIL_AFTER.with(|c| c.set(Some(0)));
            Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "simulated full disk (test hook)",
            ))
        }
        _ => {
            file.write_all(bytes)?;
            if let Some(left) = allowed {
                LOG_FAIL_AFTER.with(|c| c.set(Some(left - bytes.len() as u64)));
            }
            Ok(())
        }
    }
}

/// A fresh random log id.
pub(crate) fn new_log_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let c = COUNTER.fetch_add(1, Ordering::Relaxed);
    panns_core::rng::mix(t ^ (u64::from(std::process::id()) << 32) ^ c.rotate_left(17))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> LogHeader {
        LogHeader {
            dim: 3,
            metric: Metric::Angular,
            base_generation: 7,
            base_checksum: 0xabc,
            log_id: 99,
            params: BuildParams {
                threads: 0,
                ..BuildParams::default()
            },
            graph_degree: 12,
        }
    }

    #[test]
    fn header_round_trips_and_detects_damage() {
        let h = header();
        let b = h.encode();
        assert_eq!(LogHeader::decode(&b, Path::new("x.log")).unwrap(), h);
        let mut d = b;
        d[30] ^= 1;
        let e = LogHeader::decode(&d, Path::new("x.log")).unwrap_err();
        assert!(e.to_string().contains("checksum mismatch"), "{e}");
        let e = LogHeader::decode(&b[..50], Path::new("x.log")).unwrap_err();
        assert!(e.to_string().contains("shorter than"), "{e}");
    }

    #[test]
    fn scan_keeps_committed_records_only() {
        let mut b = Vec::new();
        encode_add(&mut b, 5, &[1.0, 2.0, 3.0]);
        encode_remove(&mut b, 6);
        encode_commit(&mut b, 1);
        let first = b.len() as u64;
        encode_add(&mut b, 8, &[1.0, 2.0, 3.0]); // never committed
        let s = scan(&b, 128, 0, 0, 3, Path::new("x.log")).unwrap();
        assert_eq!(s.ops, vec![Op::Add(5, vec![1.0, 2.0, 3.0]), Op::Remove(6)]);
        assert_eq!((s.end, s.records, s.commits), (128 + first, 3, 1));
        assert_eq!(s.ignored, b.len() as u64 - first);
        // Every cut of the bytes is a torn tail: never an error.
        for cut in 0..b.len() {
            let s = scan(&b[..cut], 128, 0, 0, 3, Path::new("x.log")).unwrap();
            assert_eq!(s.commits, u64::from(cut as u64 >= first));
        }
    }

    #[test]
    fn damage_in_the_middle_is_named() {
        let mut b = Vec::new();
        encode_remove(&mut b, 1);
        encode_commit(&mut b, 1);
        let at = b.len();
        encode_remove(&mut b, 2);
        encode_commit(&mut b, 2);
        b[at + RECORD_HEADER] ^= 0x40;
        let e = scan(&b, 128, 0, 0, 3, Path::new("x.log")).unwrap_err();
        let t = e.to_string();
        assert!(
            t.contains(&format!(
                "record 2 (counting from 0) at byte offset {}",
                128 + at
            )),
            "{t}"
        );
        // The same damage with only zeros after it is a torn tail.
        let mut z = b[..at + RECORD_HEADER + 8].to_vec();
        z.extend_from_slice(&[0; 100]);
        let s = scan(&z, 128, 0, 0, 3, Path::new("x.log")).unwrap();
        assert_eq!(s.commits, 1);
    }
}
