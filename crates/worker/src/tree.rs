//! Root's file operations in trees a job user has written: through directory descriptors
//! (`rustix`), never through a path string resolved again later, never following a link.
//!
//! A job can plant links, swap a directory for a link between two of root's steps, make its
//! directories writable by everyone, or hard-link files it may not touch. So every step here
//! opens the next level with `O_NOFOLLOW | O_DIRECTORY` from the descriptor of the level
//! above, changes entries by name relative to that descriptor with `AT_SYMLINK_NOFOLLOW`, and
//! creates files with `O_CREAT | O_EXCL | O_NOFOLLOW`. A swap makes the step fail; it never
//! redirects it outside the tree.

use std::ffi::CStr;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::{AtFlags, Dir, FileType, Gid, Mode, OFlags, Uid, CWD};
use rustix::io::Errno;

/// Deepest directory level walked (a deeper tree is refused, not half-handled).
const MAX_DEPTH: usize = 256;

fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

fn io(e: Errno) -> std::io::Error {
    std::io::Error::from_raw_os_error(e.raw_os_error())
}

/// Opens the directory at `path` (its parents are root's: only the last component could be
/// a job's link, and `O_NOFOLLOW` refuses it).
pub fn open_dir(path: &Path) -> std::io::Result<OwnedFd> {
    rustix::fs::openat(CWD, path, dir_flags(), Mode::empty()).map_err(io)
}

/// How a tree is handed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hand {
    /// To the job user: files hard-linked from elsewhere are skipped (a job must not get a
    /// file it linked in handed to it).
    Give,
    /// Back to root: every entry, and no entry writable by group or others or setuid /
    /// setgid after it (a job may have opened its directories to another uid).
    TakeBack,
}

/// `chown` of every entry of the tree at `top` (itself included) to `uid:gid`, walked
/// through descriptors; see [`Hand`]. `top` may be a file (an instruction file).
pub fn hand_over(top: &Path, uid: u32, gid: u32, how: Hand) -> std::io::Result<()> {
    let (owner, group) = (Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)));
    let st = rustix::fs::statat(CWD, top, AtFlags::SYMLINK_NOFOLLOW).map_err(io)?;
    match FileType::from_raw_mode(st.st_mode) {
        FileType::Directory => {}
        FileType::RegularFile => {
            return rustix::fs::chownat(CWD, top, owner, group, AtFlags::SYMLINK_NOFOLLOW).map_err(io);
        }
        _ => return Err(std::io::Error::other(format!("{} is not a directory or a file", top.display()))),
    }
    let fd = open_dir(top)?;
    rustix::fs::fchown(&fd, owner, group).map_err(io)?;
    rustix::fs::fchmod(&fd, Mode::from_raw_mode(0o700)).map_err(io)?;
    walk(&fd, owner, group, how, 0)
}

fn walk(dir: &OwnedFd, owner: Option<Uid>, group: Option<Gid>, how: Hand, depth: usize) -> std::io::Result<()> {
    if depth > MAX_DEPTH {
        return Err(std::io::Error::other("tree deeper than 256 levels"));
    }
    let mut subdirs: Vec<std::ffi::CString> = Vec::new();
    for entry in Dir::read_from(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        let st = match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::NOENT) => continue,
            Err(e) => return Err(io(e)),
        };
        let kind = FileType::from_raw_mode(st.st_mode);
        if how == Hand::Give && kind == FileType::RegularFile && st.st_nlink > 1 {
            tracing::warn!(file = ?name, "a hard-linked file in a worktree is not handed to the job user");
            continue;
        }
        rustix::fs::chownat(dir, name, owner, group, AtFlags::SYMLINK_NOFOLLOW).map_err(io)?;
        match kind {
            FileType::Directory => subdirs.push(name.to_owned()),
            FileType::RegularFile if how == Hand::TakeBack => strip(dir, name, st.st_mode)?,
            _ => {}
        }
    }
    // Children opened one at a time: only the ancestors' descriptors stay open.
    for name in subdirs {
        let sub = rustix::fs::openat(dir, name.as_c_str(), dir_flags(), Mode::empty())
            .map_err(|e| std::io::Error::other(format!("{name:?} changed while it was handed over: {}", io(e))))?;
        if how == Hand::TakeBack {
            let st = rustix::fs::fstat(&sub).map_err(io)?;
            rustix::fs::fchmod(&sub, Mode::from_raw_mode(st.st_mode & 0o755)).map_err(io)?;
        }
        walk(&sub, owner, group, how, depth + 1)?;
    }
    Ok(())
}

/// Removes group/other write and setuid/setgid/sticky from a file, through a descriptor
/// opened without following a link (`O_NONBLOCK`: a FIFO does not block the open).
fn strip(dir: &OwnedFd, name: &CStr, mode: u32) -> std::io::Result<()> {
    if mode & 0o7022 == 0 {
        return Ok(());
    }
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY;
    match rustix::fs::openat(dir, name, flags, Mode::empty()) {
        Ok(fd) => rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode & 0o755)).map_err(io),
        // Swapped for a link (or gone) since it was listed: nothing of ours to change.
        Err(Errno::LOOP | Errno::NOENT) => Ok(()),
        Err(e) => Err(io(e)),
    }
}

