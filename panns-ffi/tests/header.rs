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
    to_c89(&String::from_utf8(generated).expect("cbindgen wrote UTF-8")).into_bytes()
}

/// cbindgen's C output, made valid C89: `//` comments after preprocessor lines become
/// `/* */`, and the trailing comma of an enumerator list (C99) is dropped.
fn to_c89(header: &str) -> String {
    let lines: Vec<&str> = header.lines().collect();
    let mut out = String::with_capacity(header.len());
    for (i, line) in lines.iter().enumerate() {
        let mut line = line.to_string();
        if let Some(at) = line.find("//")
            && (line.starts_with('#') || line.starts_with('}'))
        {
            let (code, comment) = line.split_at(at);
            line = format!("{code}/* {} */", comment[2..].trim());
        }
        let next = lines.get(i + 1).map_or("", |l| l.trim_start());
        if line.ends_with(',') && next.starts_with('}') {
            line.pop();
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
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
        "PannsStatus panns_builder_new(uint32_t dim, uint32_t metric, struct PannsBuilder **out);",
        "size_t panns_builder_len(const struct PannsBuilder *b);",
        "void panns_builder_free(struct PannsBuilder *b);",
        "PannsStatus panns_index_open(const char *path, uint32_t flags, struct PannsIndex **out);",
        "PannsStatus panns_index_save(const struct PannsIndex *idx, const char *path);",
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
        "{} trees, leaf size {}, pool {}, {}\n * candidates",
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
            .filter(|l| l.contains("(default"))
            .last()
            .unwrap();
        assert!(line.contains(&format!("(default {v})")), "{field}: {line}");
    }
}

/// Compiles the committed header with `cc` in strict C89 and C++11 modes, when the
/// compilers are installed (they are wherever `bindings/c/test.sh` runs).
#[test]
fn header_compiles_as_c89_and_cpp11() {
    let header = Path::new(env!("CARGO_MANIFEST_DIR")).join("../include/panns.h");
    for (compiler, args) in [
        (
            "cc",
            &[
                "-x",
                "c",
                "-std=c89",
                "-pedantic-errors",
                "-Wall",
                "-Wextra",
                "-Werror",
            ][..],
        ),
        (
            "c++",
            &[
                "-x",
                "c++",
                "-std=c++11",
                "-pedantic-errors",
                "-Wall",
                "-Wextra",
                "-Werror",
            ][..],
        ),
    ] {
        let status = std::process::Command::new(compiler)
            .args(args)
            .arg("-fsyntax-only")
            .arg(&header)
            .status();
        match status {
            Ok(s) => assert!(s.success(), "{compiler} {args:?} rejects include/panns.h"),
            Err(e) => eprintln!("{compiler} not runnable ({e}): header compile check skipped"),
        }
    }
}

/// Every fallible function has its `_e` twin (see scripts/gen-ffi-twins.py).
#[test]
fn every_fallible_function_has_an_error_twin() {
    let header = String::from_utf8(generate()).unwrap();
    let mut fallible = 0;
    for line in header.lines() {
        if let Some(rest) = line.strip_prefix("PannsStatus panns_") {
            let name = &rest[..rest.find('(').unwrap()];
            if name.ends_with("_e") {
                continue;
            }
            fallible += 1;
            assert!(
                header.contains(&format!("PannsStatus panns_{name}_e(")),
                "panns_{name} has no panns_{name}_e twin: run python3 scripts/gen-ffi-twins.py"
            );
        }
    }
    assert!(fallible >= 18, "only {fallible} fallible functions found");
}
