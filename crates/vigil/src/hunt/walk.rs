//! The files `vigil hunt` reads: each path given, and every file under each directory given,
//! recursively, the way Chainsaw and Hayabusa users point a hunt at a folder of logs.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// The files to hunt through, in a stable order: the paths as given, a directory replaced by
/// the files under it sorted by path. Under a directory, hidden entries (a name starting with
/// `.`) and symbolic links to directories are skipped (so a link cannot make the walk loop),
/// and when `extensions` is not empty only files with one of them (case-insensitively, without
/// the dot: `evtx`) are taken. A path given by name is always taken.
pub fn expand(paths: &[PathBuf], extensions: &[String]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for path in paths {
        let meta =
            std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
        if meta.is_dir() {
            let mut found = Vec::new();
            walk(path, extensions, &mut found)?;
            found.sort();
            out.extend(found);
        } else {
            out.push(path.clone());
        }
    }
    if out.is_empty() {
        bail!("no files to hunt through under the paths given");
    }
    Ok(out)
}

fn walk(root: &Path, extensions: &[String], out: &mut Vec<PathBuf>) -> Result<()> {
    // An explicit stack: depth is bounded by memory, not by the call stack.
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries =
            std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let path = entry.path();
            let kind = entry
                .file_type()
                .with_context(|| format!("reading {}", path.display()))?;
            if kind.is_dir() {
                dirs.push(path);
            } else if (kind.is_file() || (kind.is_symlink() && path.is_file()))
                && wanted(&path, extensions)
            {
                out.push(path);
            }
        }
    }
    Ok(())
}

fn wanted(path: &Path, extensions: &[String]) -> bool {
    extensions.is_empty()
        || path.extension().is_some_and(|x| {
            let x = x.to_string_lossy();
            extensions
                .iter()
                .any(|e| e.trim_start_matches('.').eq_ignore_ascii_case(&x))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_expand_recursively_sorted_and_filtered() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("b/deeper")).unwrap();
        std::fs::create_dir_all(root.join(".hidden")).unwrap();
        for f in [
            "z.evtx",
            "a.log",
            "b/deeper/c.EVTX",
            "b/d.txt",
            ".hidden/e.evtx",
        ] {
            std::fs::write(root.join(f), b"x").unwrap();
        }
        let all = expand(&[root.to_path_buf()], &[]).unwrap();
        let names: Vec<String> = all
            .iter()
            .map(|p| p.strip_prefix(root).unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["a.log", "b/d.txt", "b/deeper/c.EVTX", "z.evtx"]);
        let evtx = expand(&[root.to_path_buf()], &["evtx".into()]).unwrap();
        assert_eq!(evtx, [root.join("b/deeper/c.EVTX"), root.join("z.evtx")]);
        // A file given by name is taken whatever its extension; order is kept.
        let given = expand(
            &[root.join("b/d.txt"), root.join("a.log")],
            &["evtx".into()],
        )
        .unwrap();
        assert_eq!(given, [root.join("b/d.txt"), root.join("a.log")]);
        // Nothing to read is an error, and so is a path that does not exist.
        assert!(expand(&[root.join("b")], &["json".into()]).is_err());
        assert!(expand(&[root.join("missing")], &[]).is_err());
    }
}
