//! `include/panns.h` must be exactly what cbindgen generates from this crate.
//! `PANNS_BLESS=1 cargo test -p panns-ffi --test header` rewrites it.

use std::path::Path;

/// The header as cbindgen generates it now.
fn generate() -> Vec<u8> {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("read panns-ffi/cbindgen.toml");
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(crate_dir.join("src/lib.rs"))
        .generate()
        .expect("cbindgen failed to generate the header");
    let mut generated = Vec::new();
    bindings.write(&mut generated);
    generated
}

#[test]
fn header_is_up_to_date() {
    let generated = generate();
    let header = Path::new(env!("CARGO_MANIFEST_DIR")).join("../include/panns.h");
    if std::env::var_os("PANNS_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&header, &generated).expect("write include/panns.h");
        eprintln!("wrote {}", header.display());
        return;
    }
    let committed = std::fs::read(&header).unwrap_or_default();
    if committed != generated {
        let committed = String::from_utf8_lossy(&committed);
        let generated = String::from_utf8_lossy(&generated);
        let first_diff = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(generated.lines().count()));
        panic!(
            "include/panns.h is stale (first difference at line {}: committed {:?}, generated {:?}).\n\
             Regenerate it with: PANNS_BLESS=1 cargo test -p panns-ffi --test header",
            first_diff + 1,
            committed.lines().nth(first_diff),
            generated.lines().nth(first_diff),
        );
    }
}

#[test]
fn header_declares_the_contract() {
    let header =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../include/panns.h"))
            .expect("read include/panns.h");
    for name in [
        "#ifndef PANNS_H",
        "#define PANNS_OPEN_VERIFY 1",
        "PANNS_OK = 0",
        "PANNS_PANIC = 12",
        "PANNS_EUCLIDEAN = 0",
        "PANNS_DOT = 2",
        "typedef struct PannsBuilder PannsBuilder;",
        "typedef struct PannsIndex PannsIndex;",
        "typedef struct PannsBuildOptions",
        "const char *panns_version(void);",
        "const char *panns_last_error_message(void);",
        "struct PannsBuildOptions panns_build_options_default(void);",
        "enum PannsStatus panns_builder_new(uint32_t dim, uint32_t metric, struct PannsBuilder **out);",
        "size_t panns_builder_len(const struct PannsBuilder *b);",
        "void panns_builder_free(struct PannsBuilder *b);",
        "enum PannsStatus panns_index_open(const char *path, uint32_t flags, struct PannsIndex **out);",
        "enum PannsStatus panns_index_save(const struct PannsIndex *idx, const char *path);",
        "uint32_t panns_index_metric(const struct PannsIndex *idx);",
        "size_t panns_index_n_trees(const struct PannsIndex *idx);",
        "void panns_index_free(struct PannsIndex *idx);",
        "extern \"C\"",
    ] {
        assert!(header.contains(name), "include/panns.h lacks {name:?}");
    }
}

#[test]
fn header_states_the_current_defaults() {
    let header = String::from_utf8(generate()).unwrap();
    let p = panns_core::BuildParams::default();
    let text = format!(
        "{} trees, leaf size {}, pool {}, {}\n// candidates",
        p.n_trees, p.leaf_size, p.pool_size, p.candidates
    );
    assert!(
        header.contains(&text),
        "the doc of panns_build_options_default no longer states the defaults ({text:?})"
    );
    for (field, v) in [("leaf_size", p.leaf_size), ("pool_size", p.pool_size)] {
        let line = header
            .lines()
            .take_while(|l| !l.contains(&format!("uint32_t {field};")))
            .last()
            .unwrap();
        assert!(line.contains(&format!("(default {v})")), "{field}: {line}");
    }
}
