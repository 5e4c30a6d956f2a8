//! The master API key: from `LOOP_API_KEY`, or generated once and kept in the data directory
//! (file mode 0600) so later starts reuse it.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use rand::RngCore;

pub const FILE_NAME: &str = "api-key";

pub enum Source {
    Environment,
    File(PathBuf),
    /// Generated on this start; the only time it is shown.
    Generated(PathBuf),
}

/// `loop_` followed by 64 hex characters (32 random bytes).
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("loop_{}", hex::encode(bytes))
}

pub fn load_or_create(from_env: Option<String>, data_dir: &Path) -> Result<(String, Source)> {
    if let Some(key) = from_env.filter(|k| !k.trim().is_empty()) {
        return Ok((key.trim().to_owned(), Source::Environment));
    }
    let path = data_dir.join(FILE_NAME);
    if path.exists() {
        let key =
            fs::read_to_string(&path).with_context(|| format!("cannot read the API key file {}", path.display()))?;
        let key = key.trim().to_owned();
        if key.is_empty() {
            bail!("the API key file {} is empty: delete it to generate a new key, or set LOOP_API_KEY", path.display());
        }
        return Ok((key, Source::File(path)));
    }
    let key = generate();
    write_private(&path, &key).with_context(|| format!("cannot write the API key file {}", path.display()))?;
    Ok((key, Source::Generated(path)))
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_have_the_documented_shape() {
        let k = generate();
        assert_eq!(k.len(), 5 + 64);
        assert!(k.starts_with("loop_") && k[5..].bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(k, generate());
    }

    #[test]
    fn a_generated_key_is_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let (k1, s1) = load_or_create(None, dir.path()).unwrap();
        assert!(matches!(s1, Source::Generated(_)));
        let (k2, s2) = load_or_create(None, dir.path()).unwrap();
        assert!(matches!(s2, Source::File(_)));
        assert_eq!(k1, k2);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join(FILE_NAME)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (k3, s3) = load_or_create(Some("loop_env".into()), dir.path()).unwrap();
        assert!(matches!(s3, Source::Environment));
        assert_eq!(k3, "loop_env");
    }
}
