//! Embeds Unit's vendored OpenAPI spec (`unit-openapi/`, every JSON file) and our overlays
//! (`unit-openapi-overlay/`) into the crate, so the Unit sandbox's request gate works wherever
//! the binary runs.
use std::path::{Path, PathBuf};

fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            json_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "json") {
            out.push(path);
        }
    }
}

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let mut code = String::new();
    for (name, dir) in [
        ("SPEC", "unit-openapi"),
        ("OVERLAY", "unit-openapi-overlay"),
    ] {
        let dir = root.join(dir);
        println!("cargo:rerun-if-changed={}", dir.display());
        let mut files = Vec::new();
        json_files(&dir, &mut files);
        code.push_str(&format!("pub static {name}: &[(&str, &str)] = &[\n"));
        for file in files {
            let relative = file.strip_prefix(&dir).expect("under dir");
            let relative = relative
                .to_str()
                .expect("UTF-8 file names")
                .replace('\\', "/");
            code.push_str(&format!(
                "    ({relative:?}, include_str!({:?})),\n",
                file.display().to_string()
            ));
        }
        code.push_str("];\n");
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it"));
    std::fs::write(out.join("unit_openapi_files.rs"), code).expect("OUT_DIR is writable");
}
