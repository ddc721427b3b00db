//! TEMPORARY stand-in until the real push reader lands (wt-process).
use std::path::{Path, PathBuf};
#[derive(Debug, Clone)]
pub struct PushInfo {
    pub sha: String,
    pub r#ref: String,
    pub branch: Option<String>,
    pub tag: Option<String>,
    pub commit_message: Option<String>,
    pub pushed_at: Option<String>,
    pub git_dir: Option<PathBuf>,
}
pub fn read_push_info(_workspace: &Path, sha: Option<&str>, r: Option<&str>) -> PushInfo {
    PushInfo {
        sha: sha.unwrap_or("0000000000000000000000000000000000000000").into(),
        r#ref: r.unwrap_or("HEAD").into(),
        branch: None,
        tag: None,
        commit_message: None,
        pushed_at: None,
        git_dir: None,
    }
}
