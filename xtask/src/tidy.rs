//! Cheap repository checks that run as ordinary tests, so `cargo xtask ci` (through nextest) is the whole
//! of CI: module docs present, no ignored tests, workspace lints and publishable metadata everywhere.

#[cfg(test)]
mod tests {
    use std::{
        fs,
        path::{Path, PathBuf},
    };

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .to_path_buf()
    }

    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n == "target") {
                    continue;
                }
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    fn all_sources() -> Vec<PathBuf> {
        let mut files = Vec::new();
        for dir in ["crates", "xtask", "tests"] {
            rust_files(&root().join(dir), &mut files);
        }
        assert!(!files.is_empty(), "tidy found no Rust sources");
        files
    }

    fn member_manifests() -> Vec<PathBuf> {
        let mut out = Vec::new();
        for dir in ["crates", "tests"] {
            let Ok(entries) = fs::read_dir(root().join(dir)) else {
                continue;
            };
            for entry in entries.flatten() {
                let manifest = entry.path().join("Cargo.toml");
                if manifest.exists() {
                    out.push(manifest);
                }
            }
        }
        assert!(!out.is_empty(), "tidy found no crates");
        out
    }

    #[test]
    fn every_source_file_starts_with_a_module_doc() {
        let mut missing = Vec::new();
        for file in all_sources() {
            let text = fs::read_to_string(&file).unwrap();
            let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            if !first.starts_with("//!") {
                missing.push(file.display().to_string());
            }
        }
        assert!(
            missing.is_empty(),
            "files without a leading `//!` doc: {missing:#?}"
        );
    }

    #[test]
    fn no_ignored_or_stubbed_code() {
        let ignore = ["#[", "ignore"].concat();
        let stubs = [["todo", "!("].concat(), ["unimplemented", "!("].concat()];
        let mut hits = Vec::new();
        for file in all_sources() {
            let text = fs::read_to_string(&file).unwrap();
            for (n, line) in text.lines().enumerate() {
                if line.contains(&ignore) || stubs.iter().any(|s| line.contains(s.as_str())) {
                    hits.push(format!("{}:{}", file.display(), n + 1));
                }
            }
        }
        assert!(hits.is_empty(), "ignored tests or stubs: {hits:#?}");
    }

    #[test]
    fn every_crate_uses_workspace_lints_and_metadata() {
        let mut problems = Vec::new();
        for manifest in member_manifests() {
            let text = fs::read_to_string(&manifest).unwrap();
            let name = manifest.display();
            if !text.contains("[lints]\nworkspace = true") {
                problems.push(format!("{name}: missing `[lints] workspace = true`"));
            }
            let publishable = !text.contains("publish = false");
            if publishable {
                for key in [
                    "description",
                    "license.workspace",
                    "repository.workspace",
                    "readme",
                ] {
                    if !text.contains(key) {
                        problems.push(format!("{name}: publishable crate without `{key}`"));
                    }
                }
                if !manifest.parent().unwrap().join("README.md").exists() {
                    problems.push(format!("{name}: publishable crate without README.md"));
                }
            }
        }
        assert!(problems.is_empty(), "{problems:#?}");
    }

    #[test]
    fn workspace_path_dependencies_carry_versions() {
        let text = fs::read_to_string(root().join("Cargo.toml")).unwrap();
        let unversioned: Vec<_> = text
            .lines()
            .filter(|l| l.contains("path =") && !l.contains("version ="))
            .collect();
        assert!(
            unversioned.is_empty(),
            "path dependencies without a version: {unversioned:#?}"
        );
        for manifest in member_manifests() {
            let text = fs::read_to_string(&manifest).unwrap();
            assert!(
                !text
                    .lines()
                    .any(|l| l.contains("{ path =") && !l.trim_start().starts_with('#')),
                "{}: take workspace crates through `workspace = true`",
                manifest.display()
            );
        }
    }
}
