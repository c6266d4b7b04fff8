//! Reading the peers' results written by `shared/bench/run_peers.py` (one CSV row per
//! sweep point; columns found by name in the header) and reducing each library to its
//! Pareto frontier for the plot.

use crate::error::{CliError, Context, Result};
use crate::plot::{Series, pareto_frontier};
use std::path::Path;

/// One measured point of a peer library.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerPoint {
    /// Library name (`library` or `lib` column).
    pub library: String,
    /// Build parameters as written by the script (`build_params`), or empty.
    pub build: String,
    /// ann-benchmarks recall@10 (`recall10`).
    pub recall: f64,
    /// Single-thread queries per second (`qps_single`).
    pub qps: f64,
}

/// Splits CSV text into records of fields (RFC 4180: quoted fields may hold commas,
/// doubled quotes and line breaks).
pub fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let (mut rows, mut row, mut field) = (Vec::new(), Vec::new(), String::new());
    let (mut quoted, mut chars) = (false, text.chars().peekable());
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows.retain(|r| !(r.len() == 1 && r[0].trim().is_empty()));
    rows
}

/// Reads one peers CSV file.
pub fn read(path: &Path) -> Result<Vec<PeerPoint>> {
    let text = std::fs::read_to_string(path).in_file(path)?;
    let rows = parse_csv(&text);
    let Some((header, body)) = rows.split_first() else {
        return Err(CliError::new("empty peers file").with_file(path));
    };
    let col = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| header.iter().position(|h| h.trim().eq_ignore_ascii_case(n)))
    };
    let missing = |what: &str| {
        CliError::new(format!("peers file has no {what} column in its header")).with_file(path)
    };
    let lib = col(&["library", "lib"]).ok_or_else(|| missing("library"))?;
    let rec = col(&["recall10", "recall"]).ok_or_else(|| missing("recall10"))?;
    let qps = col(&["qps_single", "qps"]).ok_or_else(|| missing("qps_single"))?;
    let build = col(&["build_params", "build", "params"]);
    let mut out = Vec::new();
    for (i, r) in body.iter().enumerate() {
        let get = |c: usize| r.get(c).map(|s| s.trim()).unwrap_or("");
        let num = |c: usize, what: &str| {
            get(c).parse::<f64>().map_err(|_| {
                CliError::new(format!(
                    "row {} of the peers file has {what} {:?}, not a number",
                    i + 2,
                    get(c)
                ))
                .with_file(path)
            })
        };
        out.push(PeerPoint {
            library: get(lib).to_string(),
            build: build.map(|b| get(b).to_string()).unwrap_or_default(),
            recall: num(rec, "recall10")?,
            qps: num(qps, "qps_single")?,
        });
    }
    Ok(out)
}

/// One dashed series per library: the Pareto frontier over all its build settings.
pub fn frontiers(points: &[PeerPoint], tag: Option<&str>) -> Vec<Series> {
    let mut libs: Vec<&str> = Vec::new();
    for p in points {
        if !libs.contains(&p.library.as_str()) {
            libs.push(&p.library);
        }
    }
    libs.into_iter()
        .map(|lib| {
            let pts: Vec<(f64, f64)> = points
                .iter()
                .filter(|p| p.library == lib)
                .map(|p| (p.recall, p.qps))
                .collect();
            Series {
                label: match tag {
                    Some(t) => format!("{lib} ({t})"),
                    None => lib.to_string(),
                },
                points: pareto_frontier(&pts),
                dashed: true,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_quoted_json_fields() {
        let rows = parse_csv("a,b,c\nannoy,\"{\"\"n_trees\"\": 10}\",0.5\n");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1], vec!["annoy", "{\"n_trees\": 10}", "0.5"]);
    }

    #[test]
    fn reads_the_run_peers_layout() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("peers.csv");
        std::fs::write(
            &p,
            "dataset,library,version,build_params,query_params,recall10,qps_single\n\
             d,annoy,1,\"{\"\"n_trees\"\": 10}\",\"{}\",0.6,1000\n\
             d,annoy,1,\"{\"\"n_trees\"\": 50}\",\"{}\",0.9,500\n\
             d,annoy,1,\"{\"\"n_trees\"\": 50}\",\"{}\",0.8,400\n\
             d,hnswlib,1,{},{},0.99,2000\n",
        )
        .unwrap();
        let pts = read(&p).unwrap();
        assert_eq!(pts.len(), 4);
        assert_eq!(pts[1].build, "{\"n_trees\": 50}");
        let f = frontiers(&pts, None);
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].points, vec![(0.6, 1000.0), (0.9, 500.0)]);
        assert!(read(&dir.path().join("none.csv")).is_err());
    }
}
