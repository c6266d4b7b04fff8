//! `panns info`: the header of an index file in plain words; `--verify` also checks
//! the checksum and the whole structure.

use crate::cli::InfoArgs;
use crate::cmd_build::human_bytes;
use crate::error::Result;
use crate::files;
use panns_io::{Header, SectionKind};

/// Runs `panns info`.
pub fn run(a: &InfoArgs) -> Result<()> {
    let path = a.index.as_path();
    let live = crate::cmd_live::info_lines(path)?;
    if let Some(lines) = &live
        && !path.exists()
    {
        // A live index without a base file yet (generation 0).
        println!("file             {} (no base file yet)", path.display());
        for l in lines {
            println!("{l}");
        }
        return Ok(());
    }
    // Opening maps the file and validates the header, the section bounds and the
    // whole tree structure; --verify also hashes every byte against the checksum.
    let header: Header = if a.verify {
        panns_io::verify_file(path).map_err(|e| files::io_error(e, path))?
    } else {
        panns_io::read_header(path, &panns_io::OpenOptions::default())
            .map_err(|e| files::io_error(e, path))?
    };
    let size = std::fs::metadata(path)
        .map_err(|e| crate::error::CliError::from(e).with_file(path))?
        .len();
    let h = &header;
    let metric = h
        .metric()
        .map(|m| m.name().to_string())
        .unwrap_or_else(|| format!("unknown ({})", h.metric_code()));
    let split = match h.split() {
        0 => "mean".to_string(),
        1 => "median".to_string(),
        s => format!("unknown ({s})"),
    };
    println!("file             {}", path.display());
    println!("format version   {}", h.version());
    println!("metric           {metric}");
    println!("dtype            {}", h.dtype());
    println!("dimension        {}", h.dim());
    println!("items            {}", h.n_items());
    let rows = if h.flags() & panns_io::format::FLAG_ROW_ORDER != 0 {
        "in the first tree's leaf order (row_ids / id_rows map them to item ids)"
    } else {
        "in item-id order"
    };
    println!("rows             {rows}");
    println!("trees            {}", h.n_trees());
    println!("pool size        {} projection vectors", h.pool_size());
    println!("leaf size        {}", h.leaf_size());
    println!(
        "split            {split}, {} candidates per node",
        h.candidates()
    );
    println!("seed             {}", h.seed());
    println!(
        "nodes            {} inner, {} leaves",
        h.n_nodes(),
        h.n_leaves()
    );
    if h.graph_degree() > 0 {
        println!("graph            {} neighbours per item", h.graph_degree());
    }
    println!("file size        {size} bytes ({})", human_bytes(size));
    println!("checksum         {:#018x}", h.checksum());
    println!("sections");
    for s in h.used_sections() {
        let name = SectionKind::from_code(s.kind())
            .map(|k| k.name().to_string())
            .unwrap_or_else(|| format!("unknown kind {}", s.kind()));
        println!(
            "  {name:<14} {:>14} bytes at offset {}",
            s.length(),
            s.offset()
        );
    }
    for l in live.iter().flatten() {
        println!("{l}");
    }
    if a.verify {
        println!("verify           ok: checksum matches, structure and vector values valid");
    }
    Ok(())
}