/// Writes new files into `top/levels…`, each level a real directory (a link or file a job
/// left in its place is removed first, never followed), each file created anew (`O_EXCL`,
/// never following a link). Returns nothing but success: every path is relative to `top`.
pub fn write_files(top: &Path, levels: &[&str], files: &[(String, Vec<u8>)]) -> std::io::Result<()> {
    let mut dir = open_dir(top)?;
    for level in levels {
        dir = match rustix::fs::openat(&dir, *level, dir_flags(), Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => {
                rustix::fs::mkdirat(&dir, *level, Mode::from_raw_mode(0o755)).map_err(io)?;
                rustix::fs::openat(&dir, *level, dir_flags(), Mode::empty()).map_err(io)?
            }
            // A link or a file where a directory belongs: removed, then made anew.
            Err(Errno::LOOP | Errno::NOTDIR) => {
                rustix::fs::unlinkat(&dir, *level, AtFlags::empty()).map_err(io)?;
                rustix::fs::mkdirat(&dir, *level, Mode::from_raw_mode(0o755)).map_err(io)?;
                rustix::fs::openat(&dir, *level, dir_flags(), Mode::empty()).map_err(io)?
            }
            Err(e) => return Err(io(e)),
        };
    }
    for (name, bytes) in files {
        match rustix::fs::unlinkat(&dir, name.as_str(), AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => {}
            Err(e) => return Err(io(e)),
        }
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&dir, name.as_str(), flags, Mode::from_raw_mode(0o644)).map_err(io)?;
        std::fs::File::from(fd).write_all(bytes)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch() -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("sy-tree-{}", ulid::Ulid::new()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_level_swapped_for_a_link_is_never_followed_when_files_are_written() {
        let root = scratch();
        let (tree, target) = (root.join("tree"), root.join("target"));
        std::fs::create_dir_all(tree.join(".switchyard")).unwrap();
        std::fs::create_dir_all(&target).unwrap();
        // GIVEN a job left `.switchyard/attachments` as a link to a directory outside
        std::os::unix::fs::symlink(&target, tree.join(".switchyard/attachments")).unwrap();
        // WHEN files are written there
        let files = vec![("a.png".to_string(), b"png".to_vec())];
        write_files(&tree, &[".switchyard", "attachments", "c1"], &files).unwrap();
        // THEN they are in the tree, in real directories, and nothing is outside
        assert_eq!(std::fs::read(tree.join(".switchyard/attachments/c1/a.png")).unwrap(), b"png");
        assert!(!std::fs::symlink_metadata(tree.join(".switchyard/attachments")).unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read_dir(&target).unwrap().count(), 0);
        // AND a file swapped for a link is replaced, not written through
        let victim = root.join("victim");
        std::fs::write(&victim, "keep").unwrap();
        let placed = tree.join(".switchyard/attachments/c1/a.png");
        std::fs::remove_file(&placed).unwrap();
        std::os::unix::fs::symlink(&victim, &placed).unwrap();
        write_files(&tree, &[".switchyard", "attachments", "c1"], &files).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn taking_a_tree_back_closes_what_the_job_opened() {
        use std::os::unix::fs::PermissionsExt;
        let root = scratch();
        let tree = root.join("tree");
        std::fs::create_dir_all(tree.join("open/deep")).unwrap();
        std::fs::write(tree.join("open/deep/f"), "x").unwrap();
        // GIVEN a job that opened a directory and a file to everyone, and a link out
        std::fs::set_permissions(tree.join("open"), std::fs::Permissions::from_mode(0o777)).unwrap();
        std::fs::set_permissions(tree.join("open/deep/f"), std::fs::Permissions::from_mode(0o4777)).unwrap();
        let outside = root.join("outside");
        std::fs::write(&outside, "x").unwrap();
        std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o666)).unwrap();
        std::os::unix::fs::symlink(&outside, tree.join("open/link")).unwrap();
        // WHEN it is taken back (to the current user: the walk is the same as root's)
        let (uid, gid) = (nix::unistd::Uid::effective().as_raw(), nix::unistd::Gid::effective().as_raw());
        hand_over(&tree, uid, gid, Hand::TakeBack).unwrap();
        // THEN nothing in it is writable by others or setuid, and the link's target is untouched
        let mode = |p: &Path| std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&tree), 0o700);
        assert_eq!(mode(&tree.join("open")), 0o755);
        assert_eq!(mode(&tree.join("open/deep/f")), 0o755);
        assert_eq!(mode(&outside), 0o666);
        let _ = std::fs::remove_dir_all(&root);
    }
}
